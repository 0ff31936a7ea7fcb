//! Finding 5 (no unapproved objects in the published view) and the last
//! part of finding 10 (a deleted revision's trees and blobs are refused by
//! `want`, not only its commit).
//!
//! The scenario drafts the way people do: an intermediate commit, a file
//! (a "secret") removed before proposing, and another workspace's
//! unpublished draft merged into the draft's ancestry. Everything that
//! history holds beyond the approved tree must be out of reach of
//! `/published/`, over protocol v0 and v2, while clones (full, depth 1,
//! depth 500) by git, dulwich and libgit2 and SHA pins keep working.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use cadgate_integration::scenarios::{cadgate_config, CadgateServer, Lab, ROOT};
use cadgate_integration::*;

const PROTOCOLS: [&str; 2] = ["protocol.version=0", "protocol.version=2"];

fn view_url(server: &Server) -> String {
    server.url_as(&TestUser::new("rita"), "published/root")
}

fn sibling(server: &Server) -> PathBuf {
    server.data_dir().join("published/root.git")
}

/// git in the repository at `dir` (no HOME, no global config); the output.
fn git_at(dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("run git")
}

/// Every object `rev-list --objects` lists for `args` in `dir`.
fn objects(dir: &Path, args: &[&str]) -> BTreeSet<String> {
    let mut full = vec!["rev-list", "--objects"];
    full.extend_from_slice(args);
    let out = git_at(dir, &full);
    assert!(out.status.success(), "{full:?}: {}", stderr(&out));
    stdout(&out)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// A fetch of `oid` by SHA from `url` into an empty repository.
fn want(protocol: &str, url: &str, oid: &str) -> Output {
    let client = GitClient::new();
    client.git(&["init", "-q", "--bare", "e"]);
    client
        .command(&["-C", "e", "-c", protocol, "fetch", "-q", url, oid])
        .output()
        .expect("run git fetch")
}

/// Require every `oids` to be refused by a `want` over v0 and v2.
fn assert_refused(url: &str, oids: &BTreeSet<String>, what: &str) {
    for protocol in PROTOCOLS {
        for oid in oids {
            let out = want(protocol, url, oid);
            let err = stderr(&out);
            assert!(
                !out.status.success()
                    && (err.contains("not our ref") || err.contains("unadvertised object")),
                "{protocol}: {what} {oid} was served:\n{err}"
            );
        }
    }
}

/// The view's repository is a consistent (shallow) repository.
fn assert_fsck_clean(dir: &Path) {
    let out = git_at(dir, &["fsck", "--no-progress", "--no-dangling"]);
    assert!(
        out.status.success() && stderr(&out).trim().is_empty(),
        "git fsck of the view: {}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// The draft of the scenario, published. Returns the objects of the draft's
/// history that are neither in a published tree nor an approval or proposal
/// tip commit, with the secret blob, the intermediate commit and the other
/// workspace's commit named.
struct Drafted {
    unapproved: BTreeSet<String>,
    secret: String,
    intermediate: String,
    other_workspace: String,
    approval: String,
    proposal: String,
}

fn draft_merge_and_publish(lab: &Lab, f: &str) -> Drafted {
    let file = |name: &str, text: &str| (format!("{f}/{name}"), Some(text.to_string()));
    // Another workspace's draft, never proposed.
    let other_workspace = lab.commit(
        "alice",
        Some("origin/main"),
        &[
            file("Kptfile", &kptfile(f)),
            file("data.yaml", "v: other\n"),
            file("other.yaml", "unpublished: other workspace\n"),
        ],
    );
    lab.accept(
        "alice",
        &[&format!("+HEAD:refs/heads/drafts/{f}/other")],
        "saved draft",
    );
    // This workspace: a secret committed, then removed with the next edit.
    let first = lab.commit(
        "alice",
        Some("origin/main"),
        &[
            file("Kptfile", &kptfile(f)),
            file("data.yaml", "v: 1\n"),
            file("secret.yaml", "password: hunter2\n"),
        ],
    );
    let intermediate = lab.commit(
        "alice",
        Some("HEAD"),
        &[
            (format!("{f}/secret.yaml"), None),
            file("data.yaml", "v: 2\n"),
        ],
    );
    // The other workspace merged in, then its file dropped again.
    let client = lab.client("alice");
    client.git_in(
        "w",
        &["merge", "-q", "--no-edit", "-X", "ours", &other_workspace],
    );
    lab.commit(
        "alice",
        Some("HEAD"),
        &[
            (format!("{f}/other.yaml"), None),
            file("data.yaml", "v: approved\n"),
        ],
    );
    lab.accept(
        "alice",
        &[&format!("+HEAD:refs/heads/drafts/{f}/ws")],
        "saved draft",
    );
    let proposal = lab.propose("alice", f, "ws");
    let before = lab.server_ref("refs/heads/main").expect("main");
    assert_eq!(lab.publish("bob", f, "ws"), 1);
    let approval = lab.server_ref("refs/heads/main").expect("main");
    let authoring = lab_dir(lab);
    let history = objects(&authoring, &[&proposal, "--not", &before]);
    let published = objects(&authoring, &["--no-walk", &approval, &proposal]);
    let unapproved: BTreeSet<String> = history.difference(&published).cloned().collect();
    let secret = lab
        .object(&first, &format!("{f}/secret.yaml"))
        .expect("secret");
    for (what, oid) in [
        ("the secret", &secret),
        ("the first draft commit", &first),
        ("the intermediate draft commit", &intermediate),
        ("the other workspace's draft", &other_workspace),
    ] {
        assert!(
            unapproved.contains(oid),
            "{what} {oid} is not in the draft history"
        );
    }
    Drafted {
        unapproved,
        secret,
        intermediate,
        other_workspace,
        approval,
        proposal,
    }
}

fn lab_dir(lab: &Lab) -> PathBuf {
    PathBuf::from(lab.server_git(&["rev-parse", "--absolute-git-dir"]))
}

/// Clone `url` with git (v0 and v2; full, depth 1 and depth 500): each
/// holds the approved tree and none of the draft history.
fn assert_git_clones(url: &str, drafted: &Drafted, f: &str) {
    for protocol in PROTOCOLS {
        for depth in [None, Some("1"), Some("500")] {
            let client = GitClient::new();
            let mut args = vec!["-c", protocol, "clone", "-q", "--no-local"];
            if let Some(depth) = depth {
                args.extend(["--depth", depth]);
            }
            args.extend([url, "c"]);
            client.git(&args);
            let head = client.git_in("c", &["rev-parse", "HEAD"]);
            assert_eq!(head, drafted.approval, "{protocol} depth {depth:?}");
            let data = std::fs::read_to_string(client.path("c").join(f).join("data.yaml"));
            assert_eq!(data.ok().as_deref(), Some("v: approved\n"));
            assert!(!client.path("c").join(f).join("secret.yaml").exists());
            // A full clone of the view is shallow too: its history stops at
            // the proposal tip.
            assert_eq!(
                client.git_in("c", &["rev-parse", "--is-shallow-repository"]),
                "true",
                "{protocol} depth {depth:?}"
            );
            for oid in [
                &drafted.secret,
                &drafted.intermediate,
                &drafted.other_workspace,
            ] {
                let out = client
                    .command(&["-C", "c", "cat-file", "-e", oid])
                    .output()
                    .expect("git");
                assert!(
                    !out.status.success(),
                    "{protocol} depth {depth:?}: {oid} came along"
                );
            }
            client.git_in("c", &["fsck", "--no-progress", "--connectivity-only"]);
        }
    }
}

/// Clone with another implementation (`dulwich` or `pygit2`, i.e. libgit2)
/// at depths 0 (full), 1 and 500; prints `depth head` per clone.
const CLIENTS_PY: &str = r#"
import sys, tempfile
lib, url = sys.argv[1:3]
for depth in (0, 1, 500):
    target = tempfile.mkdtemp() + "/c"
    if lib == "dulwich":
        from dulwich import porcelain
        from dulwich.repo import Repo
        porcelain.clone(url, target, bare=True, checkout=False, depth=depth or None,
                        errstream=sys.stderr.buffer)
        head = Repo(target).refs[b"refs/heads/main"].decode()
    else:
        import pygit2
        repo = pygit2.clone_repository(url, target, bare=True, depth=depth)
        head = str(repo.references["refs/heads/main"].target)
    print(depth, head)
"#;

fn python_clone(lib: &str, url: &str) -> Option<Output> {
    let probe = std::process::Command::new("python3")
        .args(["-c", &format!("import {lib}")])
        .output()
        .ok()?;
    if !probe.status.success() {
        return None;
    }
    Some(
        std::process::Command::new("python3")
            .args(["-c", CLIENTS_PY, lib, url])
            .output()
            .expect("python3"),
    )
}

#[test]
fn draft_history_is_never_in_the_published_view() {
    let transport = CadgateServer::start("");
    let server = &transport.server;
    let lab = Lab::new(&transport, ROOT, "leak");
    let f = lab.f();
    let drafted = draft_merge_and_publish(&lab, &f);
    let url = view_url(server);
    let view = sibling(server);

    // Not in the view's repository at all, and refused by want.
    for oid in &drafted.unapproved {
        assert!(
            !git_at(&view, &["cat-file", "-e", oid]).status.success(),
            "{oid} of the draft history is in the published view"
        );
    }
    assert_refused(&url, &drafted.unapproved, "an object of the draft history");
    assert_fsck_clean(&view);

    // What was approved is served: clones of every depth, and SHA pins of
    // the approval commit and the proposal tip the way git-sync fetches.
    assert_git_clones(&url, &drafted, &f);
    for oid in [&drafted.approval, &drafted.proposal] {
        for protocol in PROTOCOLS {
            let client = GitClient::new();
            client.git(&["init", "-q", "p"]);
            client.git(&[
                "-C", "p", "-c", protocol, "fetch", "-q", "--depth", "500", &url, oid,
            ]);
            assert_eq!(&client.git_in("p", &["rev-parse", "FETCH_HEAD"]), oid);
        }
    }
    // Another Git implementation: dulwich (required by the suite).
    let out = python_clone("dulwich", &url).expect("dulwich (scripts/test.sh installs it)");
    assert!(out.status.success(), "dulwich: {}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        ["0", "1", "500"]
            .iter()
            .map(|d| format!("{d} {}", drafted.approval))
            .collect::<Vec<_>>()
    );
    // libgit2 (pygit2, required by the suite too), which cannot read the
    // "shallow" lines of a shallow server's v0 advertisement: the view
    // leaves them out for it and bounds its full clone at the cut
    // (docs/published-view.md).
    let out = python_clone("pygit2", &url).expect("pygit2 (scripts/test.sh installs it)");
    assert!(out.status.success(), "libgit2: {}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        ["0", "1", "500"]
            .iter()
            .map(|d| format!("{d} {}", drafted.approval))
            .collect::<Vec<_>>()
    );
}

/// A view written by an older cadgate (which copied each proposal tip's
/// whole draft history in) is rebuilt when the server starts: cut, and the
/// draft history pruned.
#[test]
fn a_view_holding_draft_history_is_rebuilt_at_start() {
    let data = tempfile::tempdir().expect("tempdir");
    let config = cadgate_config();
    let transport = CadgateServer {
        server: Server::start_with_data(&config, data.path()),
    };
    let lab = Lab::new(&transport, ROOT, "rebuild");
    let f = lab.f();
    let drafted = draft_merge_and_publish(&lab, &f);
    let view = sibling(&transport.server);
    // What the older layout held: everything reachable from the refs, no
    // cut, no format mark.
    let authoring = lab_dir(&lab);
    let pack = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(&authoring)
        .args(["pack-objects", "--all", "--stdout", "-q"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("pack-objects");
    let mut index = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(&view)
        .args(["index-pack", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("index-pack");
    std::io::Write::write_all(&mut index.stdin.take().expect("stdin"), &pack.stdout)
        .expect("write the pack");
    assert!(index.wait().expect("index-pack").success());
    for name in ["shallow", "cadgate-view-format"] {
        match std::fs::remove_file(view.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{name}: {e}"),
            _ => {}
        }
    }
    // The leak as the review saw it: served by SHA.
    let client = GitClient::new();
    client.git(&["init", "-q", "--bare", "e"]);
    client.git(&[
        "-C",
        "e",
        "-c",
        "protocol.version=2",
        "fetch",
        "-q",
        &view_url(&transport.server),
        &drafted.intermediate,
    ]);
    drop(lab);
    drop(transport);

    let transport = CadgateServer {
        server: Server::start_with_data(&config, data.path()),
    };
    let url = view_url(&transport.server);
    for oid in &drafted.unapproved {
        assert!(
            !git_at(&view, &["cat-file", "-e", oid]).status.success(),
            "{oid} of the draft history is still in the published view"
        );
    }
    assert_refused(&url, &drafted.unapproved, "an object of the draft history");
    assert_fsck_clean(&view);
    assert_git_clones(&url, &drafted, &f);
}

/// A deleted revision: its approval commit, its proposal tip, their root
/// trees and the objects of its package that no published tip holds are
/// refused by `want` over v0 and v2; what the remaining revision holds is
/// still served.
#[test]
fn a_deleted_revisions_trees_and_blobs_are_refused_by_want() {
    let transport = CadgateServer::start("");
    let lab = Lab::new(&transport, ROOT, "withdrawn");
    let f = lab.f();
    let only_v1 = (
        format!("{f}/only-v1.yaml"),
        Some("deleted: later\n".to_string()),
    );
    lab.commit(
        "alice",
        Some("origin/main"),
        &[
            (format!("{f}/Kptfile"), Some(kptfile(&f))),
            (format!("{f}/data.yaml"), Some("v: 1\n".to_string())),
            only_v1.clone(),
        ],
    );
    lab.accept(
        "alice",
        &[&format!("+HEAD:refs/heads/drafts/{f}/one")],
        "saved draft",
    );
    lab.propose("alice", &f, "one");
    assert_eq!(lab.publish("bob", &f, "one"), 1);
    let v1 = lab.server_ref(&format!("refs/tags/{f}/v1")).expect("v1");
    lab.commit(
        "alice",
        Some("origin/main"),
        &[
            (format!("{f}/only-v1.yaml"), None),
            (format!("{f}/data.yaml"), Some("v: 2\n".to_string())),
        ],
    );
    lab.accept(
        "alice",
        &[&format!("+HEAD:refs/heads/drafts/{f}/two")],
        "saved draft",
    );
    lab.propose("alice", &f, "two");
    assert_eq!(lab.publish("bob", &f, "two"), 2);
    let v2 = lab.server_ref(&format!("refs/tags/{f}/v2")).expect("v2");
    let v1_objects: BTreeSet<String> = [
        v1.clone(),
        lab.server_git(&["rev-parse", &format!("{v1}^2")]),
        lab.server_git(&["rev-parse", &format!("{v1}^{{tree}}")]),
        lab.server_git(&["rev-parse", &format!("{v1}^2^{{tree}}")]),
        lab.object(&v1, &f).expect("v1's package tree"),
        lab.object(&v1, &format!("{f}/only-v1.yaml"))
            .expect("only-v1"),
        lab.object(&v1, &format!("{f}/data.yaml"))
            .expect("v1's data"),
    ]
    .into_iter()
    .collect();
    let kept = lab.object(&v2, &format!("{f}/Kptfile")).expect("Kptfile");
    assert_eq!(
        lab.object(&v1, &format!("{f}/Kptfile")).as_deref(),
        Some(kept.as_str())
    );
    lab.propose_deletion("alice", &f, 1);
    lab.accept("bob", &[&format!(":refs/tags/{f}/v1")], "deleted");

    let url = view_url(&transport.server);
    for protocol in PROTOCOLS {
        for oid in &v1_objects {
            let out = want(protocol, &url, oid);
            let err = stderr(&out);
            assert!(
                !out.status.success() && err.contains("deleted package revision"),
                "{protocol}: {oid} of the deleted revision was served:\n{err}"
            );
        }
    }
    // The Kptfile blob v2 shares with v1, and v2 itself, are served.
    let out = want("protocol.version=2", &url, &kept);
    assert!(out.status.success(), "{}", stderr(&out));
    let client = GitClient::new();
    client.git(&["init", "-q", "p"]);
    client.git(&["-C", "p", "fetch", "-q", "--depth", "1", &url, &v2]);
}
