//! What a pusher is shown (issue 14, item 4): the receive-pack
//! advertisement of the authoring view lists the branch, drafts, proposals,
//! deletion proposals and the notes, and of the tags only those with a
//! deletion proposal, so it does not grow with the published revisions;
//! every §6 transition still goes through `git push` (Porch's approval form
//! included), and cadgate's refusals still reach the pusher.
//!
//! Runs where cadgate serves the advertisement, the server and forward
//! mode, and in hook mode on a host whose admin hides the tags from the
//! advertisement with the Apache rule of docs/pushing.md.

use std::collections::BTreeSet;
use std::process::Output;

use cadgate_integration::*;

use super::modes::*;

/// The advertisement a pusher gets: ref names (the capabilities line's
/// placeholder left out) and its size in bytes, fetched with curl.
fn push_advertisement(host: &Host, user: &str) -> (Vec<String>, usize) {
    let url = format!("{}/info/refs?service=git-receive-pack", host.url_as(user));
    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail", &url])
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl: {}", stderr(&out));
    let body = out.stdout;
    let mut names = Vec::new();
    let mut rest = &body[..];
    let mut lines = 0;
    while rest.len() >= 4 {
        let len = usize::from_str_radix(&String::from_utf8_lossy(&rest[..4]), 16)
            .expect("a pkt-line length");
        if len == 0 {
            rest = &rest[4..];
            continue;
        }
        let line = String::from_utf8_lossy(&rest[4..len]).into_owned();
        rest = &rest[len..];
        lines += 1;
        if lines == 1 {
            assert_eq!(line, "# service=git-receive-pack\n");
            continue;
        }
        let line = line.split('\0').next().unwrap_or("").trim_end();
        let (_, name) = line.split_once(' ').expect("an <oid> <ref> line");
        if name != "capabilities^{}" {
            names.push(name.to_string());
        }
    }
    assert!(rest.is_empty(), "trailing bytes in the advertisement");
    (names, body.len())
}

/// The Apache rule of docs/pushing.md ("Hook mode"): the tags hidden from
/// the advertisement request alone.
pub const HIDE_TAGS_ON_APACHE: &str = r#"SetEnvIfExpr "%{QUERY_STRING} =~ /(^|&)service=git-receive-pack(&|$)/" GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=receive.hideRefs GIT_CONFIG_VALUE_0=refs/tags
"#;

/// The advertisement lists no tag but `shown` (none on a host with a static
/// rule), and the branch.
fn shows_tags(host: &Host, mode: Mode, step: &str, shown: &[&str]) -> Vec<String> {
    let shown = match mode {
        Mode::Hook => &[][..],
        _ => shown,
    };
    let (names, _) = push_advertisement(host, "dev");
    let tags: BTreeSet<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| n.starts_with("refs/tags/"))
        .collect();
    assert_eq!(
        tags,
        shown.iter().copied().collect(),
        "{mode:?}, after {step}: the tags a pusher is shown"
    );
    assert!(
        names.iter().any(|n| n == "refs/heads/main"),
        "{mode:?}, after {step}: {names:?}"
    );
    names
}

/// `count` more published-looking tags `bulk/<i>/v1` written straight into
/// the repository that holds the refs (quicker than publishing each).
fn add_tags(host: &Host, from: usize, count: usize) {
    let main = server_git(&host.repo(), &["rev-parse", "refs/heads/main"]);
    let mut input = String::new();
    for i in from..from + count {
        input.push_str(&format!("create refs/tags/bulk/p{i}/v1 {main}\n"));
    }
    let mut child = std::process::Command::new("git")
        .args(["-c", "safe.directory=*", "--git-dir"])
        .arg(host.repo())
        .args(["update-ref", "--stdin"])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run git update-ref");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write refs");
    assert!(child.wait().expect("wait").success());
    // The host's user (Apache's) owns its repository, and the new refs too.
    let owner = format!("--reference={}", host.repo().display());
    let out = std::process::Command::new("chown")
        .args(["-R", &owner])
        .arg(host.repo())
        .output()
        .expect("run chown");
    assert!(out.status.success(), "chown: {}", stderr(&out));
}

/// A `git push` as `user` from the client `client` (its clone `w`).
fn push(client: &GitClient, refspecs: &[&str]) -> Output {
    let mut args = vec!["-C", "w", "push", "--porcelain", "origin"];
    args.extend_from_slice(refspecs);
    client.command(&args).output().expect("run git push")
}

fn refused_by(mode: Mode, step: &str, out: &Output, rule: &str) {
    let text = output(out);
    assert!(
        !out.status.success() && text.contains(&format!("[{rule}]")),
        "{mode:?}: {step} should be refused by [{rule}]:\n{text}"
    );
}

fn fetch(client: &GitClient) {
    client.git_in(
        "w",
        &[
            "fetch",
            "-q",
            "--prune",
            "--prune-tags",
            "--force",
            "origin",
        ],
    );
}

pub fn a_pusher_is_not_shown_every_tag(mode: Mode) {
    every_transition_with_tags_hidden(&Host::start(mode), mode);
}

/// Hook mode with the Apache rule: the host shows no tag at all, and the
/// approver's `:refs/tags/F/vN` arrives without the tag's old value; the
/// hook deletes the tag as it is, as git itself would.
pub fn a_host_that_hides_tags_from_pushers() {
    every_transition_with_tags_hidden(&Host::start_hook(HIDE_TAGS_ON_APACHE), Mode::Hook);
}

fn every_transition_with_tags_hidden(host: &Host, mode: Mode) {
    add_tags(host, 0, 200);
    let before = shows_tags(host, mode, "200 tags", &[]);
    let (_, size) = push_advertisement(host, "dev");
    add_tags(host, 200, 200);
    let after = shows_tags(host, mode, "400 tags", &[]);
    assert_eq!(
        before, after,
        "{mode:?}: 200 more tags changed the advertisement"
    );
    assert_eq!(size, push_advertisement(host, "dev").1, "{mode:?}");

    let dev = GitClient::new();
    dev.git(&["clone", "-q", &host.url_as("dev"), "w"]);
    let porch_user = GitClient::new();
    porch_user.git(&["clone", "-q", &host.url_as("porch"), "w"]);

    // Draft, update, propose, reject, propose again, publish: plain pushes.
    let first = dev.commit_package("w", "web", &[("a.yaml", b"a: 1\n")], "web");
    accepted(
        mode,
        "draft",
        &push(&dev, &["HEAD:refs/heads/drafts/web/ws"]),
    );
    let second = dev.commit_files("w", &[("web/a.yaml", b"a: 2\n")], "web 2");
    assert_ne!(first, second);
    accepted(
        mode,
        "update",
        &push(&dev, &["+HEAD:refs/heads/drafts/web/ws"]),
    );
    let names = shows_tags(host, mode, "a draft", &[]);
    assert!(
        names.iter().any(|n| n == "refs/heads/drafts/web/ws"),
        "{names:?}"
    );
    accepted(
        mode,
        "propose",
        &push(&dev, &[&format!("{second}:refs/heads/proposed/web/ws")]),
    );
    fetch(&porch_user);
    accepted(
        mode,
        "reject",
        &push(
            &porch_user,
            &["origin/proposed/web/ws:refs/heads/drafts/web/ws"],
        ),
    );
    accepted(
        mode,
        "propose again",
        &push(&dev, &[&format!("{second}:refs/heads/proposed/web/ws")]),
    );
    fetch(&porch_user);
    let out = push(&porch_user, &["+origin/proposed/web/ws:refs/heads/main"]);
    accepted(mode, "publish", &out);
    assert!(
        output(&out).contains("published web v1"),
        "{}",
        output(&out)
    );
    assert!(server_ref(&host.repo(), "refs/tags/web/v1").is_some());
    shows_tags(host, mode, "publishing web v1", &[]);

    // Porch's approval form: branch, new tag and the proposal's deletion.
    let porch = host.porch();
    accepted(mode, "porch init", &porch.init("api", "ws"));
    accepted(mode, "porch propose", &porch.propose("api", "ws").0);
    let (out, merge) = porch.approve("api", "ws", 1);
    accepted(mode, "porch approve", &out);
    assert_eq!(server_ref(&host.repo(), "refs/tags/api/v1"), Some(merge));
    shows_tags(host, mode, "Porch's approval", &[]);

    // cadgate's refusals reach the pusher, for tags it was not shown too.
    fetch(&dev);
    fetch(&porch_user);
    dev.git_in("w", &["checkout", "-q", "--detach", "origin/main"]);
    dev.commit_files("w", &[("web/a.yaml", b"a: 3\n")], "web 3");
    refused_by(
        mode,
        "a push to the branch",
        &push(&dev, &["+HEAD:refs/heads/main"]),
        "direct-push-to-branch",
    );
    refused_by(
        mode,
        "a new tag",
        &push(&dev, &["HEAD:refs/tags/web/v2"]),
        "tag-is-made-by-publishing",
    );
    refused_by(
        mode,
        "moving a published tag",
        &push(&dev, &["+HEAD:refs/tags/web/v1"]),
        "tag-is-made-by-publishing",
    );
    refused_by(
        mode,
        "deleting a tag without a proposal",
        &push(&porch_user, &[":refs/tags/web/v1"]),
        "deletion-needs-a-proposal",
    );
    assert!(server_ref(&host.repo(), "refs/tags/web/v1").is_some());

    // Propose deletion: the tag is shown; reject it: hidden again.
    accepted(
        mode,
        "propose deletion",
        &push(
            &dev,
            &["refs/tags/web/v1:refs/heads/deletionProposed/web/v1"],
        ),
    );
    let names = shows_tags(host, mode, "proposing deletion", &["refs/tags/web/v1"]);
    assert!(
        names
            .iter()
            .any(|n| n == "refs/heads/deletionProposed/web/v1"),
        "{names:?}"
    );
    accepted(
        mode,
        "reject deletion",
        &push(&porch_user, &[":refs/heads/deletionProposed/web/v1"]),
    );
    shows_tags(host, mode, "rejecting the deletion", &[]);

    // Propose again and approve with git's own `:refs/tags/F/vN`.
    accepted(
        mode,
        "propose deletion again",
        &push(
            &dev,
            &["refs/tags/web/v1:refs/heads/deletionProposed/web/v1"],
        ),
    );
    shows_tags(
        host,
        mode,
        "proposing deletion again",
        &["refs/tags/web/v1"],
    );
    let out = push(&porch_user, &[":refs/tags/web/v1"]);
    accepted(mode, "approve deletion", &out);
    assert!(output(&out).contains("deleted web v1"), "{}", output(&out));
    assert_eq!(server_ref(&host.repo(), "refs/tags/web/v1"), None);
    assert_eq!(
        server_ref(&host.repo(), "refs/heads/deletionProposed/web/v1"),
        None
    );
    shows_tags(host, mode, "approving the deletion", &[]);

    // Porch's deletion: the tag and the proposal deleted in one push.
    accepted(
        mode,
        "porch propose-delete",
        &porch.propose_delete("api", 1),
    );
    shows_tags(
        host,
        mode,
        "Porch's deletion proposal",
        &["refs/tags/api/v1"],
    );
    accepted(mode, "porch delete", &porch.delete("api", 1));
    assert_eq!(server_ref(&host.repo(), "refs/tags/api/v1"), None);
    let end = shows_tags(host, mode, "Porch's deletion", &[]);
    assert_eq!(
        end.iter().filter(|n| n.starts_with("refs/tags/")).count(),
        0,
        "{mode:?}"
    );
}

/// Push `refspecs` from the clone `dir` to `url` with dulwich or libgit2
/// (pygit2); its output, failing the test when the push fails.
fn push_with(library: &str, dir: &std::path::Path, url: &str, refspecs: &[&str]) -> String {
    let script = match library {
        "dulwich" => {
            r#"
import sys
from dulwich import porcelain
path, url = sys.argv[1:3]
porcelain.push(path, url, refspecs=[s.encode() for s in sys.argv[3:]],
               outstream=sys.stderr.buffer, errstream=sys.stderr.buffer)
"#
        }
        _ => {
            r#"
import sys, urllib.parse, pygit2
path, url = sys.argv[1:3]
parts = urllib.parse.urlsplit(url)
class Callbacks(pygit2.RemoteCallbacks):
    def credentials(self, url, username_from_url, allowed_types):
        return pygit2.UserPass(parts.username, parts.password)
    def push_update_reference(self, ref, message):
        if message:
            sys.exit(f"{ref} refused: {message}")
repo = pygit2.Repository(path)
repo.remotes.create_anonymous(url).push(sys.argv[3:], callbacks=Callbacks())
"#
        }
    };
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(dir)
        .arg(url)
        .args(refspecs)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{library} (python3 -m pip install dulwich pygit2; scripts/test.sh does) push {refspecs:?} failed:\n{}",
        output(&out)
    );
    output(&out)
}

/// dulwich and libgit2 push through the smaller advertisement: a draft
/// each, and each approves a deletion (`:refs/tags/F/vN`, its old value
/// from the advertisement).
pub fn other_git_implementations_push_through_it() {
    let host = Host::start(Mode::Server);
    add_tags(&host, 0, 200);
    let porch = host.porch();
    for package in ["web", "api"] {
        accepted(Mode::Server, "porch init", &porch.init(package, "ws"));
        accepted(
            Mode::Server,
            "porch propose",
            &porch.propose(package, "ws").0,
        );
        accepted(
            Mode::Server,
            "porch approve",
            &porch.approve(package, "ws", 1).0,
        );
    }
    let dev = GitClient::new();
    dev.git(&["clone", "-q", &host.url_as("dev"), "w"]);
    for package in ["web", "api"] {
        accepted(
            Mode::Server,
            "propose deletion",
            &push(
                &dev,
                &[&format!(
                    "refs/tags/{package}/v1:refs/heads/deletionProposed/{package}/v1"
                )],
            ),
        );
    }
    shows_tags(
        &host,
        Mode::Server,
        "two deletion proposals",
        &["refs/tags/api/v1", "refs/tags/web/v1"],
    );
    for (library, package) in [("dulwich", "web"), ("libgit2", "api")] {
        dev.git_in("w", &["checkout", "-q", "-B", library, "origin/main"]);
        let draft = dev.commit_files(
            "w",
            &[("web/by.yaml", library.as_bytes())],
            &format!("web by {library}"),
        );
        push_with(
            library,
            &dev.path("w"),
            &host.url_as("dev"),
            &[&format!(
                "refs/heads/{library}:refs/heads/drafts/web/{library}"
            )],
        );
        assert_eq!(
            server_ref(&host.repo(), &format!("refs/heads/drafts/web/{library}")),
            Some(draft),
            "{library}: the draft"
        );
        let tag = format!("refs/tags/{package}/v1");
        push_with(
            library,
            &dev.path("w"),
            &host.url_as("porch"),
            &[&format!(":{tag}")],
        );
        assert_eq!(server_ref(&host.repo(), &tag), None, "{library}: {tag}");
        assert_eq!(
            server_ref(
                &host.repo(),
                &format!("refs/heads/deletionProposed/{package}/v1")
            ),
            None,
            "{library}: the deletion proposal"
        );
    }
    shows_tags(&host, Mode::Server, "both deletions", &[]);
}
