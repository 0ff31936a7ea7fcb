//! Issue 2 acceptance: the smart-HTTP server with the real git CLI.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cadgate_integration::*;

fn alice() -> TestUser {
    TestUser::new("alice")
}

/// Two repositories; alice (author), rita (reader), otto (author elsewhere).
fn config() -> String {
    format!(
        "[[repository]]\nname = \"demo\"\n\n[[repository]]\nname = \"org/blueprints\"\n\n{}{}{}",
        alice().config(&["author"], &[]),
        TestUser::new("rita").config(&["reader"], &[]),
        TestUser::new("otto").config(&["author"], &["other/*"]),
    )
}

#[test]
fn clone_push_fetch_pull_round_trip_over_v0_and_v2() {
    let server = Server::start(&config());
    for version in ["0", "2"] {
        let proto = format!("protocol.version={version}");
        let writer = GitClient::new();
        let reader = GitClient::new();
        let url = server.url_as(&alice(), "org/blueprints");
        let package = format!("rt{version}");
        let draft = format!("refs/heads/drafts/{package}/ws");
        let tracking = format!("origin/drafts/{package}/ws");
        writer.git(&["-c", &proto, "clone", "-q", &url, "w"]);
        let first = writer.commit_package("w", &package, &[("a.txt", b"one\n")], "first");
        writer.git_in(
            "w",
            &[
                "-c",
                &proto,
                "push",
                "-q",
                "origin",
                &format!("HEAD:{draft}"),
            ],
        );
        assert_eq!(
            server_git(&server.repo_dir("org/blueprints"), &["rev-parse", &draft]),
            first
        );

        // The second client clones without `.git` in the URL.
        let bare_url = url.trim_end_matches(".git").to_string();
        reader.git(&["-c", &proto, "clone", "-q", &bare_url, "r"]);
        assert_eq!(reader.git_in("r", &["rev-parse", &tracking]), first);
        reader.git_in("r", &["checkout", "-q", "-b", "work", &tracking]);
        let second = writer.commit_package("w", &package, &[("b.txt", b"two\n")], "second");
        writer.git_in(
            "w",
            &[
                "-c",
                &proto,
                "push",
                "-q",
                "origin",
                &format!("HEAD:{draft}"),
            ],
        );
        reader.git_in("r", &["-c", &proto, "fetch", "-q", "origin"]);
        assert_eq!(reader.git_in("r", &["rev-parse", &tracking]), second);
        reader.git_in("r", &["-c", &proto, "pull", "-q", "--ff-only"]);
        assert_eq!(
            reader.git_in("r", &["rev-parse", "HEAD^{tree}"]),
            writer.git_in("w", &["rev-parse", "HEAD^{tree}"])
        );
    }
}

#[test]
fn shallow_clone_and_fetch_by_full_sha() {
    let server = Server::start(&config());
    let writer = GitClient::new();
    writer.git(&["clone", "-q", &server.url_as(&alice(), "demo"), "w"]);
    for i in 0..3 {
        writer.commit_package(
            "w",
            "sh",
            &[("f.txt", format!("{i}\n").as_bytes())],
            &format!("c{i}"),
        );
    }
    writer.git_in(
        "w",
        &["push", "-q", "origin", "HEAD:refs/heads/drafts/sh/ws"],
    );
    let tip = writer.git_in("w", &["rev-parse", "HEAD"]);
    for version in ["0", "2"] {
        let proto = format!("protocol.version={version}");
        let client = GitClient::new();
        let dir = format!("shallow{version}");
        let url = server.url_as(&alice(), "demo");
        client.git(&[
            "-c",
            &proto,
            "clone",
            "-q",
            "--depth",
            "1",
            "--branch",
            "drafts/sh/ws",
            &url,
            &dir,
        ]);
        assert_eq!(client.git_in(&dir, &["rev-parse", "HEAD"]), tip);
        assert_eq!(client.git_in(&dir, &["rev-list", "--count", "HEAD"]), "1");
        assert!(client.path(&dir).join(".git/shallow").exists());

        let by_sha = format!("sha{version}");
        client.git(&["init", "-q", &by_sha]);
        client.git_in(&by_sha, &["-c", &proto, "fetch", "-q", &url, &tip]);
        assert_eq!(client.git_in(&by_sha, &["rev-parse", "FETCH_HEAD"]), tip);
    }
}

#[test]
fn a_200_mb_push_streams_through_a_small_server() {
    let server = Server::start(&config());
    let client = GitClient::new();
    client.git(&["clone", "-q", &server.url_as(&alice(), "demo"), "w"]);
    let files: Vec<(String, Vec<u8>)> = (0..4)
        .map(|i| (format!("big{i}.bin"), noise(50 << 20, i + 1)))
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    let commit = client.commit_package("w", "big", &refs, "200 MB of incompressible data");
    drop(files);
    client.git_in(
        "w",
        &["push", "-q", "origin", "HEAD:refs/heads/drafts/big/ws"],
    );
    assert_eq!(
        server_git(&server.repo_dir("demo"), &["rev-parse", "drafts/big/ws"]),
        commit
    );
    let peak = server.peak_rss_kib();
    assert!(
        peak < 100 * 1024,
        "server peak RSS {peak} KiB during a 200 MB push"
    );
}

#[test]
fn small_post_buffer_pushes_chunked_after_a_probe() {
    let server = Server::start(&config());
    let trace = tempfile::NamedTempFile::new().expect("trace file");
    let client = GitClient::new().with_env("GIT_TRACE_CURL", &trace.path().display().to_string());
    client.git(&["clone", "-q", &server.url_as(&alice(), "demo"), "w"]);
    let data = noise(3 << 20, 7);
    let commit = client.commit_package("w", "chunked", &[("blob.bin", &data)], "3 MB");
    client.git_in(
        "w",
        &[
            "-c",
            "http.postBuffer=70000",
            "push",
            "-q",
            "origin",
            "HEAD:refs/heads/drafts/chunked/ws",
        ],
    );
    assert_eq!(
        server_git(
            &server.repo_dir("demo"),
            &["rev-parse", "drafts/chunked/ws"]
        ),
        commit
    );
    let curl = std::fs::read_to_string(trace.path()).expect("trace");
    assert!(
        curl.contains("Transfer-Encoding: chunked"),
        "the push was not chunked"
    );
}

#[test]
fn fetch_negotiation_with_many_haves_is_gzipped() {
    let server = Server::start(&config());
    let pusher = GitClient::new();
    pusher.git(&["clone", "-q", &server.url_as(&alice(), "demo"), "p"]);

    let trace = tempfile::NamedTempFile::new().expect("trace file");
    let packets = tempfile::NamedTempFile::new().expect("packet trace");
    let client = GitClient::new();
    client.git(&["clone", "-q", &server.url_as(&alice(), "demo"), "c"]);
    // 3,000 commits the server does not have, newer than anything on it, so
    // negotiation offers them first.
    let mut script = String::new();
    let now = 4_000_000_000u64;
    for i in 0..3000 {
        script.push_str(&format!(
            "commit refs/heads/local\ncommitter T <t@example.com> {} +0000\ndata 2\n{}\n\n",
            now + i,
            i % 10
        ));
    }
    let mut fast_import = client
        .command(&["-C", "c", "fast-import", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("fast-import");
    fast_import
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("feed fast-import");
    assert!(fast_import.wait().expect("fast-import").success());

    let new_tip = pusher.commit_package("p", "neg", &[("new.txt", b"new\n")], "new on the server");
    pusher.git_in(
        "p",
        &["push", "-q", "origin", "HEAD:refs/heads/drafts/neg/ws"],
    );

    let out = client
        .command(&["-C", "c", "fetch", "origin"])
        .env("GIT_TRACE_CURL", trace.path())
        .env("GIT_TRACE_PACKET", packets.path())
        .output()
        .expect("fetch");
    assert!(out.status.success(), "fetch failed: {}", stderr(&out));
    assert_eq!(
        client.git_in("c", &["rev-parse", "origin/drafts/neg/ws"]),
        new_tip
    );
    let curl = std::fs::read_to_string(trace.path()).expect("trace");
    assert!(
        curl.contains("Content-Encoding: gzip"),
        "no gzip request body was sent"
    );
    let haves = std::fs::read_to_string(packets.path())
        .expect("packet trace")
        .lines()
        .filter(|l| l.contains("> have "))
        .count();
    assert!(haves >= 200, "only {haves} have lines were sent");
}

#[test]
fn authentication_and_roles() {
    let server = Server::start(&config());
    // No credentials: 401 with the challenge git's credential helpers answer.
    let raw = server.get("/demo.git/info/refs?service=git-upload-pack");
    assert_eq!(raw.status, 401);
    assert_eq!(
        raw.header("www-authenticate"),
        Some("Basic realm=\"cadgate\"")
    );

    // git uses its credential helper after the 401.
    let trace = tempfile::NamedTempFile::new().expect("trace");
    let helped = GitClient::new().with_env("GIT_TRACE_CURL", &trace.path().display().to_string());
    helped.store_credentials(server.base(), &alice());
    helped.git(&["clone", "-q", &server.url("demo"), "c"]);
    let curl = std::fs::read_to_string(trace.path()).expect("trace");
    assert!(curl.contains("401 Unauthorized"), "no challenge seen");
    assert!(
        curl.contains("Authorization: Basic <redacted>"),
        "no retry with credentials"
    );

    // Wrong token.
    let wrong = TestUser {
        name: "alice".into(),
        token: "not-the-token".into(),
    };
    let client = GitClient::new();
    let out = client.git_fails(&["clone", "-q", &server.url_as(&wrong, "demo"), "x"]);
    assert!(
        stderr(&out).contains("Authentication failed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        server
            .request(
                "GET",
                "/demo.git/info/refs?service=git-upload-pack",
                &[("Authorization", &basic(&wrong))],
                b""
            )
            .status,
        401
    );

    // A reader fetches but cannot push; git shows why.
    let rita = TestUser::new("rita");
    let reader = GitClient::new();
    reader.git(&["clone", "-q", &server.url_as(&rita, "demo"), "r"]);
    reader.commit_files("r", &[("x.txt", b"x\n")], "x");
    let out = reader.git_fails(&["-C", "r", "push", "origin", "HEAD:main"]);
    let message = stderr(&out);
    assert!(message.contains("403"), "{message}");
    assert!(message.contains("pushing needs 'author'"), "{message}");

    // A user whose globs exclude the repository: told it is not there
    // (issue 12, finding 9: the same answer as for a missing repository).
    let otto = TestUser::new("otto");
    let out = GitClient::new().git_fails(&["clone", "-q", &server.url_as(&otto, "demo"), "o"]);
    assert!(
        stderr(&out).contains("not found") || stderr(&out).contains("404"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        server
            .request(
                "GET",
                "/demo.git/info/refs?service=git-upload-pack",
                &[("Authorization", &basic(&otto))],
                b""
            )
            .status,
        404
    );

    // Unknown repository: 404 for a user, 401 without credentials (as for
    // a repository that exists).
    let out = GitClient::new().git_fails(&["clone", "-q", &server.url_as(&alice(), "nope"), "n"]);
    assert!(
        stderr(&out).contains("not found") || stderr(&out).contains("404"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        server
            .get("/nope.git/info/refs?service=git-upload-pack")
            .status,
        401
    );
    assert_eq!(
        server
            .request(
                "GET",
                "/nope/info/refs?service=git-upload-pack",
                &[("Authorization", &basic(&alice()))],
                b""
            )
            .status,
        404
    );
}

fn write_config(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let file = dir.join("cadgate.toml");
    std::fs::write(&file, text).expect("write config");
    file
}

#[test]
fn bad_configs_are_refused_with_their_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "[server]\nlisen = \"127.0.0.1:1\"\n\n[[repository]]\nname = \"a\"\n",
            ":2:",
            "did you mean `listen`",
        ),
        (
            "[[repository]]\nname = \"a\"\n\n[[repository]]\nname = \"a\"\n",
            ":5:",
            "already defined on line 2",
        ),
        (
            "[server]\nlisten = \"127.0.0.1:80800\"\n\n[[repository]]\nname = \"a\"\n",
            ":2:",
            "not an address",
        ),
    ];
    for (text, line, message) in cases {
        let file = write_config(dir.path(), text);
        for args in [
            vec!["check-config", file.to_str().expect("utf-8")],
            vec!["serve", "--config", file.to_str().expect("utf-8")],
        ] {
            let out = std::process::Command::new(cadgate_bin())
                .args(&args)
                .output()
                .expect("run cadgate");
            let err = stderr(&out);
            assert!(!out.status.success(), "{args:?} accepted {text}");
            assert!(
                err.contains(&format!("cadgate.toml{line}")),
                "{args:?}: no {line} in {err}"
            );
            assert!(err.contains(message), "{args:?}: no {message:?} in {err}");
        }
    }
}

#[test]
fn twenty_concurrent_clones_get_identical_trees() {
    let server = Server::start(&config());
    let writer = GitClient::new();
    writer.git(&["clone", "-q", &server.url_as(&alice(), "demo"), "w"]);
    let files: Vec<(String, Vec<u8>)> = (0..200)
        .map(|i| (format!("part{i}/data.bin"), noise(20_000, i + 1)))
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    writer.commit_package("w", "many", &refs, "content");
    writer.git_in(
        "w",
        &["push", "-q", "origin", "HEAD:refs/heads/drafts/many/ws"],
    );
    let expected = writer.git_in("w", &["rev-parse", "HEAD^{tree}"]);
    let url = server.url_as(&alice(), "demo");
    let trees: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let url = url.clone();
                scope.spawn(move || {
                    let client = GitClient::new();
                    let dir = format!("c{i}");
                    client.git(&["clone", "-q", "--branch", "drafts/many/ws", &url, &dir]);
                    client.git_in(&dir, &["rev-parse", "HEAD^{tree}"])
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("clone thread"))
            .collect()
    });
    assert!(
        trees.iter().all(|t| *t == expected),
        "trees differ: {trees:?}"
    );
}

#[test]
fn http_edge_cases_get_clear_answers() {
    let server = Server::start(&config());
    let auth = basic(&alice());
    let auth = ("Authorization", auth.as_str());
    for service in ["git-upload-pack", "git-receive-pack"] {
        let r = server.request(
            "GET",
            &format!("/demo.git/info/refs?service={service}"),
            &[auth],
            b"",
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-type"),
            Some(format!("application/x-{service}-advertisement").as_str())
        );
        assert!(r
            .header("cache-control")
            .is_some_and(|v| v.contains("no-cache")));
        assert!(r.text().starts_with(&format!(
            "{:04x}# service={service}\n0000",
            service.len() + 15
        )));
    }
    let v2 = server.request(
        "GET",
        "/demo/info/refs?service=git-upload-pack",
        &[auth, ("Git-Protocol", "version=2")],
        b"",
    );
    assert!(v2.text().contains("version 2"), "{}", v2.text());
    assert!(v2.text().contains("fetch=shallow"), "{}", v2.text());
    // The second answer (served from memory) is the same advertisement.
    let again = server.request(
        "GET",
        "/demo.git/info/refs?service=git-upload-pack",
        &[auth, ("Git-Protocol", "version=2")],
        b"",
    );
    assert_eq!(again.body, v2.body);
    assert_eq!(
        again.header("content-type"),
        Some("application/x-git-upload-pack-advertisement")
    );

    let upload = [
        auth,
        ("Content-Type", "application/x-git-upload-pack-request"),
    ];
    let receive = [
        auth,
        ("Content-Type", "application/x-git-receive-pack-request"),
    ];
    // Wrong method, wrong content type.
    assert_eq!(
        server
            .request("PUT", "/demo.git/git-upload-pack", &upload, b"0000")
            .status,
        405
    );
    assert_eq!(
        server
            .request(
                "POST",
                "/demo.git/info/refs?service=git-upload-pack",
                &[auth],
                b""
            )
            .status,
        405
    );
    assert_eq!(
        server
            .request(
                "POST",
                "/demo.git/git-upload-pack",
                &[auth, ("Content-Type", "text/plain")],
                b"0000"
            )
            .status,
        415
    );
    // Malformed bodies.
    let gz = [
        auth,
        ("Content-Type", "application/x-git-upload-pack-request"),
        ("Content-Encoding", "gzip"),
    ];
    let r = server.request(
        "POST",
        "/demo.git/git-upload-pack",
        &gz,
        b"this is not gzip",
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("gzip"), "{}", r.text());
    assert_eq!(
        server
            .request("POST", "/demo.git/git-upload-pack", &upload, b"zzzzwant")
            .status,
        400
    );
    assert_eq!(
        server
            .request("POST", "/demo.git/git-upload-pack", &upload, b"")
            .status,
        400
    );
    assert_eq!(
        server
            .request("POST", "/demo.git/git-receive-pack", &receive, b"00")
            .status,
        400
    );
    // git's probe POST.
    let probe = server.request("POST", "/demo.git/git-receive-pack", &receive, b"0000");
    assert_eq!(probe.status, 200);
    assert_eq!(
        probe.header("content-type"),
        Some("application/x-git-receive-pack-result")
    );
    // Dumb HTTP and hostile paths: 4xx, never 5xx.
    for path in [
        "/demo.git/info/refs",
        "/demo.git/HEAD",
        "/demo.git/objects/info/packs",
        "/../etc/passwd",
        "/demo.git/../../x/info/refs?service=git-upload-pack",
        "/%2e%2e/%2e%2e/etc/info/refs?service=git-upload-pack",
        "/published/../demo/info/refs?service=git-upload-pack",
        &format!("/{}/info/refs?service=git-upload-pack", "a".repeat(4000)),
        "/demo.git/info/refs?service=git-frobnicate",
    ] {
        let r = server.request("GET", path, &[auth], b"");
        assert!((400..500).contains(&r.status), "{path}: {}", r.status);
    }
    // Health and metrics.
    assert_eq!(server.get("/healthz").status, 200);
    let metrics = server.get("/metrics").text();
    for name in [
        "cadgate_http_requests_total",
        "cadgate_http_request_duration_seconds",
        "cadgate_http_response_bytes_total",
        "cadgate_git_processes",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    assert!(
        metrics
            .contains("cadgate_http_requests_total{service=\"git-upload-pack\",status=\"415\"} 1"),
        "{metrics}"
    );
    // Still serving after all that.
    GitClient::new().git(&["clone", "-q", &server.url_as(&alice(), "demo"), "ok"]);
}

/// A receive-pack POST sent by hand with a chunked body, for tests that need
/// a push to stay in flight.
struct SlowPush {
    stream: TcpStream,
}

impl SlowPush {
    fn start(server: &Server, repo: &str, first: &[u8]) -> SlowPush {
        let mut stream = TcpStream::connect(server.addr()).expect("connect");
        let head = format!(
            "POST /{repo}.git/git-receive-pack HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Type: application/x-git-receive-pack-request\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            server.addr(),
            basic(&alice())
        );
        stream.write_all(head.as_bytes()).expect("head");
        let mut push = SlowPush { stream };
        push.send(first);
        push
    }

    fn send(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.stream
            .write_all(format!("{:x}\r\n", data.len()).as_bytes())
            .expect("chunk size");
        self.stream.write_all(data).expect("chunk");
        self.stream.write_all(b"\r\n").expect("chunk end");
        self.stream.flush().expect("flush");
    }

    fn finish(mut self) -> HttpResponse {
        self.stream.write_all(b"0\r\n\r\n").expect("last chunk");
        read_response(&mut self.stream)
    }
}

/// A push body that creates the draft `refname` of package `slow`: the
/// command list and a pack of the new objects on top of the server's branch.
fn push_body(server: &Server, client: &GitClient, refname: &str) -> (Vec<u8>, String) {
    client.git(&["clone", "-q", &server.url_as(&alice(), "demo"), "pack-src"]);
    let commit = client.commit_package(
        "pack-src",
        "slow",
        &[("slow.txt", b"slow push\n")],
        "slow push",
    );
    let mut pack = client
        .command(&["-C", "pack-src", "pack-objects", "--stdout", "--revs", "-q"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("pack-objects");
    pack.stdin
        .take()
        .expect("stdin")
        .write_all(format!("{commit}\n^origin/main\n").as_bytes())
        .expect("revs");
    let pack = pack.wait_with_output().expect("pack");
    let line = format!("{} {commit} {refname}\0report-status\n", "0".repeat(40));
    let mut body = format!("{:04x}{line}0000", line.len() + 4).into_bytes();
    body.extend_from_slice(&pack.stdout);
    (body, commit)
}

#[test]
fn a_busy_server_answers_503_with_retry_after() {
    // One slot, and a one-second queue: enough for the clone that builds the
    // push body (a git process may outlive its response by a moment), while
    // a slot held by the half-sent push still makes the next request a 503.
    let config = format!(
        "[server]\nmax_git_processes = 1\nqueue_timeout_secs = 1\n\n{}",
        config()
    );
    let server = Server::start(&config);
    let client = GitClient::new();
    let (body, _) = push_body(&server, &client, "refs/heads/drafts/slow/ws");
    let split = body.len() - 10;
    // Holds the only git slot: receive-pack waits for the rest of the pack.
    let push = SlowPush::start(&server, "demo", &body[..split]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server
        .get("/metrics")
        .text()
        .contains("cadgate_git_processes 1")
    {
        assert!(Instant::now() < deadline, "the slow push never started git");
        std::thread::sleep(Duration::from_millis(20));
    }
    let auth = basic(&alice());
    let busy = server.request(
        "GET",
        "/demo.git/info/refs?service=git-upload-pack",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(busy.status, 503, "{}\n{}", busy.text(), server.stderr());
    assert!(busy.header("retry-after").is_some());
    assert!(busy.text().contains("busy"), "{}", busy.text());
    drop(push);
    // The slot comes back once the abandoned push's git exits.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = server.request(
            "GET",
            "/demo.git/info/refs?service=git-upload-pack",
            &[("Authorization", &auth)],
            b"",
        );
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed: {}", r.status);
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_lets_a_push_in_flight_finish() {
    let mut server = Server::start(&config());
    let client = GitClient::new();
    let (body, commit) = push_body(&server, &client, "refs/heads/drafts/slow/ws");
    let half = body.len() / 2;
    let push = SlowPush::start(&server, "demo", &body[..half]);
    std::thread::sleep(Duration::from_millis(300));
    server.terminate();
    // New connections are refused once the listener is closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(server.addr()).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut push = push;
    push.send(&body[half..]);
    let response = push.finish();
    assert_eq!(response.status, 200);
    assert!(response.text().contains("unpack ok"), "{}", response.text());
    assert!(
        response.text().contains("ok refs/heads/drafts/slow/ws"),
        "{}",
        response.text()
    );
    assert_eq!(
        server.wait(Duration::from_secs(20)),
        Some(0),
        "exit code after SIGTERM"
    );
    assert_eq!(
        server_git(
            &server.repo_dir("demo"),
            &["rev-parse", "refs/heads/drafts/slow/ws"]
        ),
        commit
    );
}

fn credential(stdout: &str, key: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}:")))
        .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("no `{key}:` line in:\n{stdout}"))
}

#[test]
fn the_embedded_default_prints_credentials_that_work_and_keeps_them() {
    let data = tempfile::tempdir().expect("data dir");
    let token = {
        let server = Server::start_embedded(data.path());
        let out = server.stdout_once("  try:");
        let user = TestUser {
            name: credential(&out, "user"),
            token: credential(&out, "token"),
        };
        assert!(
            out.contains(&format!("{}/demo.git", server.base())),
            "{out}"
        );
        let client = GitClient::new();
        client.git(&["clone", "-q", &server.url_as(&user, "demo"), "d"]);
        let commit = client.commit_package("d", "hello", &[("hello.txt", b"hello\n")], "hello");
        client.git_in(
            "d",
            &["push", "-q", "origin", "HEAD:refs/heads/drafts/hello/ws"],
        );
        assert_eq!(
            server_git(
                &data.path().join("repositories/demo.git"),
                &["rev-parse", "drafts/hello/ws"]
            ),
            commit
        );
        user.token
    };
    let again = Server::start_embedded(data.path());
    assert_eq!(credential(&again.stdout_once("  token:"), "token"), token);
}
