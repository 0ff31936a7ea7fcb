//! Issue 12, findings 7 and 9: hostile anonymous clients cannot pin memory
//! or git slots, and no answer tells an existing repository (or another
//! repository's event) from a missing one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cadgate_integration::scenarios::{cadgate_config_with, CadgateServer, Lab, NESTED, ROOT};
use cadgate_integration::*;

/// The documented bound on the server's resident memory under the hostile
/// load of finding 7 with default limits (docs/security.md).
const RSS_BOUND_KIB: u64 = 256 * 1024;

/// A hang guard for reads (not a timing assertion: every answer expected
/// here comes within a few seconds).
const HANG_GUARD: Duration = Duration::from_secs(120);

/// The scenario config with every published view open to anyone, and `server`
/// lines in `[server]`.
fn open_config(server: &str, extra: &str) -> String {
    format!(
        "[server]\n{server}\n{}{extra}",
        cadgate_config_with(|_| "published_anonymous = true\n".into())
    )
}

fn pkt(line: &str) -> String {
    format!("{:04x}{line}", line.len() + 4)
}

/// Publish package `lab.f()` holding 32 MB of text that does not compress
/// much, so its clone answer is far larger than every socket and pipe
/// buffer between git and a client that does not read; the branch tip.
fn publish_big(lab: &Lab) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let f = lab.f();
    let big: String = noise(32 << 20, 12)
        .iter()
        .map(|b| ALPHABET[usize::from(b & 63)] as char)
        .collect();
    lab.commit(
        "alice",
        Some("origin/main"),
        &[
            (format!("{f}/Kptfile"), Some(kptfile(&f))),
            (format!("{f}/blob.txt"), Some(big)),
        ],
    );
    lab.accept(
        "alice",
        &[&format!("+HEAD:refs/heads/drafts/{f}/ws")],
        "saved draft",
    );
    lab.propose("alice", &f, "ws");
    lab.publish("bob", &f, "ws");
    lab.server_ref("refs/heads/main").expect("main")
}

/// A protocol v2 clone request of `want` sent on a fresh connection whose
/// answer is never read past its status line; the connection and status.
fn never_reads(server: &Server, path: &str, want: &str, auth: Option<&str>) -> (TcpStream, u16) {
    let body = format!(
        "{}0001{}{}{}0000",
        pkt("command=fetch\n"),
        pkt(&format!("want {want}\n")),
        pkt("ofs-delta\n"),
        pkt("done\n")
    );
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream.set_read_timeout(Some(HANG_GUARD)).expect("timeout");
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-git-upload-pack-request\r\nGit-Protocol: version=2\r\nContent-Length: {}\r\n",
        server.addr(),
        body.len()
    );
    if let Some(auth) = auth {
        head.push_str(&format!("Authorization: {auth}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(body.as_bytes()).expect("send body");
    // The status line only: a few bytes of a very long answer.
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        let n = match stream.read(&mut byte) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            read => read.expect("read the status line"),
        };
        assert_eq!(n, 1, "the server closed before a status line");
        line.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&line)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (stream, status)
}

/// git processes running now, from `/metrics`.
fn git_processes(server: &Server) -> u64 {
    server
        .get("/metrics")
        .text()
        .lines()
        .find_map(|l| l.strip_prefix("cadgate_git_processes "))
        .and_then(|v| v.trim().parse().ok())
        .expect("cadgate_git_processes in /metrics")
}

/// Wait (hang guard only) until `condition` holds.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG_GUARD;
    while !condition() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A gzip body that decodes to 60 MiB (under `max_request_bytes`), sent
/// chunked without its last bytes and chunk: the client then stalls forever
/// with the server's decoder waiting for the rest.
fn stalled_gzip(server: &Server, path: &str, gzipped: &[u8]) -> TcpStream {
    let gzipped = &gzipped[..gzipped.len() - 64];
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream.set_read_timeout(Some(HANG_GUARD)).expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-git-upload-pack-request\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        server.addr(),
        gzipped.len()
    );
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(gzipped).expect("send body");
    stream.write_all(b"\r\n").expect("end the chunk");
    stream
}

fn gzip_of_zeros(len: usize) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..len >> 20 {
        encoder.write_all(&zeros).expect("gzip");
    }
    encoder.finish().expect("gzip")
}

/// The status of the answer a stalled client eventually gets.
fn answer_status(stream: &mut TcpStream) -> u16 {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .expect("an answer to the stalled body");
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {line:?}"))
}

/// Finding 7 and the acceptance point: twelve anonymous stalled gzip bodies
/// and six anonymous clients that never read their clone answer, at once.
/// The stalled bodies are cut after `body_timeout_secs`, the server's peak
/// resident memory stays under the documented bound, and an authenticated
/// fetch started during the attack completes.
#[test]
fn hostile_anonymous_load_pins_neither_memory_nor_every_slot() {
    let host = CadgateServer {
        server: Server::start(&open_config(
            "max_git_processes = 4\nbody_timeout_secs = 2\nqueue_timeout_secs = 5\n",
            "",
        )),
    };
    let server = &host.server;
    let lab = Lab::new(&host, ROOT, "load");
    let main = publish_big(&lab);
    let view = "/published/root.git/git-upload-pack";
    let gzipped = gzip_of_zeros(60 << 20);

    let mut stalled: Vec<TcpStream> = (0..12)
        .map(|_| stalled_gzip(server, view, &gzipped))
        .collect();
    let readers: Vec<(TcpStream, u16)> = (0..6)
        .map(|_| never_reads(server, view, &main, None))
        .collect();
    let holding = readers.iter().filter(|(_, s)| *s == 200).count();
    assert!(holding >= 1, "no anonymous clone started");
    assert!(
        readers.iter().all(|(_, s)| *s == 200 || *s == 401),
        "{:?}",
        readers.iter().map(|(_, s)| s).collect::<Vec<_>>()
    );

    // An authenticated fetch during the attack.
    let client = GitClient::new();
    let url = server.url_as(&TestUser::new("rita"), "published/root");
    client.git(&["clone", "-q", "--depth", "1", &url, "fetched"]);
    assert_eq!(client.git_in("fetched", &["rev-parse", "HEAD"]), main);

    // Every stalled body is cut (408) or was refused for want of buffer
    // budget (503); none is left pinning memory.
    let mut statuses = Vec::new();
    for stream in &mut stalled {
        let status = answer_status(stream);
        assert!(status == 408 || status == 503, "stalled body: {status}");
        statuses.push(status);
    }
    let peak = server.peak_rss_kib();
    eprintln!(
        "hostile load: peak RSS {} MiB (bound {} MiB), {holding} of 6 non-readers held a git slot, stalled bodies answered {statuses:?}",
        peak / 1024,
        RSS_BOUND_KIB / 1024
    );
    assert!(
        peak < RSS_BOUND_KIB,
        "peak RSS {peak} KiB over {RSS_BOUND_KIB} KiB"
    );
    drop(readers);
}

/// Finding 7: a body that stops arriving is cut after `body_timeout_secs`:
/// a fetch negotiation (gzip or not) gets 408, and a push whose pack
/// stalls has its git stopped and its slot freed.
#[test]
fn stalled_bodies_are_cut_after_the_body_timeout() {
    let alice = TestUser::new("alice");
    let server = Server::start(&format!(
        "[server]\nbody_timeout_secs = 2\n\n[[repository]]\nname = \"open\"\npublished_anonymous = true\n\n{}",
        alice.config(&["admin"], &[])
    ));
    let view = "/published/open.git/git-upload-pack";
    // gzip: a few KiB of a longer stream.
    let mut gzipped = stalled_gzip(&server, view, &gzip_of_zeros(1 << 20));
    assert_eq!(answer_status(&mut gzipped), 408);
    // Identity: fewer bytes than Content-Length.
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream.set_read_timeout(Some(HANG_GUARD)).expect("timeout");
    let head = format!(
        "POST {view} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-git-upload-pack-request\r\nContent-Length: 1000\r\n\r\n0009done\n",
        server.addr()
    );
    stream.write_all(head.as_bytes()).expect("send");
    assert_eq!(answer_status(&mut stream), 408);
    // A push: its command list, then part of a pack, then nothing.
    let main = server_git(&server.repo_dir("open"), &["rev-parse", "main"]);
    let line = format!("{main} {main} refs/heads/drafts/x/ws\0report-status\n");
    let mut body = format!("{}0000", pkt(&line)).into_bytes();
    body.extend_from_slice(b"PACK\0\0\0\x02\0\0\0\x05");
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream.set_read_timeout(Some(HANG_GUARD)).expect("timeout");
    let head = format!(
        "POST /open.git/git-receive-pack HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Type: application/x-git-receive-pack-request\r\nContent-Length: 100000\r\n\r\n",
        server.addr(),
        basic(&alice)
    );
    stream.write_all(head.as_bytes()).expect("send");
    stream.write_all(&body).expect("send");
    wait_until("receive-pack runs", || git_processes(&server) == 1);
    // git answers for itself (its stdin ended inside the pack) or cadgate
    // does; either way nothing was taken and git has stopped.
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.contains("unpack ok"), "{answer}");
    wait_until("receive-pack is stopped", || git_processes(&server) == 0);
    assert!(server_ref(&server.repo_dir("open"), "refs/heads/drafts/x/ws").is_none());
}

/// Finding 7: a client that never reads its clone answer holds its git
/// slot only until `write_timeout_secs`; then git is stopped and the slot
/// is free for the next anonymous clone.
#[test]
fn clients_that_never_read_lose_their_git_slot() {
    let host = CadgateServer {
        server: Server::start(&open_config(
            "max_git_processes = 4\nwrite_timeout_secs = 2\nqueue_timeout_secs = 60\n",
            "",
        )),
    };
    let server = &host.server;
    let lab = Lab::new(&host, ROOT, "stall");
    let main = publish_big(&lab);
    let view = "/published/root.git/git-upload-pack";
    let readers: Vec<(TcpStream, u16)> = (0..2)
        .map(|_| never_reads(server, view, &main, None))
        .collect();
    assert!(readers.iter().all(|(_, s)| *s == 200));
    // Both anonymous slots were taken; the write timeout frees them.
    wait_until("the non-readers' git processes are stopped", || {
        git_processes(server) == 0
    });
    let client = GitClient::new();
    let url = format!("{}/published/root.git", server.base());
    client.git(&["clone", "-q", "--depth", "1", &url, "anonymous"]);
    assert_eq!(client.git_in("anonymous", &["rev-parse", "HEAD"]), main);
    // The server closed the non-readers' connections.
    for (mut stream, _) in readers {
        let mut sink = vec![0u8; 1 << 20];
        let ended = loop {
            match stream.read(&mut sink) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // The read timeout: the server kept the connection open.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break false
                }
                Err(_) => break true,
            }
        };
        assert!(ended);
    }
}

/// Finding 7: anonymous requests hold at most `anonymous_git_share` of the
/// git slots, so an authenticated user finds one while anonymous clients
/// hold theirs.
#[test]
fn anonymous_clients_cannot_take_every_git_slot() {
    let host = CadgateServer {
        server: Server::start(&open_config(
            "max_git_processes = 4\nqueue_timeout_secs = 0\n",
            "",
        )),
    };
    let server = &host.server;
    let lab = Lab::new(&host, ROOT, "share");
    let main = publish_big(&lab);
    let view = "/published/root.git/git-upload-pack";
    let readers: Vec<(TcpStream, u16)> = (0..4)
        .map(|_| never_reads(server, view, &main, None))
        .collect();
    let statuses: Vec<u16> = readers.iter().map(|(_, s)| *s).collect();
    // Past their share anonymous clients are asked to authenticate.
    assert_eq!(statuses, [200, 200, 401, 401], "half of 4 slots");
    assert_eq!(git_processes(server), 2);
    // A user fetches while the anonymous clients hold their slots: from
    // the authoring view, and from the published view, where git sends
    // its credentials only once asked.
    let client = GitClient::new();
    for (repository, dir) in [("root", "user"), ("published/root", "view")] {
        client.git(&[
            "clone",
            "-q",
            "--depth",
            "1",
            &server.url_as(&TestUser::new("rita"), repository),
            dir,
        ]);
        assert_eq!(client.git_in(dir, &["rev-parse", "HEAD"]), main);
    }
    wait_until("only the anonymous clones' git processes run", || {
        git_processes(server) == 2
    });
    drop(readers);
}

/// Status, headers (without `date`) and body of an answer.
fn shape(r: &HttpResponse) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let headers = r
        .headers
        .iter()
        .filter(|(k, _)| k != "date")
        .cloned()
        .collect();
    (r.status, headers, r.body.clone())
}

/// Finding 9: without credentials `/secret.git` and `/nope.git` answer the
/// same 401; for a user without a role on `secret`, it answers like a
/// repository that does not exist (404, same bytes) on every route.
#[test]
fn missing_and_hidden_repositories_answer_alike() {
    let otto = TestUser::new("otto");
    let config = format!(
        "[[repository]]\nname = \"secret\"\n\n[[repository]]\nname = \"other\"\n\n{}\n{}",
        TestUser::new("alice").config(&["admin"], &[]),
        otto.config(&["reader"], &["other"])
    );
    let server = Server::start(&config);
    let get = |path: &str, auth: Option<&str>| {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        server.request("GET", path, &headers, b"")
    };
    let post = |path: &str, auth: Option<&str>| {
        let mut headers = vec![("Content-Type", "application/x-git-upload-pack-request")];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        server.request("POST", path, &headers, b"0000")
    };
    let git_paths = [
        "/{}.git/info/refs?service=git-upload-pack",
        "/{}.git/info/refs?service=git-receive-pack",
        "/{}.git/info/refs?service=git-frobnicate",
        "/{}.git/info/refs",
        "/{}.git/HEAD",
        "/published/{}.git/info/refs?service=git-upload-pack",
        "/published/{}.git/HEAD",
    ];
    let api_paths = [
        "/api/v1/repositories/{}",
        "/api/v1/repositories/{}/revisions",
        "/api/v1/events?repository={}",
    ];
    let otto_auth = basic(&otto);
    for template in git_paths.iter().chain(&api_paths) {
        let at = |name: &str| template.replace("{}", name);
        // Anonymous: 401 alike.
        let (secret, nope) = (get(&at("secret"), None), get(&at("nope"), None));
        assert_eq!(secret.status, 401, "{template}: {}", secret.text());
        assert_eq!(shape(&secret), shape(&nope), "{template}");
        // A user without a role: 404 alike.
        let (secret, nope) = (
            get(&at("secret"), Some(&otto_auth)),
            get(&at("nope"), Some(&otto_auth)),
        );
        assert_eq!(secret.status, 404, "{template}: {}", secret.text());
        assert_eq!(shape(&secret), shape(&nope), "{template}");
    }
    for template in [
        "/{}.git/git-upload-pack",
        "/published/{}.git/git-upload-pack",
    ] {
        let at = |name: &str| template.replace("{}", name);
        let (secret, nope) = (post(&at("secret"), None), post(&at("nope"), None));
        assert_eq!(secret.status, 401, "{template}");
        assert_eq!(shape(&secret), shape(&nope), "{template}");
        let (secret, nope) = (
            post(&at("secret"), Some(&otto_auth)),
            post(&at("nope"), Some(&otto_auth)),
        );
        assert_eq!(secret.status, 404, "{template}");
        assert_eq!(shape(&secret), shape(&nope), "{template}");
    }
    // The user's own repository still answers.
    assert_eq!(
        get(
            "/other.git/info/refs?service=git-upload-pack",
            Some(&otto_auth)
        )
        .status,
        200
    );
}

/// Open an event stream with `Last-Event-ID: last_id`, read up to its
/// opening comment.
fn open_stream(server: &Server, path: &str, auth: &str, last_id: &str) -> BufReader<TcpStream> {
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream.set_read_timeout(Some(HANG_GUARD)).expect("timeout");
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {auth}\r\nLast-Event-ID: {last_id}\r\nAccept: text/event-stream\r\n\r\n",
        server.addr()
    );
    stream.write_all(head.as_bytes()).expect("send");
    // Wait for the opening comment so the stream is in place.
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while !line.starts_with(": cadgate events") {
        line.clear();
        assert!(reader.read_line(&mut line).expect("read") > 0, "closed");
    }
    reader
}

/// The id of the next event on the stream.
fn next_event_id(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).expect("read") > 0, "closed");
        if let Some(id) = line.trim_end().strip_prefix("id: ") {
            return id.to_string();
        }
    }
}

/// Finding 9: a `Last-Event-ID` naming an event of a repository the user
/// cannot read resumes exactly like an id that does not exist (from now):
/// it tells neither that the event exists nor when it happened.
#[test]
fn a_foreign_last_event_id_tells_nothing() {
    let otto = TestUser::new("otto");
    let host = CadgateServer::start(&otto.config(&["reader"], &["root"]));
    let server = &host.server;
    let root = Lab::new(&host, ROOT, "evroot");
    let nested = Lab::new(&host, NESTED, "evnest");
    let f = root.f();
    // root:1, then nested:1 (which otto cannot read), then root:2.
    root.draft("alice", &f, "ws", "n: 1\n");
    nested.draft("alice", &nested.f(), "ws", "n: 1\n");
    root.draft("alice", &f, "ws", "n: 2\n");
    let auth = basic(&otto);
    let path = "/api/v1/events?repository=root";
    for (next, last_id) in (3..).zip(["nested:1", "nested:999", "nope:1"]) {
        let mut stream = open_stream(server, path, &auth, last_id);
        root.draft("alice", &f, "ws", &format!("n: {next}\n"));
        assert_eq!(
            next_event_id(&mut stream),
            format!("root:{next}"),
            "Last-Event-ID {last_id} resumed from the past"
        );
    }
}
