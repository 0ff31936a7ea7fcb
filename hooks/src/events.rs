//! The lifecycle event log: one JSON line per lifecycle event, appended to
//! `<git_dir>/cadgate-events.log` while the repository's lifecycle lock is
//! held, so the log's order is the order the changes landed in.
//!
//! Each line is an [`Event`]:
//!
//! ```json
//! {"seq":7,"time":1764130000,"repository":"blueprints","type":"published","package":"basens","workspace":"ws1","revision":1,"commit":"<sha>","user":"bob"}
//! ```
//!
//! `seq` starts at 1 and grows by one per repository with no gaps; it is
//! read back from the file's last valid line under the same lock. A line
//! torn by a crash is left alone (readers skip lines that do not parse) and
//! the next append starts on a fresh line.
//!
//! The event types ([`EventKind`]) follow the transitions of
//! [`crate::lifecycle::Transition`]:
//!
//! | type | transition |
//! |---|---|
//! | `created` | a draft ref is created (first push of a workspace) |
//! | `updated` | an existing draft is pushed again |
//! | `proposed` | draft → proposed |
//! | `rejected` | a proposal is sent back to draft |
//! | `published` | proposal → the branch; `revision` is the allocated N |
//! | `deletion-proposed` | `deletionProposed/F/vN` created |
//! | `deletion-rejected` | `deletionProposed/F/vN` deleted |
//! | `deleted` | `F/vN` deleted (deletion approved) |
//! | `draft-deleted` | a draft or a proposal deleted |

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The log's file name inside the git directory.
pub const LOG_FILE: &str = "cadgate-events.log";

/// The log of the repository at `git_dir`.
pub fn log_path(git_dir: &Path) -> PathBuf {
    git_dir.join(LOG_FILE)
}

/// What happened to a package revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A draft was created.
    Created,
    /// A draft was updated.
    Updated,
    /// A draft was proposed.
    Proposed,
    /// A proposal was rejected (it is a draft again).
    Rejected,
    /// A proposal was published as revision N.
    Published,
    /// Deleting a published revision was proposed.
    DeletionProposed,
    /// A deletion proposal was rejected.
    DeletionRejected,
    /// A published revision was deleted.
    Deleted,
    /// A draft or proposal was deleted.
    DraftDeleted,
}

impl EventKind {
    /// Every kind, in lifecycle order.
    pub const ALL: [EventKind; 9] = [
        EventKind::Created,
        EventKind::Updated,
        EventKind::Proposed,
        EventKind::Rejected,
        EventKind::Published,
        EventKind::DeletionProposed,
        EventKind::DeletionRejected,
        EventKind::Deleted,
        EventKind::DraftDeleted,
    ];

    /// The spelling in the log, the SSE `event:` field and webhook configs.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Updated => "updated",
            EventKind::Proposed => "proposed",
            EventKind::Rejected => "rejected",
            EventKind::Published => "published",
            EventKind::DeletionProposed => "deletion-proposed",
            EventKind::DeletionRejected => "deletion-rejected",
            EventKind::Deleted => "deleted",
            EventKind::DraftDeleted => "draft-deleted",
        }
    }

    /// Parse the spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// 1, 2, 3, … per repository, no gaps.
    pub seq: u64,
    /// When it was recorded, seconds since the Unix epoch.
    pub time: u64,
    /// The repository's configured name.
    pub repository: String,
    /// One of [`EventKind::as_str`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The package path `F`.
    pub package: String,
    /// The workspace (for deletions, the one the revision was published from).
    pub workspace: String,
    /// The revision N for `published` and the deletion events; 0 otherwise.
    pub revision: u64,
    /// The commit: the draft or proposal tip, the approval commit, or the
    /// deleted revision's commit.
    pub commit: String,
    /// Who pushed.
    pub user: String,
}

impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event type {name:?}")))
    }
}

/// An event a push will cause once its ref updates land (also what the
/// intent journal keeps of them, [`crate::journal`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// What happens.
    pub kind: EventKind,
    /// The package.
    pub package: String,
    /// The workspace.
    pub workspace: String,
    /// The revision (0 for drafts and proposals).
    pub revision: u64,
    /// The commit.
    pub commit: String,
}

/// Why events could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The log could not be read or written.
    #[error("cannot write the event log {}: {source}", path.display())]
    Io {
        /// The log.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An event could not be encoded (never expected).
    #[error("cannot encode an event: {0}")]
    Encode(#[from] serde_json::Error),
}

/// How much of the file's end is read to find the last seq.
const TAIL: u64 = 64 * 1024;

/// Append `pending` as the next events of `repository`, pushed by `user`.
/// Call with the repository's lifecycle lock held. Returns what was written.
pub fn append(
    git_dir: &Path,
    repository: &str,
    user: &str,
    pending: &[Pending],
) -> Result<Vec<Event>, EventError> {
    let records: Vec<(&str, &Pending)> = pending.iter().map(|p| (user, p)).collect();
    append_records(git_dir, repository, &records)
}

/// [`append`], each event with its own user (events recovered after a
/// crash, [`crate::journal`]).
pub fn append_records(
    git_dir: &Path,
    repository: &str,
    pending: &[(&str, &Pending)],
) -> Result<Vec<Event>, EventError> {
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let path = log_path(git_dir);
    let io = |source| EventError::Io {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(&path)
        .map_err(io)?;
    let (last, torn) = last_seq(&mut file).map_err(io)?;
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut text = String::new();
    if torn {
        text.push('\n');
    }
    let mut events = Vec::with_capacity(pending.len());
    for (i, (user, p)) in pending.iter().enumerate() {
        let event = Event {
            seq: last + 1 + i as u64,
            time,
            repository: repository.to_string(),
            kind: p.kind.as_str().to_string(),
            package: p.package.clone(),
            workspace: p.workspace.clone(),
            revision: p.revision,
            commit: p.commit.clone(),
            user: user.to_string(),
        };
        text.push_str(&serde_json::to_string(&event)?);
        text.push('\n');
        events.push(event);
    }
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_data().map_err(io)?;
    Ok(events)
}

/// The log's length in bytes now (0 when there is none): where the events
/// of the next append will start.
pub fn log_len(git_dir: &Path) -> u64 {
    std::fs::metadata(log_path(git_dir))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// The `published` events of a log, as (package, revision, commit).
pub type PublishedKeys = std::collections::HashSet<(String, u64, String)>;

/// Every `published` event of the log, and the time of the log's first
/// event (`None`: no event yet).
pub fn published_keys(git_dir: &Path) -> std::io::Result<(PublishedKeys, Option<u64>)> {
    let path = log_path(git_dir);
    let mut keys = PublishedKeys::new();
    let mut first = None;
    let mut offset = 0;
    loop {
        let (events, next) = read_at_most(&path, offset, 4 << 20)?;
        first = first.or(events.first().map(|e| e.time));
        keys.extend(
            events
                .into_iter()
                .filter(|e| e.kind == EventKind::Published.as_str())
                .map(|e| (e.package, e.revision, e.commit)),
        );
        if next == offset {
            return Ok((keys, first));
        }
        offset = next;
    }
}

/// The seq of the file's last valid line (0 when none), and whether the
/// file ends inside a line (a torn write).
fn last_seq(file: &mut File) -> std::io::Result<(u64, bool)> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok((0, false));
    }
    let mut window = TAIL.min(len);
    loop {
        file.seek(SeekFrom::Start(len - window))?;
        let mut tail = Vec::with_capacity(window as usize);
        std::io::Read::take(&mut *file, window).read_to_end(&mut tail)?;
        let torn = tail.last() != Some(&b'\n');
        let complete = match tail.iter().rposition(|b| *b == b'\n') {
            Some(end) => &tail[..end],
            None => &tail[..0],
        };
        let found = complete
            .split(|b| *b == b'\n')
            .rev()
            .find_map(|line| serde_json::from_slice::<Event>(line).ok());
        if let Some(event) = found {
            return Ok((event.seq, torn));
        }
        if window == len {
            return Ok((0, torn));
        }
        window = (window * 4).min(len);
    }
}

/// Read the complete lines of the log from byte `offset`: the events that
/// parse, and the offset just past the last complete line (a line still
/// being written is left for the next read).
pub fn read_from(path: &Path, offset: u64) -> std::io::Result<(Vec<Event>, u64)> {
    read_at_most(path, offset, u64::MAX)
}

/// [`read_from`], reading at most about `limit` bytes (whole lines; at least
/// one line), so a long log is read in pieces: call again from the returned
/// offset until it stops moving.
pub fn read_at_most(path: &Path, offset: u64, limit: u64) -> std::io::Result<(Vec<Event>, u64)> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let len = file.seek(SeekFrom::End(0))?;
    if len <= offset {
        // Unchanged, or replaced by a shorter file: start again from there.
        return Ok((Vec::new(), len.min(offset)));
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    let mut want = (len - offset).min(limit.max(1));
    loop {
        let start = bytes.len();
        std::io::Read::take(&mut file, want).read_to_end(&mut bytes)?;
        let read_all = offset + bytes.len() as u64 >= len;
        if read_all || bytes[start..].contains(&b'\n') {
            break;
        }
        // No complete line yet: read on.
        want = want.saturating_mul(2);
    }
    let Some(end) = bytes.iter().rposition(|b| *b == b'\n') else {
        return Ok((Vec::new(), offset));
    };
    let events = bytes[..end]
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Event>(line).ok())
        .collect();
    Ok((events, offset + end as u64 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(kind: EventKind) -> Pending {
        Pending {
            kind,
            package: "basens".into(),
            workspace: "ws1".into(),
            revision: 0,
            commit: "a".repeat(40),
        }
    }

    #[test]
    fn kinds_match_the_config_names() {
        let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, cadgate_config::EVENT_TYPES);
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn seq_grows_without_gaps_and_survives_a_torn_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let written = append(
            dir.path(),
            "demo",
            "alice",
            &[pending(EventKind::Created), pending(EventKind::Updated)],
        )
        .expect("append");
        assert_eq!(
            written.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 2]
        );
        // A crash mid-line.
        let path = log_path(dir.path());
        let mut file = OpenOptions::new().append(true).open(&path).expect("open");
        file.write_all(b"{\"seq\":3,\"ti").expect("write");
        let written =
            append(dir.path(), "demo", "bob", &[pending(EventKind::Proposed)]).expect("append");
        assert_eq!(written[0].seq, 3);
        let (events, offset) = read_from(&path, 0).expect("read");
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(events[2].kind, "proposed");
        assert_eq!(events[2].user, "bob");
        let (more, same) = read_from(&path, offset).expect("read");
        assert!(more.is_empty());
        assert_eq!(same, offset);
    }

    #[test]
    fn a_long_log_is_read_in_pieces() {
        let dir = tempfile::tempdir().expect("temp dir");
        let many: Vec<Pending> = (0..50).map(|_| pending(EventKind::Updated)).collect();
        append(dir.path(), "demo", "alice", &many).expect("append");
        let path = log_path(dir.path());
        let (mut offset, mut seqs, mut reads) = (0, Vec::new(), 0);
        loop {
            let (events, next) = read_at_most(&path, offset, 1000).expect("read");
            if next == offset {
                break;
            }
            reads += 1;
            seqs.extend(events.iter().map(|e| e.seq));
            offset = next;
        }
        assert_eq!(seqs, (1..=50).collect::<Vec<u64>>());
        assert!(reads > 5, "{reads} reads");
        // A limit smaller than a line still reads one line.
        let (events, _) = read_at_most(&path, 0, 1).expect("read");
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn a_partial_last_line_is_left_for_later() {
        let dir = tempfile::tempdir().expect("temp dir");
        append(dir.path(), "demo", "alice", &[pending(EventKind::Created)]).expect("append");
        let path = log_path(dir.path());
        let (_, offset) = read_from(&path, 0).expect("read");
        let mut file = OpenOptions::new().append(true).open(&path).expect("open");
        file.write_all(b"{\"seq\":2").expect("write");
        let (events, next) = read_from(&path, offset).expect("read");
        assert!(events.is_empty());
        assert_eq!(next, offset);
    }
}
