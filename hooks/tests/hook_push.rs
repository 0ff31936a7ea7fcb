//! `cadgate-hook proc-receive` with the real git: pushes over file:// into a
//! bare repository whose proc-receive hook is cadgate-hook.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// A bare repository with `main` and the hook installed, and a clone.
    fn new() -> Fixture {
        let fixture = Fixture {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        let hooks = fixture.path("hooks");
        std::fs::create_dir_all(&hooks).expect("hooks dir");
        let script = hooks.join("proc-receive");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nexec '{}' proc-receive\n",
                env!("CARGO_BIN_EXE_cadgate-hook")
            ),
        )
        .expect("hook script");
        fixture.sh(&format!("chmod +x {}", script.display()));
        fixture.git(&["init", "-q", "--bare", "-b", "main", "server.git"], "");
        let server = fixture.path("server.git").display().to_string();
        fixture.git(
            &[
                "--git-dir",
                &server,
                "config",
                "core.hooksPath",
                &hooks.display().to_string(),
            ],
            "",
        );
        fixture.git(
            &[
                "--git-dir",
                &server,
                "config",
                "receive.procReceiveRefs",
                "refs",
            ],
            "",
        );
        fixture.git(&["init", "-q", "-b", "main", "work"], "");
        fixture.write("work/README.md", "registered branch\n");
        fixture.git(&["-C", "work", "add", "-A"], "");
        fixture.git(&["-C", "work", "commit", "-q", "-m", "initial"], "");
        // Seed the branch without the hook in the way.
        fixture.git(
            &[
                "--git-dir",
                &server,
                "config",
                "receive.procReceiveRefs",
                "refs/nothing",
            ],
            "",
        );
        fixture.git(&["-C", "work", "push", "-q", &server, "HEAD:main"], "");
        fixture.git(
            &[
                "--git-dir",
                &server,
                "config",
                "receive.procReceiveRefs",
                "refs",
            ],
            "",
        );
        fixture.git(&["-C", "work", "remote", "add", "origin", &server], "");
        fixture
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn write(&self, p: &str, content: &str) {
        let path = self.path(p);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }

    fn sh(&self, script: &str) {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(script)
            .status()
            .expect("sh")
            .success();
        assert!(ok, "{script}");
    }

    /// git with an isolated config; `as_role` is "user:role" for pushes ("" = no identity).
    fn run(&self, args: &[&str], as_role: &str) -> Output {
        let mut command = Command::new("git");
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", self.path(".gitconfig"))
            .env("GIT_AUTHOR_NAME", "T")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "T")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .env_remove("CADGATE_USER")
            .env_remove("CADGATE_ROLE")
            .env_remove("REMOTE_USER");
        if let Some((user, role)) = as_role.split_once(':') {
            command.env("CADGATE_USER", user).env("CADGATE_ROLE", role);
        }
        command.output().expect("git")
    }

    fn git(&self, args: &[&str], as_role: &str) -> String {
        let out = self.run(args, as_role);
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Push from the work tree; returns (success, stderr).
    fn push(&self, refspecs: &[&str], as_role: &str) -> (bool, String) {
        let mut args = vec!["-C", "work", "push", "origin"];
        args.extend_from_slice(refspecs);
        let out = self.run(&args, as_role);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn server_ref(&self, name: &str) -> Option<String> {
        let server = self.path("server.git");
        let out = self.run(
            &[
                "--git-dir",
                server.to_str().expect("utf-8"),
                "rev-parse",
                "--verify",
                "-q",
                name,
            ],
            "",
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn commit_package(&self, package: &str, name: &str, extra: &[(&str, &str)]) -> String {
        self.write(
            &format!("work/{package}/Kptfile"),
            &format!("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: {name}\n"),
        );
        for (p, c) in extra {
            self.write(&format!("work/{p}"), c);
        }
        self.git(&["-C", "work", "add", "-A"], "");
        self.git(&["-C", "work", "commit", "-q", "-m", package], "");
        self.git(&["-C", "work", "rev-parse", "HEAD"], "")
    }
}

fn exists(p: &Path) -> bool {
    p.exists()
}

#[test]
fn a_draft_is_saved_proposed_and_rejected() {
    let f = Fixture::new();
    let tip = f.commit_package(
        "basens",
        "basens",
        &[("basens/ns.yaml", "kind: Namespace\n")],
    );
    let (ok, err) = f.push(&["HEAD:refs/heads/drafts/basens/ws1"], "alice:author");
    assert!(ok, "{err}");
    assert!(
        err.contains("cadgate: saved draft basens workspace ws1"),
        "{err}"
    );
    assert_eq!(
        f.server_ref("refs/heads/drafts/basens/ws1").as_deref(),
        Some(tip.as_str())
    );

    let (ok, err) = f.push(
        &["--force", "HEAD~1:refs/heads/drafts/basens/ws1"],
        "alice:author",
    );
    assert!(!ok, "a draft without the package was accepted");
    assert!(err.contains("draft-needs-kptfile"), "{err}");

    let (ok, err) = f.push(&["HEAD:refs/heads/proposed/basens/ws1"], "alice:author");
    assert!(ok, "{err}");
    assert_eq!(
        f.server_ref("refs/heads/proposed/basens/ws1").as_deref(),
        Some(tip.as_str())
    );
    assert_eq!(
        f.server_ref("refs/heads/drafts/basens/ws1"),
        None,
        "the draft ref must go with the proposal"
    );

    let (ok, err) = f.push(&["HEAD:refs/heads/drafts/basens/ws1"], "alice:author");
    assert!(!ok);
    assert!(
        err.contains("rejecting a proposal needs role 'approver'"),
        "{err}"
    );
    let (ok, err) = f.push(&["HEAD:refs/heads/drafts/basens/ws1"], "bob:approver");
    assert!(ok, "{err}");
    assert_eq!(
        f.server_ref("refs/heads/drafts/basens/ws1").as_deref(),
        Some(tip.as_str())
    );
    assert_eq!(f.server_ref("refs/heads/proposed/basens/ws1"), None);
    assert!(exists(&f.path("server.git")));
}

#[test]
fn refusals_name_their_rule_and_change_nothing() {
    let f = Fixture::new();
    let main = f.server_ref("refs/heads/main");
    f.commit_package(
        "a",
        "a",
        &[(
            "b/Kptfile",
            "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: b\n",
        )],
    );
    let cases = [
        ("HEAD:refs/heads/drafts/a/ws", "draft-changes-one-package"),
        ("HEAD:refs/heads/main", "direct-push-to-branch"),
        ("HEAD:refs/heads/feature", "unknown-namespace"),
        ("HEAD:refs/tags/a/v1", "tag-is-made-by-publishing"),
        ("HEAD:refs/heads/drafts/a/Bad_WS", "workspace-name"),
    ];
    for (refspec, rule) in cases {
        let (ok, err) = f.push(&[refspec], "carol:admin");
        assert!(!ok, "{refspec} was accepted");
        assert!(
            err.contains("[remote rejected]") && err.contains(rule),
            "{refspec}: {err}"
        );
    }
    assert_eq!(f.server_ref("refs/heads/main"), main);
    assert_eq!(f.server_ref("refs/heads/drafts/a/ws"), None);
    assert_eq!(f.server_ref("refs/heads/feature"), None);

    // A wrong metadata.name.
    f.git(&["-C", "work", "reset", "-q", "--hard", "HEAD~1"], "");
    f.commit_package("pkg", "not-pkg", &[]);
    let (ok, err) = f.push(&["HEAD:refs/heads/drafts/pkg/ws"], "alice:author");
    assert!(!ok);
    assert!(err.contains("metadata.name"), "{err}");

    // No identity, and a reader: refused.
    let (ok, err) = f.push(&["HEAD:refs/heads/drafts/pkg/ws"], "");
    assert!(!ok);
    assert!(err.contains("no authenticated user"), "{err}");
}

#[test]
fn an_atomic_push_is_all_or_nothing() {
    let f = Fixture::new();
    f.commit_package("pkg", "pkg", &[]);
    let (ok, err) = f.push(
        &[
            "--atomic",
            "HEAD:refs/heads/drafts/pkg/ws",
            "HEAD:refs/heads/main",
        ],
        "alice:author",
    );
    assert!(!ok);
    assert!(err.contains("direct-push-to-branch"), "{err}");
    assert_eq!(
        f.server_ref("refs/heads/drafts/pkg/ws"),
        None,
        "atomic push partly applied"
    );
    // Without --atomic the good ref lands and the bad one is refused.
    let (ok, _) = f.push(
        &["HEAD:refs/heads/drafts/pkg/ws", "HEAD:refs/heads/main"],
        "alice:author",
    );
    assert!(!ok);
    assert!(f.server_ref("refs/heads/drafts/pkg/ws").is_some());
}

impl Fixture {
    fn server_git(&self, args: &[&str]) -> String {
        let server = self.path("server.git").display().to_string();
        let mut full = vec!["--git-dir", server.as_str()];
        full.extend_from_slice(args);
        self.git(&full, "")
    }

    /// Start a new draft of `package` from the server's current branch.
    fn branch_from_main(&self, local: &str) {
        self.git(&["-C", "work", "fetch", "-q", "origin"], "");
        self.git(
            &["-C", "work", "checkout", "-q", "-B", local, "origin/main"],
            "",
        );
    }

    fn draft_and_propose(
        &self,
        package: &str,
        workspace: &str,
        file: &str,
        content: &str,
    ) -> String {
        self.write(&format!("work/{package}/{file}"), content);
        let tip = self.commit_package(package, package, &[]);
        let draft = format!("HEAD:refs/heads/drafts/{package}/{workspace}");
        let (ok, err) = self.push(&["--force", &draft], "alice:author");
        assert!(ok, "{err}");
        let proposed = format!("HEAD:refs/heads/proposed/{package}/{workspace}");
        let (ok, err) = self.push(&[&proposed], "alice:author");
        assert!(ok, "{err}");
        tip
    }
}

#[test]
fn publishing_makes_the_approval_commit_the_tag_and_moves_the_branch() {
    let f = Fixture::new();
    let main_before = f.server_ref("refs/heads/main").expect("main");
    f.branch_from_main("w1");
    let proposal = f.draft_and_propose("basens", "ws1", "ns.yaml", "kind: Namespace\n");

    // The proposer may not approve their own proposal.
    let (ok, err) = f.push(&["HEAD:refs/heads/main"], "alice:approver");
    assert!(!ok);
    assert!(err.contains("no-self-approval"), "{err}");
    // An author may not publish at all.
    let (ok, err) = f.push(&["HEAD:refs/heads/main"], "dave:author");
    assert!(!ok);
    assert!(err.contains("publishing needs role 'approver'"), "{err}");

    let (ok, err) = f.push(&["HEAD:refs/heads/main"], "bob:approver");
    assert!(ok, "{err}");
    assert!(err.contains("cadgate: published basens v1"), "{err}");
    let approval = f.server_ref("refs/heads/main").expect("main");
    assert_ne!(
        approval, proposal,
        "the branch must get an approval commit, not the proposal"
    );
    assert_eq!(
        f.server_ref("refs/tags/basens/v1").as_deref(),
        Some(approval.as_str())
    );
    assert_eq!(f.server_ref("refs/heads/proposed/basens/ws1"), None);
    assert_eq!(
        f.server_git(&[
            "rev-parse",
            &format!("{approval}^1"),
            &format!("{approval}^2")
        ]),
        format!("{main_before}\n{proposal}")
    );
    let message = f.server_git(&["log", "-1", "--format=%an%n%B", &approval]);
    assert!(
        message.starts_with("bob\nApproving package revision basens/1"),
        "{message}"
    );
    assert!(
        message.contains(r#"kpt:{"package":"basens","workspaceName":"ws1","revision":"1"}"#),
        "{message}"
    );
    assert!(
        message.contains("Proposed-by: alice") && message.contains("Approved-by: bob"),
        "{message}"
    );
    assert_eq!(
        f.server_git(&["show", &format!("{approval}:basens/ns.yaml")]),
        "kind: Namespace"
    );
    let note = f.server_git(&["notes", "--ref=cadgate", "show", &proposal]);
    assert!(note.starts_with("proposed-by: alice"), "{note}");

    // The next revision of the same package is v2.
    f.branch_from_main("w2");
    f.draft_and_propose(
        "basens",
        "ws2",
        "ns.yaml",
        "kind: Namespace\nmetadata: {name: b}\n",
    );
    let (ok, err) = f.push(&["HEAD:refs/heads/main"], "bob:approver");
    assert!(ok, "{err}");
    assert!(err.contains("published basens v2"), "{err}");
    assert!(f.server_ref("refs/tags/basens/v2").is_some());

    // A published revision's workspace cannot be reused by a new draft.
    f.branch_from_main("w3");
    f.write(
        "work/basens/ns.yaml",
        "kind: Namespace\nmetadata: {name: c}\n",
    );
    f.commit_package("basens", "basens", &[]);
    let (ok, err) = f.push(&["HEAD:refs/heads/drafts/basens/ws1"], "alice:author");
    assert!(!ok, "a published workspace was reused");
    assert!(err.contains("workspace-is-unique"), "{err}");
}

#[test]
fn a_stale_proposal_is_refused_until_rebased() {
    let f = Fixture::new();
    f.branch_from_main("first");
    f.draft_and_propose("pkg", "a", "data.yaml", "a: 1\n");
    f.branch_from_main("second");
    let second = f.draft_and_propose("pkg", "b", "data.yaml", "b: 2\n");
    // Publish `a` (its commit is still reachable locally on `first`). Once the
    // branch has moved, a proposal is not a fast-forward of it, so the git
    // client needs --force; the server still only ever adds a merge commit.
    f.git(&["-C", "work", "checkout", "-q", "first"], "");
    let (ok, err) = f.push(&["--force", "HEAD:refs/heads/main"], "bob:approver");
    assert!(ok, "{err}");
    // `b` began before `a` was published: stale.
    f.git(&["-C", "work", "checkout", "-q", "second"], "");
    assert_eq!(f.git(&["-C", "work", "rev-parse", "HEAD"], ""), second);
    let (ok, err) = f.push(&["--force", "HEAD:refs/heads/main"], "bob:approver");
    assert!(!ok, "a stale proposal was published");
    assert!(err.contains("stale-proposal"), "{err}");
    assert_eq!(f.server_ref("refs/tags/pkg/v2"), None);
    // Rebase, push the draft again, propose, publish: v2.
    f.git(&["-C", "work", "fetch", "-q", "origin"], "");
    let (ok, err) = f.push(&[":refs/heads/proposed/pkg/b"], "alice:author");
    assert!(ok, "{err}");
    f.git(&["-C", "work", "reset", "-q", "--hard", "origin/main"], "");
    f.draft_and_propose("pkg", "b", "data.yaml", "b: 2\n");
    let (ok, err) = f.push(&["--force", "HEAD:refs/heads/main"], "bob:approver");
    assert!(ok, "{err}");
    assert!(err.contains("published pkg v2"), "{err}");
}

#[test]
fn approving_deletions_updates_the_branch_and_respects_pins() {
    let f = Fixture::new();
    f.branch_from_main("one");
    f.draft_and_propose("pkg", "one", "data.yaml", "v: 1\n");
    assert!(
        f.push(&["--force", "HEAD:refs/heads/main"], "bob:approver")
            .0
    );
    f.branch_from_main("two");
    f.draft_and_propose("pkg", "two", "data.yaml", "v: 2\n");
    assert!(
        f.push(&["--force", "HEAD:refs/heads/main"], "bob:approver")
            .0
    );
    let v1 = f.server_ref("refs/tags/pkg/v1").expect("v1");
    f.git(&["-C", "work", "fetch", "-q", "--tags", "origin"], "");

    // Deleting needs a proposal first.
    let (ok, err) = f.push(&[":refs/tags/pkg/v2"], "bob:approver");
    assert!(!ok);
    assert!(err.contains("deletion-needs-a-proposal"), "{err}");
    let (ok, err) = f.push(
        &["refs/tags/pkg/v2:refs/heads/deletionProposed/pkg/v2"],
        "alice:author",
    );
    assert!(ok, "{err}");
    let (ok, err) = f.push(&[":refs/tags/pkg/v2"], "alice:author");
    assert!(!ok);
    assert!(
        err.contains("approving a deletion needs role 'approver'"),
        "{err}"
    );
    let (ok, err) = f.push(&[":refs/tags/pkg/v2"], "bob:approver");
    assert!(ok, "{err}");
    assert!(err.contains("deleted pkg v2; main now holds v1"), "{err}");
    assert_eq!(f.server_ref("refs/tags/pkg/v2"), None);
    assert_eq!(f.server_ref("refs/heads/deletionProposed/pkg/v2"), None);
    assert_eq!(f.server_git(&["show", "main:pkg/data.yaml"]), "v: 1");
    assert!(f
        .server_git(&["log", "-1", "--format=%s", "main"])
        .starts_with("Delete pkg/v2"));

    // A package on the branch pinned to v1 blocks deleting v1.
    f.branch_from_main("down");
    f.write(
        "work/down/Kptfile",
        &format!("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: down\nupstream:\n  type: git\n  git:\n    repo: https://example.com/r.git\n    directory: /pkg\n    ref: pkg/v1\nupstreamLock:\n  type: git\n  git:\n    repo: https://example.com/r.git\n    directory: /pkg\n    ref: pkg/v1\n    commit: {v1}\n"),
    );
    f.git(&["-C", "work", "add", "-A"], "");
    f.git(&["-C", "work", "commit", "-q", "-m", "down"], "");
    assert!(
        f.push(&["HEAD:refs/heads/drafts/down/d1"], "alice:author")
            .0
    );
    assert!(
        f.push(&["HEAD:refs/heads/proposed/down/d1"], "alice:author")
            .0
    );
    assert!(
        f.push(&["--force", "HEAD:refs/heads/main"], "bob:approver")
            .0
    );
    assert!(
        f.push(
            &["refs/tags/pkg/v1:refs/heads/deletionProposed/pkg/v1"],
            "alice:author"
        )
        .0
    );
    let (ok, err) = f.push(&[":refs/tags/pkg/v1"], "bob:approver");
    assert!(!ok);
    assert!(
        err.contains("revision-is-pinned") && err.contains("down"),
        "{err}"
    );
    assert!(f.server_ref("refs/tags/pkg/v1").is_some());

    // A new revision of `down` without the pin; then deleting v1, the last
    // revision of pkg, removes the package from the branch.
    f.branch_from_main("unpin");
    f.write(
        "work/down/Kptfile",
        "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: down\n",
    );
    f.git(&["-C", "work", "commit", "-q", "-am", "unpin"], "");
    assert!(
        f.push(&["HEAD:refs/heads/drafts/down/d2"], "alice:author")
            .0
    );
    assert!(
        f.push(&["HEAD:refs/heads/proposed/down/d2"], "alice:author")
            .0
    );
    assert!(
        f.push(&["--force", "HEAD:refs/heads/main"], "bob:approver")
            .0
    );
    let (ok, err) = f.push(&[":refs/tags/pkg/v1"], "bob:approver");
    assert!(ok, "{err}");
    assert!(err.contains("main no longer holds pkg"), "{err}");
    assert!(!f
        .server_git(&["ls-tree", "--name-only", "main"])
        .lines()
        .any(|l| l == "pkg"));
    assert!(f
        .server_git(&["for-each-ref", "--format=%(refname)"])
        .lines()
        .all(|r| !r.contains("pkg/")));
}

#[test]
fn accepted_transitions_are_logged_as_events_and_a_log_failure_keeps_the_push() {
    use cadgate_hooks::events::{log_path, read_from};
    let f = Fixture::new();
    let server = f.path("server.git");
    let tip = f.commit_package("basens", "basens", &[]);
    let (ok, err) = f.push(&["HEAD:refs/heads/drafts/basens/ws1"], "alice:author");
    assert!(ok, "{err}");
    // Refused: nothing is logged.
    let (ok, _) = f.push(&["HEAD:refs/heads/main"], "alice:author");
    assert!(!ok);
    let (ok, err) = f.push(&["HEAD:refs/heads/proposed/basens/ws1"], "alice:author");
    assert!(ok, "{err}");
    let (ok, err) = f.push(&["HEAD:refs/heads/drafts/basens/ws1"], "bob:approver");
    assert!(ok, "{err}");
    let (events, _) = read_from(&log_path(&server), 0).expect("the event log");
    let seen: Vec<(u64, &str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e.seq,
                e.kind.as_str(),
                e.user.as_str(),
                e.repository.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, "created", "alice", "server"),
            (2, "proposed", "alice", "server"),
            (3, "rejected", "bob", "server"),
        ]
    );
    assert!(events
        .iter()
        .all(|e| e.package == "basens" && e.workspace == "ws1" && e.commit == tip));

    // The log cannot be written: the push lands all the same, with a warning.
    let log = log_path(&server);
    std::fs::remove_file(&log).expect("remove the log");
    std::fs::create_dir(&log).expect("a directory in its place");
    let (ok, err) = f.push(&[":refs/heads/drafts/basens/ws1"], "alice:author");
    assert!(ok, "{err}");
    assert!(err.contains("lifecycle events were not recorded"), "{err}");
    assert_eq!(f.server_ref("refs/heads/drafts/basens/ws1"), None);
}
