//! Crash tests' shared parts: a repository with one package `k` published
//! workspace by workspace, the test-only crash points, and the invariants a
//! restarted server must show whatever a kill interrupted.
//!
//! Crash points: `CADGATE_TEST_CRASH_AT=<point>` in the server's environment
//! makes the hook kill the server's whole process group at that point of a
//! publish (`after-journal`, `after-refs`, `after-events`, `after-view`;
//! see `cadgate_hooks::journal::crash_point`). Two more are inside git's own
//! ref transaction, through a `reference-transaction` hook this module
//! installs beside the server's `proc-receive` (it fires only for the
//! authoring publish's transaction, the one holding a tag and the notes
//! ref): `mid-update-ref` kills the group once every ref is locked and none
//! renamed; `mid-rename` lets git rename the first ref and kills it at its
//! second `rename` (strace's fault injection), then the group.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{server_git, server_ref, stderr, GitClient, Server, TestUser};

/// The package every round publishes.
pub const PACKAGE: &str = "k";

/// The `reference-transaction` hook behind `mid-update-ref` and `mid-rename`.
const REFERENCE_TRANSACTION: &str = r#"#!/bin/sh
# Test-only (cadgate's crash tests): crash inside the publish's ref transaction.
[ "$1" = prepared ] || exit 0
case "$CADGATE_TEST_CRASH_AT" in mid-update-ref|mid-rename) ;; *) exit 0 ;; esac
input=$(cat)
case "$input" in *refs/notes/cadgate*) ;; *) exit 0 ;; esac
case "$input" in *refs/tags/*) ;; *) exit 0 ;; esac
if [ "$CADGATE_TEST_CRASH_AT" = mid-update-ref ]; then
    kill -KILL 0
fi
git=$PPID
( strace -qq -o /dev/null -p "$git" -e trace=rename,renameat,renameat2 \
    -e inject=rename,renameat,renameat2:signal=KILL:when=2
  kill -KILL 0 ) &
until grep -q '^TracerPid:[[:space:]]*[1-9]' "/proc/$git/status"; do :; done
exit 0
"#;

/// Whether `mid-rename` can run here (strace present).
pub fn strace_available() -> bool {
    std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A data directory with one repository `r`, an admin who may approve their
/// own proposals, and the crash hook installed.
pub struct Rig {
    /// The data directory, kept across server restarts.
    pub data: tempfile::TempDir,
    /// Pushes drafts, proposals and approvals.
    pub admin: TestUser,
    /// The author's client, with a clone in `w`.
    pub client: GitClient,
}

impl Default for Rig {
    fn default() -> Self {
        Self::new()
    }
}

impl Rig {
    /// A fresh data directory (the crash hook goes into the repository
    /// once the first server has created it).
    pub fn new() -> Self {
        let data = tempfile::tempdir().expect("data dir");
        Self {
            data,
            admin: TestUser::new("admin"),
            client: GitClient::new(),
        }
    }

    /// The server's config.
    pub fn config(&self) -> String {
        format!(
            "[policy]\nself_approval = true\n\n[[repository]]\nname = \"r\"\n\n{}",
            self.admin.config(&["admin"], &[])
        )
    }

    /// Start a server on the data directory with `env`.
    pub fn start(&self, env: &[(&str, &str)]) -> Server {
        let server = Server::start_with_data_and_env(&self.config(), self.data.path(), env);
        // The hook's own `git update-ref` runs with the clean git
        // environment (no `core.hooksPath` of cadgate's), so its
        // reference-transaction hook is the repository's own.
        let hook = self.repo().join("hooks/reference-transaction");
        if !hook.exists() {
            std::fs::create_dir_all(self.repo().join("hooks")).expect("hooks dir");
            std::fs::write(&hook, REFERENCE_TRANSACTION).expect("write hook");
            std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .expect("chmod");
        }
        server
    }

    /// The authoring repository.
    pub fn repo(&self) -> PathBuf {
        self.data.path().join("repositories/r.git")
    }

    /// The published view's sibling.
    pub fn view(&self) -> PathBuf {
        self.data.path().join("published/r.git")
    }

    /// Push a draft and its proposal of `k` in workspace `ws` with
    /// `data.yaml` = `content`, based on the branch's tip; the proposal tip.
    pub fn propose(&self, server: &Server, ws: &str, content: &str) -> String {
        let url = server.url_as(&self.admin, "r");
        let c = &self.client;
        if !c.path("w").exists() {
            c.git(&["clone", "-q", &url, "w"]);
        }
        c.git_in(
            "w",
            &[
                "fetch",
                "-q",
                &url,
                "+refs/heads/main:refs/remotes/origin/main",
            ],
        );
        c.git_in("w", &["checkout", "-q", "-B", ws, "origin/main"]);
        let tip = c.commit_package("w", PACKAGE, &[("data.yaml", content.as_bytes())], ws);
        c.git_in(
            "w",
            &[
                "push",
                "-q",
                &url,
                &format!("HEAD:refs/heads/drafts/{PACKAGE}/{ws}"),
            ],
        );
        c.git_in(
            "w",
            &[
                "push",
                "-q",
                &url,
                &format!("HEAD:refs/heads/proposed/{PACKAGE}/{ws}"),
            ],
        );
        tip
    }

    /// The authoring URL of `r` on `server`, with the admin's credentials.
    pub fn url(&self, server: &Server) -> String {
        server.url_as(&self.admin, "r")
    }

    /// Publish the proposal at `tip` through `url`: push it to the branch.
    /// The output.
    pub fn publish(&self, url: &str, tip: &str) -> std::process::Output {
        self.client
            .command(&["-C", "w", "push", url, &format!("+{tip}:refs/heads/main")])
            .output()
            .expect("run git push")
    }

    /// Publish `tip` and insist that it lands as revision `revision`.
    pub fn publish_ok(&self, server: &Server, tip: &str, revision: u64) {
        let out = self.publish(&self.url(server), tip);
        assert!(
            out.status.success()
                && stderr(&out).contains(&format!("published {PACKAGE} v{revision}")),
            "{}",
            stderr(&out)
        );
    }

    /// The published revisions of `k`: revision → the tag's commit.
    pub fn tags(&self) -> BTreeMap<u64, String> {
        server_git(
            &self.repo(),
            &[
                "for-each-ref",
                "--format=%(refname) %(objectname)",
                "refs/tags/",
            ],
        )
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(name, oid)| {
            let n = name.strip_prefix(&format!("refs/tags/{PACKAGE}/v"))?;
            Some((n.parse().ok()?, oid.to_string()))
        })
        .collect()
    }

    /// `k/data.yaml` of revision `n`.
    pub fn content_of(&self, n: u64) -> String {
        server_git(
            &self.repo(),
            &[
                "show",
                &format!("refs/tags/{PACKAGE}/v{n}:{PACKAGE}/data.yaml"),
            ],
        )
    }

    /// The `published` events of the log: (revision, commit), in log order.
    pub fn published_events(&self) -> Vec<(u64, String)> {
        let log = self.repo().join("cadgate-events.log");
        let text = std::fs::read_to_string(log).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["type"] == "published" && e["package"] == PACKAGE)
            .map(|e| {
                (
                    e["revision"].as_u64().unwrap_or(0),
                    e["commit"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// What a restarted server must show whatever a kill interrupted, with
    /// `contents` the `data.yaml` of every proposal published so far:
    /// revisions 1…n contiguous, each a different proposal (none published
    /// twice); the branch at the latest revision, with its tree; the
    /// published view = the branch and the tags; `git fsck` clean in both;
    /// one `published` event per tag; no lock or journal left.
    pub fn assert_whole(&self, contents: &BTreeSet<String>) {
        let (repo, view) = (self.repo(), self.view());
        let tags = self.tags();
        let numbers: Vec<u64> = tags.keys().copied().collect();
        assert_eq!(
            numbers,
            (1..=contents.len() as u64).collect::<Vec<_>>(),
            "revisions are not 1…{}",
            contents.len()
        );
        let published: BTreeSet<String> = numbers.iter().map(|n| self.content_of(*n)).collect();
        assert_eq!(
            &published, contents,
            "a proposal was published twice or lost"
        );
        if let Some((_, latest)) = tags.last_key_value() {
            assert_eq!(server_ref(&repo, "refs/heads/main").as_ref(), Some(latest));
            assert_eq!(
                server_git(&repo, &["rev-parse", "main^{tree}"]),
                server_git(&repo, &["rev-parse", &format!("{latest}^{{tree}}")])
            );
        }
        let refs = |dir: &Path| {
            server_git(
                dir,
                &[
                    "for-each-ref",
                    "--format=%(objectname) %(refname)",
                    "refs/heads/main",
                    "refs/tags/",
                ],
            )
        };
        let all_view = server_git(
            &view,
            &["for-each-ref", "--format=%(objectname) %(refname)"],
        );
        assert_eq!(
            all_view,
            refs(&repo),
            "the published view is not the branch and the tags"
        );
        server_git(&repo, &["fsck", "--no-progress", "--no-dangling"]);
        server_git(&view, &["fsck", "--no-progress", "--no-dangling"]);
        let mut events = self.published_events();
        events.sort();
        let expected: Vec<(u64, String)> = tags.into_iter().collect();
        assert_eq!(
            events, expected,
            "published events are not the tags, once each"
        );
        assert!(
            !repo.join("cadgate-intent.json").exists(),
            "the journal was left"
        );
        for dir in [&repo, &view] {
            assert!(!dir.join("HEAD.lock").exists() && !dir.join("packed-refs.lock").exists());
        }
    }
}

/// Wait (bounded) until a publish the hook killed has taken the whole
/// process group with it.
pub fn wait_killed(server: &mut Server) {
    server.wait_group_gone(Duration::from_secs(60));
}
