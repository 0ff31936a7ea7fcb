//! The audit trail: who proposed, rejected and approved what, and when, kept
//! in Git as notes under `refs/notes/cadgate` (`git log --notes=cadgate`
//! shows it). Notes are written in the same ref transaction as the change
//! they record, so the trail never disagrees with the refs.

use crate::git::{GitError, RefEdit, Repo, Signature};
use crate::refs::NOTES;

/// Lines to append to commits' notes, written as one notes commit.
#[derive(Debug, Default)]
pub struct AuditLog {
    entries: Vec<(String, String)>,
}

impl AuditLog {
    /// Record `line` on `commit`.
    pub fn add(&mut self, commit: &str, line: String) {
        self.entries.push((commit.to_string(), line));
    }

    /// The ref edit that records every entry on top of `tip` (the current
    /// notes commit), or `None` when there is nothing to record.
    pub fn commit(
        &self,
        repo: &Repo,
        tip: Option<&str>,
        user: &str,
    ) -> Result<Option<RefEdit>, GitError> {
        if self.entries.is_empty() {
            return Ok(None);
        }
        let mut targets: Vec<&str> = self.entries.iter().map(|(c, _)| c.as_str()).collect();
        targets.sort_unstable();
        targets.dedup();
        let mut files = Vec::new();
        for target in targets {
            let mut text = match tip {
                Some(tip) => repo.read_file(tip, target)?.unwrap_or_default(),
                None => String::new(),
            };
            for (_, line) in self.entries.iter().filter(|(c, _)| c == target) {
                text.push_str(line);
                text.push('\n');
            }
            files.push((target.to_string(), text.into_bytes()));
        }
        let tree = repo.tree_with_files(tip, &files)?;
        let parents: Vec<&str> = tip.into_iter().collect();
        let author = Signature {
            name: user.to_string(),
            email: user.to_string(),
        };
        let commit = repo.commit_tree(
            &tree,
            &parents,
            &format!("cadgate audit: {user}\n"),
            &author,
        )?;
        Ok(Some(match tip {
            Some(old) => RefEdit::Update {
                name: NOTES.into(),
                new: commit,
                old: old.to_string(),
            },
            None => RefEdit::Create {
                name: NOTES.into(),
                new: commit,
            },
        }))
    }
}

/// The user who proposed `commit`, from its audit note.
pub fn proposer(repo: &Repo, tip: Option<&str>, commit: &str) -> Result<Option<String>, GitError> {
    let Some(tip) = tip else { return Ok(None) };
    let note = repo.read_file(tip, commit)?.unwrap_or_default();
    Ok(note
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("proposed-by: "))
        .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string()))
}

/// Seconds since the epoch, for audit lines.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
