//! The intent journal and crash recovery: a push is all or nothing across
//! crashes too.
//!
//! git's files ref backend makes a transaction atomic against concurrent
//! writers, not against a crash: `git update-ref --stdin` renames each ref's
//! lock file in turn, so a process killed between two renames leaves some
//! refs moved, some not, and stale `*.lock` files that make every later
//! write of those refs fail ("cannot lock ref 'HEAD'").
//!
//! So before the ref transaction, while holding the repository's lifecycle
//! lock, the hook writes [`JOURNAL_FILE`] (fsynced, then its directory):
//! every ref edit with its old and new value, the lifecycle events the push
//! causes, and how long the event log was. Then the refs move, the events are
//! appended, the published view follows, and the journal is removed.
//!
//! [`recover`] runs at server start for every repository and in every hook
//! run right after it takes the lifecycle lock:
//!
//! 1. Stale locks are removed: `HEAD.lock`, `packed-refs.lock` and every
//!    `*.lock` below `refs/` (the notes ref's too), in the authoring
//!    repository and in its published view. Holding the lifecycle lock
//!    proves that no cadgate writer is alive, and cadgate is the only writer
//!    of the repositories it serves (`receive.autogc` is off; the hook runs
//!    `gc --auto` itself, under the lock). In hook mode the host may run its
//!    own maintenance outside cadgate's lock, so there a lock must also be
//!    older than a grace period.
//! 2. A journal left behind is rolled **forward**: every ref still at its
//!    old value gets its edit (compare-and-swap, one transaction), so a
//!    consumed proposal is deleted and never published twice. A ref at
//!    neither value (moved by hand since) is left alone and reported.
//! 3. The journal's events not yet in the log are appended, exactly once:
//!    the log's length was recorded, so what was already written is known.
//! 4. The published view is brought in step with every ref, and the
//!    journal removed.
//!
//! [`reconcile_published`] (server start) gives every `F/vN` tag without a
//! `published` event one, for logs written before the journal existed.
//!
//! For tests only, [`crash_point`] kills the hook's whole process group at
//! named points when `CADGATE_TEST_CRASH_AT` names them; it is inert
//! otherwise.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::events::{self, EventError, EventKind, Pending};
use crate::git::{GitError, RefEdit, Repo};
use crate::published::PublishedRepo;
use crate::refs::{Layout, PackagePath, RefKind};

/// The journal's file name inside the git directory.
pub const JOURNAL_FILE: &str = "cadgate-intent.json";

pub use crate::process::CRASH_VARIABLE;

/// What a push is about to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Intent {
    /// Who pushed (the events' user).
    user: String,
    /// The ref edits of the one transaction.
    edits: Vec<Edit>,
    /// The events to record once the edits landed.
    events: Vec<Pending>,
    /// The event log's length before them.
    log_len: u64,
}

/// One ref edit: `None` is "absent".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Edit {
    name: String,
    old: Option<String>,
    new: Option<String>,
}

impl Edit {
    fn of(edit: &RefEdit) -> Self {
        let (old, new) = match edit {
            RefEdit::Create { new, .. } => (None, Some(new.clone())),
            RefEdit::Update { new, old, .. } => (Some(old.clone()), Some(new.clone())),
            RefEdit::Delete { old, .. } => (Some(old.clone()), None),
        };
        Self {
            name: edit.name().to_string(),
            old,
            new,
        }
    }

    /// The edit that takes the ref from its old value to its new one.
    fn as_ref_edit(&self) -> Option<RefEdit> {
        let name = self.name.clone();
        match (&self.old, &self.new) {
            (None, Some(new)) => Some(RefEdit::Create {
                name,
                new: new.clone(),
            }),
            (Some(old), Some(new)) => Some(RefEdit::Update {
                name,
                new: new.clone(),
                old: old.clone(),
            }),
            (Some(old), None) => Some(RefEdit::Delete {
                name,
                old: old.clone(),
            }),
            (None, None) => None,
        }
    }
}

/// Why recovery could not complete.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The journal or a lock file could not be read, written or removed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Rolling the refs forward failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The interrupted push's events could not be recorded.
    #[error(transparent)]
    Events(#[from] EventError),
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> JournalError + 'a {
    move |source| JournalError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// The journal of the repository at `git_dir`.
pub fn journal_path(git_dir: &Path) -> PathBuf {
    git_dir.join(JOURNAL_FILE)
}

/// Record, durably, that `user`'s push is about to apply `edits` and then
/// record `pending`. Call with the lifecycle lock held, right before the
/// ref transaction.
pub fn write(
    git_dir: &Path,
    user: &str,
    edits: &[RefEdit],
    pending: &[Pending],
) -> Result<(), JournalError> {
    let intent = Intent {
        user: user.to_string(),
        edits: edits.iter().map(Edit::of).collect(),
        events: pending.to_vec(),
        log_len: events::log_len(git_dir),
    };
    if pending.iter().any(|p| p.kind == EventKind::Published) {
        PUBLISHING.store(true, Ordering::Relaxed);
    }
    let path = journal_path(git_dir);
    let temporary = git_dir.join(format!("{JOURNAL_FILE}.tmp"));
    let text = serde_json::to_vec(&intent).map_err(|e| JournalError::Io {
        what: "encode",
        path: path.clone(),
        source: e.into(),
    })?;
    let mut file = std::fs::File::create(&temporary).map_err(io("write", &temporary))?;
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .map_err(io("write", &temporary))?;
    std::fs::rename(&temporary, &path).map_err(io("write", &path))?;
    sync_dir(git_dir)?;
    crash_point("after-journal");
    Ok(())
}

/// The push recorded by [`write`] is complete: remove the journal.
pub fn finish(git_dir: &Path) -> Result<(), JournalError> {
    let path = journal_path(git_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => sync_dir(git_dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("remove", &path)(e)),
    }
}

/// The ref transaction of [`write`]'s push failed: when no ref moved (a ref
/// changed meanwhile, git refused), nothing is left to complete and the
/// journal goes; when some did (git died between renames), it stays for
/// [`recover`].
pub fn abandon_if_untouched(repo: &Repo, edits: &[RefEdit]) -> Result<(), JournalError> {
    let edits: Vec<Edit> = edits.iter().map(Edit::of).collect();
    let current = current_values(repo, &edits)?;
    if edits
        .iter()
        .all(|e| current.get(&e.name).cloned().flatten() == e.old)
    {
        finish(repo.git_dir())?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync", dir))
}

/// The current value of each edit's ref (`None`: absent).
fn current_values(
    repo: &Repo,
    edits: &[Edit],
) -> Result<HashMap<String, Option<String>>, GitError> {
    let names: Vec<&str> = edits.iter().map(|e| e.name.as_str()).collect();
    let found: HashMap<String, String> = repo
        .refs_under(&names)?
        .into_iter()
        .map(|r| (r.name, r.target))
        .collect();
    Ok(edits
        .iter()
        .map(|e| (e.name.clone(), found.get(&e.name).cloned()))
        .collect())
}

/// What [`recover`] found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Stale lock files removed.
    pub removed_locks: Vec<PathBuf>,
    /// A journal was found and completed.
    pub completed: bool,
    /// Ref edits it applied (the rest had landed before the crash).
    pub applied: Vec<String>,
    /// Refs at neither their old nor their new value, left alone.
    pub conflicts: Vec<String>,
    /// Events it appended.
    pub events: usize,
    /// The published view could not be brought in step (it is at server start).
    pub view_failure: Option<String>,
}

impl Recovery {
    /// Nothing was found.
    pub fn is_empty(&self) -> bool {
        self.removed_locks.is_empty() && !self.completed
    }

    /// One line per thing done, for the server's log or the pusher.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .removed_locks
            .iter()
            .map(|p| {
                format!(
                    "removed the stale lock {} (left by a killed process)",
                    p.display()
                )
            })
            .collect();
        if self.completed {
            lines.push(format!(
                "completed a push interrupted by a crash: {} ref update(s) applied now{}, {} event(s) recorded",
                self.applied.len(),
                if self.applied.is_empty() { String::new() } else { format!(" ({})", self.applied.join(", ")) },
                self.events
            ));
        }
        for name in &self.conflicts {
            lines.push(format!(
                "WARNING: {name} is at neither the value before nor after the interrupted push (moved by hand since?); left as it is"
            ));
        }
        if let Some(e) = &self.view_failure {
            lines.push(format!(
                "warning: the published view could not follow ({e}); the server repairs it on its next start"
            ));
        }
        lines
    }
}

/// Complete whatever a crashed writer left in the repository at `git_dir`
/// (named `repository` in events; `layout`, and `published`, its view's
/// sibling, if any). Call with the lifecycle lock held. Lock files younger
/// than `min_lock_age` are kept (hook mode: the host's own git may hold them).
pub fn recover(
    git_dir: &Path,
    repository: &str,
    layout: &Layout,
    published: Option<&Path>,
    min_lock_age: Duration,
) -> Result<Recovery, JournalError> {
    let mut recovery = Recovery {
        removed_locks: clear_stale_locks(git_dir, min_lock_age)?,
        ..Recovery::default()
    };
    let view = published.filter(|p| p.join("HEAD").exists());
    if let Some(view) = view {
        recovery
            .removed_locks
            .extend(clear_stale_locks(view, min_lock_age)?);
    }
    let _ = std::fs::remove_file(git_dir.join(format!("{JOURNAL_FILE}.tmp")));
    let path = journal_path(git_dir);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(recovery),
        Err(e) => return Err(io("read", &path)(e)),
    };
    // Written whole and renamed into place, so it parses unless tampered with.
    let intent: Intent = serde_json::from_slice(&text).map_err(|e| JournalError::Io {
        what: "parse",
        path: path.clone(),
        source: e.into(),
    })?;
    recovery.completed = true;
    let repo = Repo::open(git_dir)?;
    let current = current_values(&repo, &intent.edits)?;
    let mut remaining = Vec::new();
    for edit in &intent.edits {
        let now = current.get(&edit.name).cloned().flatten();
        if now == edit.new {
            continue;
        }
        if now == edit.old {
            remaining.extend(edit.as_ref_edit());
            recovery.applied.push(edit.name.clone());
        } else {
            recovery.conflicts.push(edit.name.clone());
        }
    }
    repo.update_refs(
        &remaining,
        &format!(
            "cadgate: completing a push by {} interrupted by a crash",
            intent.user
        ),
    )?;
    // The events the interrupted push had recorded are those after the
    // log's recorded length; the rest are recorded now.
    let (written, _) = events::read_from(&events::log_path(git_dir), intent.log_len)
        .map_err(io("read", &events::log_path(git_dir)))?;
    let mut done = 0;
    for event in &written {
        if let Some(expected) = intent.events.get(done) {
            if same_event(event, expected) {
                done += 1;
            }
        }
    }
    let missing: Vec<(&str, &Pending)> = intent.events[done..]
        .iter()
        .map(|p| (intent.user.as_str(), p))
        .collect();
    recovery.events = events::append_records(git_dir, repository, &missing)?.len();
    if let Some(view) = view {
        let repo = Repo::open(git_dir)?;
        if let Err(e) = PublishedRepo::at(view).sync(&repo, layout, None) {
            recovery.view_failure = Some(e.to_string());
        }
    }
    finish(git_dir)?;
    Ok(recovery)
}

fn same_event(event: &events::Event, pending: &Pending) -> bool {
    event.kind == pending.kind.as_str()
        && event.package == pending.package
        && event.workspace == pending.workspace
        && event.revision == pending.revision
        && event.commit == pending.commit
}

/// Remove the lock files a killed git left in the repository at `git_dir`:
/// `HEAD.lock`, `packed-refs.lock` and every `*.lock` below `refs/`, those
/// at least `min_age` old. Call with the lifecycle lock held: it proves no
/// cadgate writer owns them.
pub fn clear_stale_locks(git_dir: &Path, min_age: Duration) -> Result<Vec<PathBuf>, JournalError> {
    let mut locks: Vec<PathBuf> = ["HEAD.lock", "packed-refs.lock"]
        .iter()
        .map(|name| git_dir.join(name))
        .filter(|p| p.is_file())
        .collect();
    find_locks(&git_dir.join("refs"), &mut locks, 0);
    let mut removed = Vec::new();
    for lock in locks {
        let old_enough = min_age.is_zero()
            || std::fs::metadata(&lock)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= min_age);
        if !old_enough {
            continue;
        }
        match std::fs::remove_file(&lock) {
            Ok(()) => removed.push(lock),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("remove the stale lock", &lock)(e)),
        }
    }
    Ok(removed)
}

/// Every `*.lock` file below `dir` (ref names nest a bounded depth).
fn find_locks(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > 64 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            find_locks(&path, out, depth + 1);
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "lock") {
            out.push(path);
        }
    }
}

/// Give every `F/vN` tag of the repository at `git_dir` that has no
/// `published` event in the log one (a log written before the journal
/// existed, or by a crash that lost it), ordered by approval time and
/// revision. Revisions approved before the log's first event predate the
/// log (a repository imported from Porch, or served before events existed)
/// and get none: recording them would replay history to every subscriber.
/// Call with the lifecycle lock held. Returns how many it wrote.
pub fn reconcile_published(
    git_dir: &Path,
    repository: &str,
    layout: &Layout,
) -> Result<usize, JournalError> {
    let (known, since) =
        events::published_keys(git_dir).map_err(io("read", &events::log_path(git_dir)))?;
    let Some(since) = since else {
        return Ok(0);
    };
    let repo = Repo::open(git_dir)?;
    let mut missing: Vec<(PackagePath, u64, String)> = repo
        .refs_under(&["refs/tags/"])?
        .into_iter()
        .filter_map(|r| match layout.classify(&r.name) {
            RefKind::Published { package, revision } => Some((package, revision, r.commit)),
            _ => None,
        })
        .filter(|(package, revision, commit)| {
            !known.contains(&(package.as_str().to_string(), *revision, commit.clone()))
        })
        .collect();
    if missing.is_empty() {
        return Ok(0);
    }
    let commits: Vec<String> = missing.iter().map(|(_, _, c)| c.clone()).collect();
    let infos = repo.commit_infos(&commits)?;
    let mut records: Vec<(i64, String, Pending)> = missing
        .drain(..)
        .zip(infos)
        .filter(|(_, info)| info.author_time >= i64::try_from(since).unwrap_or(i64::MAX))
        .map(|((package, revision, commit), info)| {
            let workspace = crate::listing::annotated_workspace(&info.message, &package)
                .unwrap_or_else(|| format!("v{revision}"));
            let user = info
                .message
                .lines()
                .find_map(|l| l.strip_prefix("Approved-by:"))
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "unknown".into());
            (
                info.author_time,
                user,
                Pending {
                    kind: EventKind::Published,
                    package: package.as_str().to_string(),
                    workspace,
                    revision,
                    commit,
                },
            )
        })
        .collect();
    records
        .sort_by(|a, b| (a.0, &a.2.package, a.2.revision).cmp(&(b.0, &b.2.package, b.2.revision)));
    let pairs: Vec<(&str, &Pending)> = records.iter().map(|(_, u, p)| (u.as_str(), p)).collect();
    Ok(events::append_records(git_dir, repository, &pairs)?.len())
}

/// This process is carrying out a publish ([`crash_point`] fires only then).
static PUBLISHING: AtomicBool = AtomicBool::new(false);

/// Test-only fault injection: when `CADGATE_TEST_CRASH_AT` is `point` and
/// this hook run is carrying out a publish, kill this process's whole
/// process group with SIGKILL (the server, git receive-pack and this hook,
/// as a power cut would stop them). Inert when the variable is unset, as it
/// is outside cadgate's crash tests. The points, in order: `after-journal`,
/// `after-refs`, `after-events`, `after-view` (before the journal goes).
pub fn crash_point(point: &str) {
    if !PUBLISHING.load(Ordering::Relaxed)
        || std::env::var(CRASH_VARIABLE).ok().as_deref() != Some(point)
    {
        return;
    }
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "0"])
        .status();
    // `kill 0` reached this process too; should it not have, stop here.
    std::process::abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_locks_are_found_below_refs_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let git = dir.path();
        std::fs::create_dir_all(git.join("refs/heads/drafts/a")).expect("mkdir");
        std::fs::create_dir_all(git.join("objects")).expect("mkdir");
        for file in [
            "HEAD.lock",
            "packed-refs.lock",
            "refs/heads/main.lock",
            "refs/heads/drafts/a/ws.lock",
            "config.lock",
            "objects/x.lock",
            "refs/heads/main",
        ] {
            std::fs::write(git.join(file), "x").expect("write");
        }
        // Too young in hook mode: kept.
        assert!(clear_stale_locks(git, Duration::from_secs(3600))
            .expect("clear")
            .is_empty());
        let mut removed = clear_stale_locks(git, Duration::ZERO).expect("clear");
        removed.sort();
        let names: Vec<String> = removed
            .iter()
            .map(|p| p.strip_prefix(git).expect("inside").display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "HEAD.lock",
                "packed-refs.lock",
                "refs/heads/drafts/a/ws.lock",
                "refs/heads/main.lock"
            ]
        );
        assert!(git.join("config.lock").exists());
        assert!(git.join("objects/x.lock").exists());
        assert!(git.join("refs/heads/main").exists());
    }

    #[test]
    fn an_edit_round_trips() {
        for edit in [
            RefEdit::Create {
                name: "refs/tags/a/v1".into(),
                new: "1".repeat(40),
            },
            RefEdit::Update {
                name: "refs/heads/main".into(),
                new: "2".repeat(40),
                old: "1".repeat(40),
            },
            RefEdit::Delete {
                name: "refs/heads/proposed/a/ws".into(),
                old: "3".repeat(40),
            },
        ] {
            assert_eq!(Edit::of(&edit).as_ref_edit(), Some(edit));
        }
    }
}
