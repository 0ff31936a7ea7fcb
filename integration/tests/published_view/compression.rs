//! Compressed answers (issue 14, item 2): ref advertisements and `ls-refs`
//! answers go out in the client's `Accept-Encoding` above a size threshold;
//! pack data never; a client that asks for nothing gets them as they are.
//! docs/limits.md, "Compressed answers".

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;

use cadgate_integration::*;

/// Packages and published revisions of the repository (one tag each).
const PACKAGES: usize = 100;
const REVISIONS: usize = 3;

fn config() -> String {
    format!(
        "[[repository]]\nname = \"fleet\"\n\n{}\n{}",
        TestUser::new("rita").config(&["reader"], &[]),
        TestUser::new("alice").config(&["author"], &[])
    )
}

/// An authoring repository with PACKAGES x REVISIONS published revisions,
/// each tag at its own commit (so no two refs share a SHA, as in life);
/// the server builds the published view from it at start.
fn many_revisions(data: &Path) {
    let repo = data.join("repositories").join("fleet.git");
    std::fs::create_dir_all(&repo).expect("mkdir");
    let client = GitClient::new();
    let dir = repo.display().to_string();
    client.git(&["init", "-q", "--bare", "-b", "main", &dir]);
    let mut stream = String::new();
    let mut tags = String::new();
    let mut mark = 0;
    for n in 1..=REVISIONS {
        for p in 0..PACKAGES {
            let name = format!("pkg{p:03}");
            let kptfile = kptfile(&name);
            let data = format!("name: {name}\nrevision: {n}\n");
            mark += 1;
            stream.push_str(&format!(
                "commit refs/heads/main\nmark :{mark}\ncommitter Bench <b@example.com> {} +0000\ndata 7\nrelease\nM 100644 inline {name}/Kptfile\ndata {}\n{kptfile}\nM 100644 inline {name}/data.yaml\ndata {}\n{data}\n\n",
                1_700_000_000 + mark,
                kptfile.len(),
                data.len()
            ));
            tags.push_str(&format!("create refs/tags/{name}/v{n} :{mark}\n"));
        }
    }
    let mut child = client
        .command(&[
            "--git-dir",
            &dir,
            "fast-import",
            "--quiet",
            "--export-marks=marks",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stream.as_bytes())
        .expect("feed fast-import");
    assert!(child.wait().expect("fast-import").success());
    // Marks to SHAs, then every tag in one `update-ref --stdin`.
    let marks = std::fs::read_to_string(client.path("marks")).expect("marks");
    let sha: std::collections::HashMap<&str, &str> =
        marks.lines().filter_map(|l| l.split_once(' ')).collect();
    let tags: String = tags
        .lines()
        .map(|l| {
            let (head, m) = l.rsplit_once(' ').expect("mark");
            format!("{head} {}\n", sha[m])
        })
        .collect();
    let mut child = client
        .command(&["--git-dir", &dir, "update-ref", "--stdin"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("git update-ref");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(tags.as_bytes())
        .expect("feed update-ref");
    assert!(child.wait().expect("update-ref").success());
}

/// `sha ref` lines of `git ls-remote`.
fn ls_remote(protocol: &str, url: &str) -> BTreeSet<String> {
    let client = GitClient::new();
    stdout(&client.git(&["-c", protocol, "ls-remote", url]))
        .lines()
        .map(|l| l.replace('\t', " "))
        .collect()
}

/// The `sha ref` lines of a pkt-line ref list (a v0 advertisement or a v2
/// `ls-refs` answer): capabilities, `shallow` lines and the service line
/// left out.
fn refs_of(answer: &[u8]) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    let mut rest = answer;
    while rest.len() >= 4 {
        let length = usize::from_str_radix(std::str::from_utf8(&rest[..4]).expect("hex"), 16)
            .expect("pkt-line length");
        if length < 4 {
            rest = &rest[4..];
            continue;
        }
        let line = String::from_utf8_lossy(&rest[4..length]);
        let line = line.split('\0').next().unwrap_or("").trim_end();
        if !line.starts_with('#') && !line.starts_with("shallow ") {
            // v2 `ls-refs` may add ` symref-target:…`/` peeled:…`.
            let mut words = line.split(' ');
            if let (Some(sha), Some(name)) = (words.next(), words.next()) {
                refs.insert(format!("{sha} {name}"));
            }
        }
        rest = &rest[length..];
    }
    refs
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("a gzip body");
    out
}

fn pkt(line: &str) -> String {
    format!("{:04x}{line}", line.len() + 4)
}

/// git's v2 `ls-refs` of a poll that follows tags.
fn ls_refs_request() -> Vec<u8> {
    format!(
        "{}{}0001{}{}{}{}{}0000",
        pkt("command=ls-refs\n"),
        pkt("object-format=sha1\n"),
        pkt("peel\n"),
        pkt("symrefs\n"),
        pkt("ref-prefix HEAD\n"),
        pkt("ref-prefix refs/heads/\n"),
        pkt("ref-prefix refs/tags/\n"),
    )
    .into_bytes()
}

/// One request with `extra` headers (an `Accept-Encoding`, or none).
fn ask(
    server: &Server,
    user: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let auth = basic(&TestUser::new(user));
    let mut all = vec![("Authorization", auth.as_str())];
    all.extend_from_slice(headers);
    let r = server.request(method, path, &all, body);
    assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
    r
}

/// The same request plain and with `Accept-Encoding: gzip`: both answers
/// carry `Vary: Accept-Encoding`, the second is gzip, smaller, and decodes
/// to the first. Returns the plain answer.
fn plain_and_gzip(
    server: &Server,
    user: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let plain = ask(server, user, method, path, headers, body);
    assert_eq!(plain.header("content-encoding"), None, "{path}");
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"), "{path}");
    let mut with = headers.to_vec();
    with.push(("Accept-Encoding", "gzip"));
    let gzip = ask(server, user, method, path, &with, body);
    assert_eq!(gzip.header("content-encoding"), Some("gzip"), "{path}");
    assert_eq!(gzip.header("vary"), Some("Accept-Encoding"), "{path}");
    assert!(
        gzip.body.len() < plain.body.len(),
        "{path}: {} compressed bytes, {} plain",
        gzip.body.len(),
        plain.body.len()
    );
    assert_eq!(gunzip(&gzip.body), plain.body, "{path}");
    plain.body
}

#[test]
fn ref_lists_are_compressed_when_asked_and_identical_to_plain_ones() {
    let data = tempfile::tempdir().expect("tempdir");
    many_revisions(data.path());
    let server = Server::start_with_data(&config(), data.path());
    let view = server.url_as(&TestUser::new("rita"), "published/fleet");

    // git (v2 and v0, compression on as git always asks) and a client that
    // asks for nothing see the same refs.
    let v2 = ls_remote("protocol.version=2", &view);
    let v0 = ls_remote("protocol.version=0", &view);
    assert_eq!(v2.len(), PACKAGES * REVISIONS + 2, "HEAD, main, tags");
    assert_eq!(v2, v0);
    let advert = "/published/fleet.git/info/refs?service=git-upload-pack";
    let plain = plain_and_gzip(&server, "rita", "GET", advert, &[], b"");
    assert_eq!(refs_of(&plain), v0);
    // What git itself asks for: zstd where its libcurl has it, else gzip;
    // either way the answer is compressed and smaller.
    let git_asks = [("Accept-Encoding", "deflate, gzip, br, zstd")];
    let r = ask(&server, "rita", "GET", advert, &git_asks, b"");
    assert_eq!(r.header("content-encoding"), Some("zstd"));
    assert!(r.body.len() < plain.len(), "{} bytes", r.body.len());

    // Protocol v2's `ls-refs`, computed by git and then replayed from memory.
    let v2_header = [("Git-Protocol", "version=2")];
    let rpc = [
        ("Git-Protocol", "version=2"),
        ("Content-Type", "application/x-git-upload-pack-request"),
    ];
    let upload = "/published/fleet.git/git-upload-pack";
    for _ in 0..2 {
        let listed = plain_and_gzip(&server, "rita", "POST", upload, &rpc, &ls_refs_request());
        assert_eq!(refs_of(&listed), v2);
    }
    // The v2 capability advertisement is under the threshold: plain.
    let mut asks = v2_header.to_vec();
    asks.push(("Accept-Encoding", "gzip"));
    let r = ask(&server, "rita", "GET", advert, &asks, b"");
    assert!(r.body.len() < 1024, "{} bytes", r.body.len());
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));

    // Pack data is never compressed again: a v2 fetch and a v0 fetch.
    let main = v2
        .iter()
        .find(|l| l.ends_with(" refs/heads/main"))
        .and_then(|l| l.split(' ').next())
        .expect("main")
        .to_string();
    let fetch = format!(
        "{}0001{}{}{}0000",
        pkt("command=fetch\n"),
        pkt("ofs-delta\n"),
        pkt(&format!("want {main}\n")),
        pkt("done\n")
    );
    let mut asks = rpc.to_vec();
    asks.push(("Accept-Encoding", "gzip"));
    let r = ask(&server, "rita", "POST", upload, &asks, fetch.as_bytes());
    assert_eq!(r.header("content-encoding"), None);
    assert!(r.text().contains("packfile"), "{}", r.text());
    let v0_fetch = format!(
        "{}0000{}",
        pkt(&format!("want {main} ofs-delta\n")),
        pkt("done\n")
    );
    let v0_rpc = [
        ("Content-Type", "application/x-git-upload-pack-request"),
        ("Accept-Encoding", "gzip"),
    ];
    let r = ask(
        &server,
        "rita",
        "POST",
        upload,
        &v0_rpc,
        v0_fetch.as_bytes(),
    );
    assert_eq!(r.header("content-encoding"), None);
    assert!(r.body.windows(4).any(|w| w == b"PACK"), "no pack");
    assert!(r.header("vary").is_none());

    // The authoring view: both services' advertisements and `ls-refs`.
    let authoring_refs: BTreeSet<String> = ls_remote(
        "protocol.version=2",
        &server.url_as(&TestUser::new("rita"), "fleet"),
    );
    let plain = plain_and_gzip(
        &server,
        "rita",
        "GET",
        "/fleet.git/info/refs?service=git-upload-pack",
        &[],
        b"",
    );
    assert_eq!(refs_of(&plain), authoring_refs);
    // The push advertisement lists no published tag (docs/pushing.md), so
    // it may stay under the threshold: compressed exactly when it reaches
    // 1 KiB, and marked `Vary` either way.
    let path = "/fleet.git/info/refs?service=git-receive-pack";
    let plain = ask(&server, "alice", "GET", path, &[], b"");
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"), "{path}");
    let asked = ask(
        &server,
        "alice",
        "GET",
        path,
        &[("Accept-Encoding", "gzip")],
        b"",
    );
    assert_eq!(asked.header("vary"), Some("Accept-Encoding"), "{path}");
    if plain.body.len() >= 1024 {
        assert_eq!(asked.header("content-encoding"), Some("gzip"), "{path}");
        assert_eq!(gunzip(&asked.body), plain.body, "{path}");
    } else {
        assert_eq!(asked.header("content-encoding"), None, "{path}");
        assert_eq!(asked.body, plain.body, "{path}");
    }
    let pushable = refs_of(&plain.body);
    assert!(
        pushable.iter().any(|r| r.ends_with(" refs/heads/main"))
            && pushable.iter().all(|r| !r.contains(" refs/tags/")),
        "{pushable:?}"
    );
    let listed = plain_and_gzip(
        &server,
        "rita",
        "POST",
        "/fleet.git/git-upload-pack",
        &rpc,
        &ls_refs_request(),
    );
    assert!(refs_of(&listed).len() > PACKAGES);

    // Clones and git-sync's poll through compressed answers.
    let client = GitClient::new();
    client.git(&["clone", "-q", "--depth", "1", &view, "c"]);
    assert_eq!(client.git_in("c", &["rev-parse", "HEAD"]), main);
    let (sync, root) = config_sync::git_sync_root(&view);
    assert_eq!(
        config_sync::git_sync_poll(&sync, &root, &view, "pkg042/v2", 500),
        v2.iter()
            .find(|l| l.ends_with(" refs/tags/pkg042/v2"))
            .and_then(|l| l.split(' ').next())
            .expect("tag")
    );
}

/// Other implementations: dulwich (urllib3) and libgit2 (pygit2, which
/// sends no Accept-Encoding) list the same refs of the large view.
#[test]
fn dulwich_and_libgit2_list_the_same_refs_of_a_large_view() {
    let data = tempfile::tempdir().expect("tempdir");
    many_revisions(data.path());
    let server = Server::start_with_data(&config(), data.path());
    let view = server.url_as(&TestUser::new("rita"), "published/fleet");
    let git: BTreeSet<String> = ls_remote("protocol.version=0", &view)
        .into_iter()
        .filter(|l| !l.ends_with(" HEAD"))
        .collect();
    let script = r#"
import sys
url, lib = sys.argv[1:3]
if lib == "dulwich":
    from dulwich import porcelain
    refs = porcelain.ls_remote(url)
    refs = getattr(refs, "refs", refs)
    for name, sha in refs.items():
        if sha is not None and name != b"HEAD":
            print(sha.decode(), name.decode())
else:
    import pygit2, tempfile
    repo = pygit2.init_repository(tempfile.mkdtemp(), bare=True)
    remote = repo.remotes.create_anonymous(url)
    heads = remote.list_heads() if hasattr(remote, "list_heads") else remote.ls_remotes()
    for head in heads:
        name = head["name"] if isinstance(head, dict) else head.name
        oid = head["oid"] if isinstance(head, dict) else head.oid
        if name != "HEAD":
            print(oid, name)
"#;
    for lib in ["dulwich", "pygit2"] {
        let out = std::process::Command::new("python3")
            .args(["-c", script, &view, lib])
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{lib} (python3 -m pip install dulwich pygit2; scripts/test.sh does) failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(listed, git, "{lib}");
    }
}
