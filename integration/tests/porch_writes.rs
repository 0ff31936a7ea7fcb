//! Porch writing through cadgate (issue 13, W1–W3): the Porch emulation
//! (`cadgate_integration::porch`) runs Porch's lifecycle with its own
//! non-atomic pushes; nothing is lost and every step is accepted or refused
//! as a whole. A push is judged per package, all or nothing.
//!
//! Every scenario runs against each [`Mode`] cadgate can guard Porch's
//! repository in: the cadgate server itself, hook mode (cadgate's hook in the
//! repository a third-party host serves — Apache + `git http-backend`), and
//! forward mode (cadgate in front of that host's plain repository). After
//! every step the repository's refs are compared, all of them, with what the
//! step should have left: in the repository that holds them, as Porch sees
//! them with `ls-remote`, and in the published view (branch and tags).

use std::collections::BTreeMap;

use cadgate_integration::*;

#[path = "porch_writes/modes.rs"]
mod modes;
use modes::*;

#[path = "porch_writes/placeholder.rs"]
mod placeholder;

#[path = "porch_writes/push_advertisement.rs"]
mod push_advertisement;

/// init, update, propose (render commit + the draft's deletion), reject,
/// approve (refused with a wrong number, then Porch's own merge, tag and the
/// proposal's deletion), a second revision by Porch's edit (copy),
/// propose-delete, reject-delete, delete, and deleting a draft and a
/// proposal.
fn porch_lifecycle_loses_nothing(mode: Mode) {
    let host = Host::start(mode);
    let porch = host.porch();
    let mut expected = Expected::new(&host);
    let draft = "refs/heads/drafts/web/ws";
    let proposed = "refs/heads/proposed/web/ws";

    let out = porch.init("web", "ws");
    accepted(mode, "init", &out);
    expected.set(draft, &porch.last_commit());
    expected.check("init");

    let out = porch.update("web", "ws", "app.yaml", "replicas: 1\n");
    accepted(mode, "update", &out);
    expected.set(draft, &porch.last_commit());
    expected.check("update");

    // W1: propose with a render commit and the draft's deletion.
    let (out, render) = porch.propose("web", "ws");
    accepted(mode, "propose", &out);
    expected.set(proposed, &render);
    expected.remove(draft);
    expected.check("propose");

    // W3: reject sends the deletion of the proposal cadgate removes itself.
    let out = porch.reject("web", "ws");
    accepted(mode, "reject", &out);
    expected.set(draft, &render);
    expected.remove(proposed);
    expected.check("reject");

    let (out, render) = porch.propose("web", "ws");
    accepted(mode, "propose again", &out);
    expected.set(proposed, &render);
    expected.remove(draft);
    expected.check("propose again");

    // W2, refused as a whole: Porch numbers the revision 5, the next is 1.
    let (out, _) = porch.approve("web", "ws", 5);
    refused(mode, "approve as v5", &out, "approval-revision-number");
    // The tag is refused because its approval was, and says so.
    let tag_line = output(&out)
        .lines()
        .find(|l| l.contains("refs/tags/web/v5") && l.starts_with('!'))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        tag_line.contains("the approval of package web in this push was refused")
            && tag_line.contains("approval-revision-number"),
        "{mode:?}: the tag's refusal does not name its approval's: {tag_line:?}\n{}",
        output(&out)
    );
    expected.check("approve as v5");

    // W2: Porch's own approval merge, tag and the proposal's deletion.
    let (out, merge) = porch.approve("web", "ws", 1);
    accepted(mode, "approve", &out);
    expected.set("refs/heads/main", &merge);
    expected.set("refs/tags/web/v1", &merge);
    expected.remove(proposed);
    expected.check("approve");
    assert_eq!(
        server_git(&host.repo(), &["show", "main:web/app.yaml"]),
        "replicas: 1"
    );

    // Other packages and workspaces move on in between.
    accepted(mode, "init db", &porch.init("db", "ws"));
    let (out, db) = porch.propose("db", "ws");
    accepted(mode, "propose db", &out);
    accepted(mode, "init api", &porch.init("api", "ws"));
    let out = porch.update("api", "ws", "app.yaml", "replicas: 2\n");
    accepted(mode, "update api", &out);
    let (out, api) = porch.propose("api", "ws");
    accepted(mode, "propose api", &out);
    expected.set("refs/heads/proposed/db/ws", &db);
    expected.set("refs/heads/proposed/api/ws", &api);
    expected.check("proposing db and api");
    let (out, db_merge) = porch.approve("db", "ws", 1);
    accepted(mode, "approve db", &out);
    expected.set("refs/heads/main", &db_merge);
    expected.set("refs/tags/db/v1", &db_merge);
    expected.remove("refs/heads/proposed/db/ws");
    expected.check("approve db");

    // A second revision of web: Porch's copy of v1 as a new draft.
    let draft2 = "refs/heads/drafts/web/ws2";
    accepted(mode, "edit web v1", &porch.edit("web", "ws2", 1));
    expected.set(draft2, &porch.last_commit());
    expected.check("edit web v1");
    let out = porch.update("web", "ws2", "app.yaml", "replicas: 3\n");
    accepted(mode, "update ws2", &out);
    expected.set(draft2, &porch.last_commit());
    let (out, render2) = porch.propose("web", "ws2");
    accepted(mode, "propose ws2", &out);
    expected.remove(draft2);
    expected.set("refs/heads/proposed/web/ws2", &render2);
    expected.check("propose ws2");
    // Porch's approval named 1 again (its cache missed v1): refused whole.
    let (out, _) = porch.approve("web", "ws2", 1);
    refused(mode, "approve ws2 as v1", &out, "approval-revision-number");
    expected.check("approve ws2 as v1");
    let (out, merge2) = porch.approve("web", "ws2", 2);
    accepted(mode, "approve ws2", &out);
    expected.set("refs/heads/main", &merge2);
    expected.set("refs/tags/web/v2", &merge2);
    expected.remove("refs/heads/proposed/web/ws2");
    expected.check("approve ws2");

    // propose-delete, reject-delete, propose-delete again.
    let marker = "refs/heads/deletionProposed/web/v1";
    accepted(mode, "propose-delete", &porch.propose_delete("web", 1));
    expected.set(marker, &merge);
    expected.check("propose-delete");
    accepted(mode, "reject-delete", &porch.reject_delete("web", 1));
    expected.remove(marker);
    expected.check("reject-delete");
    accepted(
        mode,
        "propose-delete again",
        &porch.propose_delete("web", 1),
    );
    expected.set(marker, &merge);
    expected.check("propose-delete again");

    // W3: delete of the DeletionProposed revision: the tag and the marker.
    let main = expected.get("refs/heads/main");
    accepted(mode, "delete", &porch.delete("web", 1));
    expected.remove("refs/tags/web/v1");
    expected.remove(marker);
    // cadgate records the deletion on the branch (a commit on top of it).
    let now = server_ref(&host.repo(), "refs/heads/main").expect("main");
    server_git(&host.repo(), &["merge-base", "--is-ancestor", &main, &now]);
    expected.set("refs/heads/main", &now);
    expected.check("delete");
    // v2 is still published, on the branch too.
    assert_eq!(
        server_git(&host.repo(), &["show", "main:web/app.yaml"]),
        "replicas: 3"
    );
    // The proposal of another package is still there, untouched.
    assert_eq!(expected.get("refs/heads/proposed/api/ws"), api);

    // Deleting a draft, and a proposal, is deleting its ref (git.go 626–637).
    accepted(mode, "init tmp", &porch.init("tmp", "ws"));
    expected.set("refs/heads/drafts/tmp/ws", &porch.last_commit());
    expected.check("init tmp");
    let out = porch.delete_branch("refs/heads/drafts/tmp/ws");
    accepted(mode, "delete a draft", &out);
    expected.remove("refs/heads/drafts/tmp/ws");
    expected.check("delete a draft");
    let out = porch.delete_branch("refs/heads/proposed/api/ws");
    accepted(mode, "delete a proposal", &out);
    expected.remove("refs/heads/proposed/api/ws");
    expected.check("delete a proposal");
}

/// A stale approval (another replica published first) is refused as a
/// whole, by git's fast-forward check or, forced, by cadgate itself.
fn a_stale_porch_approval_is_refused_whole(mode: Mode) {
    let host = Host::start(mode);
    let porch = host.porch();
    for package in ["a", "b"] {
        accepted(mode, "init", &porch.init(package, "ws"));
        accepted(mode, "propose", &porch.propose(package, "ws").0);
    }
    // A second Porch (another replica; in forward mode through another
    // cadgate replica) made its approval of b before a landed.
    let other = host.porch_elsewhere();
    let (out, a) = porch.approve("a", "ws", 1);
    accepted(mode, "approve a", &out);
    let mut expected = Expected::new(&host);
    assert_eq!(expected.get("refs/tags/a/v1"), a);
    // Git refuses the branch itself (not a fast-forward); the tag and the
    // proposal's deletion of the same step are then refused with it.
    let (stale, merge) = other.approve_without_fetch("b", "ws", 1);
    refused(
        mode,
        "stale approve",
        &stale,
        "another ref of package b in this push was refused",
    );
    expected.check("stale approve");
    // Forced past git's own check, cadgate refuses the stale merge itself.
    let forced = other
        .git()
        .command(&[
            "-C",
            "porch",
            "push",
            "--porcelain",
            "origin",
            &format!("+{merge}:refs/heads/main"),
            &format!("{merge}:refs/tags/b/v1"),
            ":refs/heads/proposed/b/ws",
        ])
        .output()
        .expect("run git");
    refused(mode, "forced stale approve", &forced, "stale-approval");
    expected.check("forced stale approve");
    // After fetching, Porch's next approval of b is judged afresh.
    let (out, merge) = other.approve("b", "ws", 1);
    accepted(mode, "approve b after fetching", &out);
    expected.set("refs/heads/main", &merge);
    expected.set("refs/tags/b/v1", &merge);
    expected.remove("refs/heads/proposed/b/ws");
    expected.check("approve b after fetching");
}

/// A non-atomic push touching two packages: each package is judged on its
/// own, all or nothing.
fn a_non_atomic_push_is_judged_per_package(mode: Mode) {
    let host = Host::start(mode);
    let client = GitClient::new();
    client.git(&["clone", "-q", &host.url_as("dev"), "w"]);
    let a = client.commit_package("w", "a", &[("x.yaml", b"x: 1\n")], "a");
    client.git_in("w", &["checkout", "-q", "-B", "b", "origin/main"]);
    let b = client.commit_package("w", "b", &[("x.yaml", b"x: 1\n")], "b");
    let mut expected = Expected::new(&host);
    // drafts/a/ok is acceptable, the tag of a is refused: neither lands;
    // drafts/b/ok, of another package, is judged on its own and lands.
    let out = client
        .command(&[
            "-C",
            "w",
            "push",
            "--porcelain",
            "origin",
            &format!("{a}:refs/heads/drafts/a/ok"),
            &format!("{a}:refs/tags/a/v1"),
            &format!("{b}:refs/heads/drafts/b/ok"),
        ])
        .output()
        .expect("run git");
    assert!(!out.status.success(), "{mode:?}: {}", output(&out));
    let text = output(&out);
    assert!(
        text.contains("tag-is-made-by-publishing"),
        "{mode:?}: {text}"
    );
    assert!(
        text.contains("another ref of package a in this push was refused"),
        "{mode:?}: {text}"
    );
    let verdicts: BTreeMap<String, bool> = verdicts(&out).into_iter().collect();
    assert_eq!(
        verdicts,
        BTreeMap::from([
            ("refs/heads/drafts/a/ok".to_string(), false),
            ("refs/tags/a/v1".to_string(), false),
            ("refs/heads/drafts/b/ok".to_string(), true),
        ]),
        "{mode:?}: {text}"
    );
    expected.set("refs/heads/drafts/b/ok", &b);
    expected.check("the push of a and b");
}

/// Forward mode only: the upstream's branch moves behind cadgate's back
/// (someone pushes to the Git host directly) after Porch fetched and before
/// it approves. Porch's approval is refused as a whole, the direct change
/// stays, and Porch's retry after fetching is published on top of it.
fn an_upstream_change_before_porchs_approval_loses_nothing(mode: Mode) {
    let host = Host::start(mode);
    let porch = host.porch();
    accepted(mode, "init", &porch.init("web", "ws"));
    let (out, render) = porch.propose("web", "ws");
    accepted(mode, "propose", &out);
    let mut expected = Expected::new(&host);
    assert_eq!(expected.get("refs/heads/proposed/web/ws"), render);

    let apache = host.apache();
    let direct = GitClient::new();
    let upstream = apache.url_as(&TestUser::new("cadgate-forwarder"), REPO);
    direct.git(&["clone", "-q", &upstream, "d"]);
    let hotfix = direct.commit_files("d", &[("NOTICE", b"direct\n")], "direct change");
    direct.git(&["-C", "d", "push", "-q", "origin", "HEAD:main"]);
    expected.set("refs/heads/main", &hotfix);

    let (out, _) = porch.approve_without_fetch("web", "ws", 1);
    refused(
        mode,
        "a stale approval",
        &out,
        "another ref of package web in this push was refused",
    );
    expected.check("the stale approval");

    let (out, merge) = porch.approve("web", "ws", 1);
    accepted(mode, "approve after fetching", &out);
    assert_eq!(
        server_git(&host.repo(), &["rev-parse", &format!("{merge}^1")]),
        hotfix
    );
    expected.set("refs/heads/main", &merge);
    expected.set("refs/tags/web/v1", &merge);
    expected.remove("refs/heads/proposed/web/ws");
    expected.check("approve after fetching");

    // The upstream moves while cadgate forwards the approval (after cadgate
    // fetched and judged it): the upstream's `pre-receive` moves `main`
    // once, as a push racing cadgate's would. cadgate's forward is one
    // atomic compare-and-swap push, so nothing of the step lands upstream.
    accepted(mode, "init db", &porch.init("db", "ws"));
    let (out, db) = porch.propose("db", "ws");
    accepted(mode, "propose db", &out);
    expected.set("refs/heads/proposed/db/ws", &db);
    direct.git(&["-C", "d", "fetch", "-q", "origin"]);
    direct.git(&["-C", "d", "checkout", "-q", "--detach", "origin/main"]);
    let racer = direct.commit_files("d", &[("NOTICE", b"racer\n")], "racing change");
    // The racing commit is in the upstream's objects, under no ref.
    direct.git(&["-C", "d", "push", "-q", "origin", "HEAD:refs/heads/racer"]);
    direct.git(&["-C", "d", "push", "-q", "origin", ":refs/heads/racer"]);
    let repo = host.repo();
    std::fs::write(
        repo.join("hooks/pre-receive"),
        format!(
            "#!/bin/sh\n\
             if grep -q refs/tags/db/v1 && [ ! -e raced ]; then\n\
             touch raced\n\
             env -u GIT_QUARANTINE_PATH git update-ref refs/heads/main {racer}\n\
             fi\n\
             exit 0\n"
        ),
    )
    .expect("pre-receive");
    std::fs::set_permissions(
        repo.join("hooks/pre-receive"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    apache.hand_over();
    let (out, _) = porch.approve("db", "ws", 1);
    assert!(repo.join("raced").exists(), "the upstream never raced");
    refused(
        mode,
        "an approval the upstream refused",
        &out,
        "stale-approval",
    );
    expected.set("refs/heads/main", &racer);
    expected.check("the approval racing an upstream change");
    let (out, merge) = porch.approve("db", "ws", 1);
    accepted(mode, "approve db after the race", &out);
    assert_eq!(
        server_git(&repo, &["rev-parse", &format!("{merge}^1")]),
        racer
    );
    expected.set("refs/heads/main", &merge);
    expected.set("refs/tags/db/v1", &merge);
    expected.remove("refs/heads/proposed/db/ws");
    expected.check("approve db after the race");
}

/// One test per mode and scenario.
macro_rules! in_every_mode {
    ($($scenario:ident),* $(,)?) => {
        mod server {
            $(#[test] fn $scenario() { super::$scenario(super::Mode::Server) })*
        }
        mod hook {
            $(#[test] fn $scenario() { super::$scenario(super::Mode::Hook) })*
        }
        mod forward {
            $(#[test] fn $scenario() { super::$scenario(super::Mode::Forward) })*
        }
    };
}

/// Where cadgate serves the push advertisement: the server and forward mode.
#[test]
fn server_a_pusher_is_not_shown_every_tag() {
    push_advertisement::a_pusher_is_not_shown_every_tag(Mode::Server)
}

#[test]
fn forward_a_pusher_is_not_shown_every_tag() {
    push_advertisement::a_pusher_is_not_shown_every_tag(Mode::Forward)
}

#[test]
fn server_other_git_implementations_push_through_the_smaller_advertisement() {
    push_advertisement::other_git_implementations_push_through_it()
}

/// Hook mode: the host's advertisement, with the tags hidden by its admin.
#[test]
fn hook_a_host_can_hide_tags_from_pushers() {
    push_advertisement::a_host_that_hides_tags_from_pushers()
}

#[test]
fn forward_an_upstream_change_before_porchs_approval_loses_nothing() {
    an_upstream_change_before_porchs_approval_loses_nothing(Mode::Forward)
}

in_every_mode!(
    porch_lifecycle_loses_nothing,
    a_stale_porch_approval_is_refused_whole,
    a_non_atomic_push_is_judged_per_package,
);
