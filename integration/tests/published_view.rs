//! The published view (contract §8): what Config Sync's git-sync and kpt
//! clone. Only the branch, `HEAD` and `F/vN` tags; only published objects;
//! read-only; in step with publishing the moment a publish's push returns.

use std::path::Path;

use cadgate_integration::config_sync::{git_sync_poll, git_sync_root, synced_file};
use cadgate_integration::scenarios::{CadgateServer, Lab, ROOT};
use cadgate_integration::*;

#[path = "published_view/compression.rs"]
mod compression;

/// The repositories of the scenario config plus `open`, whose published view
/// anyone may read.
const OPEN: &str = "[[repository]]\nname = \"open\"\npublished_anonymous = true\n\n";

fn view_url(server: &Server, user: &str, repository: &str) -> String {
    server.url_as(&TestUser::new(user), &format!("published/{repository}"))
}

/// The refs of the view as `git ls-remote` shows them.
fn ls_remote(client: &GitClient, protocol: &str, url: &str, patterns: &[&str]) -> Vec<String> {
    let mut args = vec!["-c", protocol, "ls-remote", "--symref", url];
    args.extend_from_slice(patterns);
    stdout(&client.git(&args))
        .lines()
        .map(|l| match l.split_once('\t') {
            Some((target, name)) if target.starts_with("ref: ") => {
                format!("{name} -> {}", &target[5..])
            }
            Some((_, name)) => name.to_string(),
            None => l.to_string(),
        })
        .collect()
}

fn object_count(client: &GitClient, root: &Path) -> String {
    let out = stdout(&client.git(&["-C", &root.display().to_string(), "count-objects", "-v"]));
    out.lines()
        .filter(|l| l.starts_with("count:") || l.starts_with("in-pack:"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn git_sync_pins_a_tag_follows_the_branch_pins_a_sha_and_rolls_back() {
    let transport = CadgateServer::start("");
    let lab = Lab::new(&transport, ROOT, "sync");
    let f = lab.f();
    assert_eq!(lab.release(&f, "one", "v: one\n"), 1);
    let v1 = lab.server_ref(&format!("refs/tags/{f}/v1")).expect("v1");
    assert_eq!(lab.release(&f, "two", "v: two\n"), 2);
    let v2 = lab.server_ref(&format!("refs/tags/{f}/v2")).expect("v2");
    let url = view_url(&transport.server, "rita", "root");

    // revision: F/v2 (depth 500).
    let (client, root) = git_sync_root(&url);
    let synced = git_sync_poll(&client, &root, &url, &format!("{f}/v2"), 500);
    assert_eq!(synced, v2);
    assert_eq!(
        synced_file(&root, &format!("{f}/data.yaml")).as_deref(),
        Some("v: two\n")
    );
    // A second poll with nothing new moves nothing and brings no objects.
    let before = object_count(&client, &root);
    assert_eq!(
        git_sync_poll(&client, &root, &url, &format!("{f}/v2"), 500),
        v2
    );
    assert_eq!(object_count(&client, &root), before);
    // The repeated poll was answered from memory: git ran for the first only.
    assert!(
        transport.server.stderr().contains("replayed=true"),
        "no poll was replayed:\n{}",
        transport.server.stderr()
    );
    // Rollback: pin the older tag.
    assert_eq!(
        git_sync_poll(&client, &root, &url, &format!("{f}/v1"), 500),
        v1
    );
    assert_eq!(
        synced_file(&root, &format!("{f}/data.yaml")).as_deref(),
        Some("v: one\n")
    );

    // branch: main (depth 1) follows publishing.
    let (client, root) = git_sync_root(&url);
    assert_eq!(git_sync_poll(&client, &root, &url, "main", 1), v2);
    assert_eq!(lab.release(&f, "three", "v: three\n"), 3);
    let main = lab.server_ref("refs/heads/main").expect("main");
    assert_eq!(git_sync_poll(&client, &root, &url, "main", 1), main);
    assert_eq!(
        synced_file(&root, &format!("{f}/data.yaml")).as_deref(),
        Some("v: three\n")
    );

    // A full SHA of a published commit that is no ref's tip: v1's proposal.
    let proposal = lab.server_git(&["rev-parse", &format!("{v1}^2")]);
    let (client, root) = git_sync_root(&url);
    assert_eq!(
        git_sync_poll(&client, &root, &url, &proposal, 500),
        proposal
    );
    assert_eq!(
        synced_file(&root, &format!("{f}/data.yaml")).as_deref(),
        Some("v: one\n")
    );
}

#[test]
fn the_view_follows_publishing_and_deletion_at_once() {
    let transport = CadgateServer::start("");
    let lab = Lab::new(&transport, ROOT, "follow");
    let f = lab.f();
    let url = view_url(&transport.server, "rita", "root");
    let client = GitClient::new();
    let tag = format!("refs/tags/{f}/v1");
    lab.release(&f, "ws", "n: 1\n");
    // When the publish's push has returned, the view has the tag and branch.
    let refs = stdout(&client.git(&["ls-remote", &url]));
    let main = lab.server_ref("refs/heads/main").expect("main");
    assert!(refs.contains(&format!("{main}\trefs/heads/main")), "{refs}");
    assert!(refs.contains(&format!("{main}\t{tag}")), "{refs}");

    // A cluster following the branch deploys it...
    let (sync, root) = git_sync_root(&url);
    git_sync_poll(&sync, &root, &url, "main", 1);
    assert!(synced_file(&root, &format!("{f}/Kptfile")).is_some());
    // ...until its only revision's deletion is approved.
    lab.propose_deletion("alice", &f, 1);
    lab.accept("bob", &[&format!(":{tag}")], "no longer holds");
    let refs = stdout(&client.git(&["ls-remote", &url]));
    assert!(!refs.contains(&tag), "{refs}");
    git_sync_poll(&sync, &root, &url, "main", 1);
    assert!(
        !root.join("rev").join(&f).exists(),
        "the package is still deployed"
    );
}

#[test]
fn kpt_resolves_nested_tags_and_fetches_the_lock_commit_without_dot_git() {
    let transport = CadgateServer::start("");
    let lab = Lab::new(&transport, ROOT, "kpt");
    let f = format!("{}/b/c", lab.f());
    lab.release(&f, "one", "n: 1\n");
    let v1 = lab.server_ref(&format!("refs/tags/{f}/v1")).expect("v1");
    lab.release(&f, "two", "n: 2\n");
    let url = view_url(&transport.server, "rita", "root");
    let uri = url.strip_suffix(".git").expect(".git URL").to_string();
    let client = GitClient::new();
    client.git(&["init", "-q", "c"]);
    client.git(&["-C", "c", "remote", "add", "origin", &uri]);
    let listed = stdout(&client.git(&[
        "-C",
        "c",
        "ls-remote",
        "--heads",
        "--tags",
        "--refs",
        "origin",
    ]));
    // kpt tries a/b/c/v1, a/b/v1, a/v1, v1 and takes the first tag that exists.
    let segments: Vec<&str> = f.split('/').collect();
    let reference = (0..=segments.len())
        .rev()
        .map(|n| {
            let dir = segments[..n].join("/");
            if dir.is_empty() {
                "v1".to_string()
            } else {
                format!("{dir}/v1")
            }
        })
        .find(|candidate| {
            listed.contains(&format!("refs/tags/{candidate}\n"))
                || listed.ends_with(&format!("refs/tags/{candidate}"))
        })
        .expect("a tag for v1");
    assert_eq!(reference, format!("{f}/v1"));
    client.git(&["-C", "c", "fetch", "-q", "origin", "--depth=1", &reference]);
    client.git(&["-C", "c", "reset", "-q", "--hard", "FETCH_HEAD"]);
    assert_eq!(
        std::fs::read_to_string(client.path("c").join(&f).join("data.yaml")).expect("package"),
        "n: 1\n"
    );
    // kpt pkg update fetches the upstreamLock commit by SHA.
    let fresh = GitClient::new();
    fresh.git(&["init", "-q", "u"]);
    fresh.git(&["-C", "u", "remote", "add", "origin", &uri]);
    fresh.git(&["-C", "u", "fetch", "-q", "origin", "--depth=1", &v1]);
    assert_eq!(fresh.git_in("u", &["rev-parse", "FETCH_HEAD"]), v1);
}

#[test]
fn only_published_refs_are_advertised_and_only_published_objects_served() {
    let transport = CadgateServer::start("");
    let lab = Lab::new(&transport, ROOT, "hidden");
    let f = lab.f();
    lab.release(&f, "one", "n: 1\n");
    lab.release(&f, "two", "n: 2\n");
    let deleted = lab.server_ref(&format!("refs/tags/{f}/v1")).expect("v1");
    lab.propose_deletion("alice", &f, 1);
    lab.accept("bob", &[&format!(":refs/tags/{f}/v1")], "deleted");
    // Leave a draft, a rejected proposal, a proposal and a deletion proposal.
    let draft = lab.draft("alice", &f, "draft", "secret: draft\n");
    lab.draft("alice", &f, "rejected", "secret: rejected\n");
    let rejected = lab.propose("alice", &f, "rejected");
    lab.client("bob");
    lab.accept(
        "bob",
        &[&format!("{rejected}:refs/heads/drafts/{f}/rejected")],
        "rejected",
    );
    lab.draft("alice", &f, "proposed", "secret: proposed\n");
    lab.propose("alice", &f, "proposed");
    lab.propose_deletion("alice", &f, 2);
    let authoring = lab.refs();
    for prefix in [
        "refs/heads/drafts/",
        "refs/heads/proposed/",
        "refs/heads/deletionProposed/",
        "refs/notes/",
    ] {
        assert!(
            authoring.keys().any(|r| r.starts_with(prefix)),
            "the authoring view has {prefix}"
        );
    }

    let url = view_url(&transport.server, "rita", "root");
    let client = GitClient::new();
    let expected = vec![
        "HEAD -> refs/heads/main".to_string(),
        "HEAD".to_string(),
        "refs/heads/main".to_string(),
        format!("refs/tags/{f}/v2"),
    ];
    for protocol in ["protocol.version=0", "protocol.version=2"] {
        assert_eq!(
            ls_remote(&client, protocol, &url, &[]),
            expected,
            "{protocol}"
        );
        assert_eq!(
            ls_remote(&client, protocol, &url, &["refs/heads/*"]),
            vec!["refs/heads/main".to_string()],
            "{protocol}"
        );
        assert!(ls_remote(&client, protocol, &url, &["refs/heads/drafts/*"]).is_empty());
        assert!(ls_remote(&client, protocol, &url, &["refs/notes/*"]).is_empty());
        assert_eq!(
            ls_remote(&client, protocol, &url, &["refs/tags/*"]),
            vec![format!("refs/tags/{f}/v2")],
            "{protocol}"
        );
    }

    // Wants by SHA: published commits that are no tip are served; drafts,
    // rejected proposals and deleted revisions are not, over v0 and v2.
    let served = lab.server_git(&["rev-parse", "refs/heads/main^2"]);
    for protocol in ["protocol.version=0", "protocol.version=2"] {
        let fetcher = GitClient::new();
        fetcher.git(&["init", "-q", "f"]);
        fetcher.git(&["-C", "f", "-c", protocol, "fetch", "-q", &url, &served]);
        for (what, oid) in [
            ("a draft", &draft),
            ("a rejected proposal", &rejected),
            ("a deleted revision", &deleted),
        ] {
            // An empty repository each time, so git must ask the server.
            let empty = format!("e{}", &oid[..8]);
            fetcher.git(&["init", "-q", &empty]);
            let out = fetcher.git_fails(&["-C", &empty, "-c", protocol, "fetch", "-q", &url, oid]);
            let err = stderr(&out);
            assert!(
                err.contains("not our ref") || err.contains("unadvertised object"),
                "{protocol}: {what} {oid}: {err}"
            );
        }
    }
    // The view's repository holds no unpublished object at all.
    let published = transport.server.data_dir().join("published/root.git");
    for oid in [&draft, &rejected] {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&published)
            .args(["cat-file", "-e", oid])
            .output()
            .expect("git");
        assert!(
            !out.status.success(),
            "{oid} is in the published repository"
        );
    }
}

#[test]
fn the_view_is_read_only_and_needs_a_user_unless_anonymous() {
    let transport = CadgateServer::start(OPEN);
    let server = &transport.server;
    let lab = Lab::new(&transport, ROOT, "guard");
    let f = lab.f();
    lab.release(&f, "ws", "n: 1\n");
    let before = lab.refs();
    // Push: 403 with where authoring happens, even for an admin.
    let pusher = GitClient::new();
    pusher.git(&[
        "clone",
        "-q",
        &server.url_as(&TestUser::new("ada"), "root"),
        "w",
    ]);
    let out = pusher.git_fails(&[
        "-C",
        "w",
        "push",
        &view_url(server, "ada", "root"),
        "HEAD:refs/heads/drafts/x/ws",
    ]);
    let err = stderr(&out);
    assert!(err.contains("403") || err.contains("read-only"), "{err}");
    assert!(err.contains("/root.git"), "{err}");
    assert_eq!(lab.refs(), before);
    // Anonymous: 401 on a view that needs a user; wrong token: 401.
    let anonymous = GitClient::new();
    let bare = format!("{}/published/root.git", server.base());
    let err = stderr(&anonymous.git_fails(&["ls-remote", &bare]));
    assert!(
        err.contains("401")
            || err.contains("Authentication failed")
            || err.contains("could not read Username"),
        "{err}"
    );
    let wrong = bare.replace("http://", "http://rita:wrong@");
    let err = stderr(&anonymous.git_fails(&["ls-remote", &wrong]));
    assert!(
        err.contains("401") || err.contains("Authentication failed"),
        "{err}"
    );
    // A reader may read it.
    anonymous.git(&["ls-remote", &view_url(server, "rita", "root")]);
    // published_anonymous = true: anyone may read, nobody may push.
    let open = format!("{}/published/open", server.base());
    let refs = stdout(&anonymous.git(&["ls-remote", &open]));
    assert!(refs.contains("refs/heads/main"), "{refs}");
    let r = server.get("/published/open.git/info/refs?service=git-receive-pack");
    assert_eq!(r.status, 403);
}

#[test]
fn a_git_implementation_other_than_git_clones_a_pinned_revision() {
    let transport = CadgateServer::start("");
    let lab = Lab::new(&transport, ROOT, "dulwich");
    let f = lab.f();
    lab.release(&f, "ws", "n: 1\n");
    let tag = format!("refs/tags/{f}/v1");
    let tree = lab.server_git(&["rev-parse", &format!("{tag}^{{tree}}")]);
    let url = view_url(&transport.server, "rita", "root");
    let target = tempfile::tempdir().expect("tempdir");
    let script = r#"
import sys
from dulwich import porcelain
from dulwich.repo import Repo
url, target, ref = sys.argv[1:4]
porcelain.clone(url, target, bare=True, checkout=False, errstream=sys.stderr.buffer)
repo = Repo(target)
print(repo[repo.refs[ref.encode()]].tree.decode())
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &url])
        .arg(target.path().join("clone"))
        .arg(&tag)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "dulwich (python3 -m pip install dulwich; scripts/test.sh does) failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), tree);
}

/// Publish `content` from a draft of two commits (an intermediate one
/// first), so the view cuts the proposal tip from its history.
fn release_with_history(lab: &Lab, f: &str, ws: &str, content: &str) -> u64 {
    let write = |text: &str| {
        vec![
            (format!("{f}/Kptfile"), Some(kptfile(f))),
            (format!("{f}/data.yaml"), Some(text.to_string())),
        ]
    };
    lab.commit(
        "alice",
        Some("origin/main"),
        &write("draft: intermediate\n"),
    );
    lab.commit("alice", Some("HEAD"), &write(content));
    lab.accept(
        "alice",
        &[&format!("+HEAD:refs/heads/drafts/{f}/{ws}")],
        "saved draft",
    );
    lab.propose("alice", f, ws);
    lab.publish("bob", f, ws)
}

/// What git clients see of the cut (docs/published-view.md, "What clients
/// see"): a full clone is shallow; fetches with a depth (git-sync, kpt) and
/// `--update-shallow` follow new publishes; a plain fetch that would bring
/// a new cut is refused by git itself (a warning and nothing updated).
#[test]
fn a_clone_of_the_view_is_shallow_and_follows_with_a_depth() {
    let transport = CadgateServer::start("");
    let lab = Lab::new(&transport, ROOT, "shallow");
    let f = lab.f();
    assert_eq!(release_with_history(&lab, &f, "one", "n: 1\n"), 1);
    let url = view_url(&transport.server, "rita", "root");
    let client = GitClient::new();
    client.git(&["clone", "-q", &url, "c"]);
    assert_eq!(
        client.git_in("c", &["rev-parse", "--is-shallow-repository"]),
        "true"
    );
    let v1 = lab.server_ref(&format!("refs/tags/{f}/v1")).expect("v1");
    let proposal = lab.server_git(&["rev-parse", &format!("{v1}^2")]);
    // History: the approval commit and the reviewed proposal tip, no draft.
    let history = client.git_in("c", &["rev-list", "HEAD"]);
    assert!(history.contains(&proposal), "{history}");
    let intermediate = lab.server_git(&["rev-parse", &format!("{proposal}^")]);
    assert!(!history.contains(&intermediate), "{history}");

    assert_eq!(release_with_history(&lab, &f, "two", "n: 2\n"), 2);
    let main = lab.server_ref("refs/heads/main").expect("main");
    // A plain fetch: git rejects the refs that need a new shallow commit,
    // with a warning, and leaves them where they were.
    let before = client.git_in("c", &["rev-parse", "origin/main"]);
    let err = stderr(&client.git(&["-C", "c", "fetch", "-q", "origin"]));
    assert!(
        err.contains("shallow roots are not allowed to be updated"),
        "{err}"
    );
    assert_eq!(client.git_in("c", &["rev-parse", "origin/main"]), before);
    // A commit named by SHA, into a repository that is not shallow: git
    // refuses (a warning or an error, by case).
    let fresh = GitClient::new();
    fresh.git(&["init", "-q", "u"]);
    let out = fresh
        .command(&["-C", "u", "fetch", "-q", &url, &main])
        .output()
        .expect("git fetch");
    let err = stderr(&out);
    assert!(
        err.contains("shallow roots are not allowed to be updated")
            || err.contains("did not send all necessary objects"),
        "{err}"
    );
    // With a depth, it does.
    fresh.git(&["-C", "u", "fetch", "-q", "--depth", "1", &url, &main]);
    assert_eq!(fresh.git_in("u", &["rev-parse", "FETCH_HEAD"]), main);
    client.git(&["-C", "c", "fetch", "-q", "--update-shallow", "origin"]);
    assert_eq!(client.git_in("c", &["rev-parse", "origin/main"]), main);
    let (sync, root) = git_sync_root(&url);
    assert_eq!(git_sync_poll(&sync, &root, &url, "main", 500), main);
    assert_eq!(
        synced_file(&root, &format!("{f}/data.yaml")).as_deref(),
        Some("n: 2\n")
    );
}
