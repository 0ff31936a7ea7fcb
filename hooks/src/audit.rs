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

/// The audit line recording that `user` proposed `package` workspace
/// `workspace` at `at`: the proposal is named, since one commit can be the
/// tip of several proposals (one per workspace) over its life.
pub fn proposed_by(user: &str, at: u64, package: &str, workspace: &str) -> String {
    format!("proposed-by: {user} {at} {package}/{workspace}")
}

/// The user who made the proposal `package` workspace `workspace` whose tip
/// is `commit`: the newest `proposed-by` line of the commit's note naming
/// that proposal. Another proposal of the same commit (another workspace,
/// perhaps deleted since) never counts. Lines written before proposals were
/// named (no third field) are the fallback, newest first.
pub fn proposer(
    repo: &Repo,
    tip: Option<&str>,
    commit: &str,
    package: &str,
    workspace: &str,
) -> Result<Option<String>, GitError> {
    let Some(tip) = tip else { return Ok(None) };
    let note = repo.read_file(tip, commit)?.unwrap_or_default();
    Ok(proposer_in(&note, &format!("{package}/{workspace}")))
}

fn proposer_in(note: &str, proposal: &str) -> Option<String> {
    let mut legacy = None;
    for line in note.lines().rev() {
        let Some(rest) = line.strip_prefix("proposed-by: ") else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let (Some(user), _at) = (fields.next(), fields.next()) else {
            continue;
        };
        match fields.next() {
            Some(named) if named == proposal => return Some(user.to_string()),
            Some(_) => {}
            None => {
                legacy.get_or_insert_with(|| user.to_string());
            }
        }
    }
    legacy
}

/// Seconds since the epoch, for audit lines.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proposer_is_the_one_of_this_proposal() {
        let note = format!(
            "{}\n{}\n",
            proposed_by("bob", 1, "app", "ws2"),
            proposed_by("alice", 2, "app", "ws1")
        );
        assert_eq!(proposer_in(&note, "app/ws2").as_deref(), Some("bob"));
        assert_eq!(proposer_in(&note, "app/ws1").as_deref(), Some("alice"));
        assert_eq!(proposer_in(&note, "app/ws3"), None);
        let old = "proposed-by: carol 1\nproposed-by: dave 2\n";
        assert_eq!(proposer_in(old, "app/ws1").as_deref(), Some("dave"));
        let mixed = format!("{old}{}\n", proposed_by("erin", 3, "app", "ws1"));
        assert_eq!(proposer_in(&mixed, "app/ws1").as_deref(), Some("erin"));
    }
}
