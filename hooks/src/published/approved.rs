//! What the published view holds, and what it refuses.
//!
//! **The cut.** The view holds the first-parent chain of each served tip
//! (the branch, the `F/vN` tags) and, of every commit on it, its other
//! parents — an approval commit's proposal tip, whose tree is the approved
//! tree — but nothing behind those: such a proposal tip is one of the
//! sibling's shallow commits, unless its own parents are all published (a
//! one-commit draft), when it hides nothing and comes whole.
//!
//! **Withdrawn objects.** A deleted revision stays in the branch's history.
//! What a `want` may no longer name: its approval commit, its proposal tip,
//! their root trees and the objects of its package in them, except those a
//! tip still published (or its proposal tip) holds.

use std::collections::BTreeSet;

use super::{lines, read_oids, PublishedRepo};
use crate::git::{GitError, Repo};

/// The sibling's shallow commits once it holds `tips` (with `have`, the tip
/// it already holds, and `old`, its shallow commits now): `old` plus each
/// other parent of the new first-parent chain commits that is not published
/// whole and has a parent that is not published (`incremental`: the sibling
/// holds its current refs' history, which counts as published; otherwise
/// only the new chain does). `None` when the new history runs through a
/// commit of `old`, which only a rebuild can un-cut.
pub(super) fn cut(
    view: &PublishedRepo,
    authoring: &Repo,
    tips: &BTreeSet<&str>,
    have: Option<&str>,
    old: &BTreeSet<String>,
    incremental: bool,
) -> Result<Option<BTreeSet<String>>, GitError> {
    let input = revs_input(tips, have);
    let cut_file = view.cut_file(authoring, old)?;
    let listed = view.run_at(
        authoring.git_dir(),
        cut_file.as_deref(),
        &["rev-list", "--first-parent", "--parents", "--stdin"],
        Some(&input),
    )?;
    view.remove_file(super::CUT_FILE)?;
    let mut chain = BTreeSet::new();
    let mut others = BTreeSet::new();
    for line in listed.lines() {
        let mut words = line.split_whitespace();
        if let Some(commit) = words.next() {
            chain.insert(commit.to_string());
        }
        words.next();
        others.extend(words.map(str::to_string));
    }
    if chain.iter().any(|commit| old.contains(commit)) {
        return Ok(None);
    }
    let candidates: BTreeSet<String> = others
        .into_iter()
        .filter(|commit| !chain.contains(commit) && !old.contains(commit))
        .collect();
    let mut new = BTreeSet::new();
    if !candidates.is_empty() {
        // A proposal tip whose parents are all published commits (a draft
        // of one commit on the branch) hides nothing: it comes whole, so
        // clients see no new shallow commit. Any other is cut.
        let parents = parents_of(view, authoring.git_dir(), &candidates)?;
        let mut asked = candidates.clone();
        parents.values().flatten().for_each(|p| {
            asked.insert(p.clone());
        });
        let held = if incremental {
            held_whole(view, &asked, old)?
        } else {
            BTreeSet::new()
        };
        let published = |commit: &String| chain.contains(commit) || held.contains(commit);
        for commit in candidates {
            if published(&commit) {
                continue;
            }
            let hides_nothing = parents
                .get(&commit)
                .is_some_and(|ps| ps.iter().all(published));
            if !hides_nothing {
                new.insert(commit);
            }
        }
    }
    // Where the authoring repository's own history is cut (a shallow
    // repository), the sibling's is too.
    let theirs = read_oids(&authoring.git_dir().join("shallow"));
    new.extend(chain.intersection(&theirs).cloned());
    let mut all = old.clone();
    all.extend(new);
    Ok(Some(all))
}

/// The parents of each of `commits` in the repository at `git_dir`.
fn parents_of(
    view: &PublishedRepo,
    git_dir: &std::path::Path,
    commits: &BTreeSet<String>,
) -> Result<std::collections::BTreeMap<String, Vec<String>>, GitError> {
    let listed = view.run_at(
        git_dir,
        None,
        &["rev-list", "--no-walk=unsorted", "--parents", "--stdin"],
        Some(&lines(commits)),
    )?;
    Ok(listed
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace().map(str::to_string);
            words.next().map(|commit| (commit, words.collect()))
        })
        .collect())
}

/// Which of `commits` the sibling holds with their whole history: those it
/// holds that are not among its shallow commits `old`.
fn held_whole(
    view: &PublishedRepo,
    commits: &BTreeSet<String>,
    old: &BTreeSet<String>,
) -> Result<BTreeSet<String>, GitError> {
    let checked = view.run(&["cat-file", "--batch-check"], Some(&lines(commits)))?;
    Ok(checked
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some(oid), Some("commit")) if !old.contains(oid) => Some(oid.to_string()),
                _ => None,
            }
        })
        .collect())
}

/// The objects to refuse once the revisions `deleted` (package path, tag
/// target) are gone, `live` being every tip still published. Read from the
/// sibling, which holds them all.
pub(super) fn withdrawn(
    view: &PublishedRepo,
    deleted: &[(String, &str)],
    live: &[String],
) -> Result<BTreeSet<String>, GitError> {
    let mut refused = BTreeSet::new();
    for (package, tip) in deleted {
        // The approval commit and its proposal tip(s).
        let commits = approval_and_proposal(view, &[tip.to_string()])?;
        for commit in &commits {
            refused.insert(commit.clone());
            let root = view.run(
                &["rev-parse", "--verify", &format!("{commit}^{{tree}}")],
                None,
            )?;
            refused.insert(root.trim().to_string());
            let entries = view.run(
                &[
                    "--literal-pathspecs",
                    "ls-tree",
                    "-r",
                    "-t",
                    "--full-tree",
                    commit,
                    "--",
                    package,
                ],
                None,
            )?;
            for entry in entries.lines() {
                if let Some(oid) = entry.split_whitespace().nth(2) {
                    refused.insert(oid.to_string());
                }
            }
        }
    }
    if refused.is_empty() || live.is_empty() {
        return Ok(refused);
    }
    // Whatever a published tip or its proposal tip still holds stays served.
    let commits = approval_and_proposal(view, live)?;
    let objects = view.run(
        &["rev-list", "--objects", "--no-walk=unsorted", "--stdin"],
        Some(&lines(&commits)),
    )?;
    for line in objects.lines() {
        if let Some(oid) = line.split_whitespace().next() {
            refused.remove(oid);
        }
    }
    Ok(refused)
}

/// `tips` peeled to commits, and each one's parents other than the first
/// (an approval commit's proposal tip).
fn approval_and_proposal(
    view: &PublishedRepo,
    tips: &[String],
) -> Result<BTreeSet<String>, GitError> {
    let mut input = String::new();
    for tip in tips {
        input.push_str(tip);
        input.push('\n');
    }
    let listed = view.run(
        &["rev-list", "--no-walk=unsorted", "--parents", "--stdin"],
        Some(&input),
    )?;
    let mut commits = BTreeSet::new();
    for line in listed.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        commits.extend(
            words
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 1)
                .map(|(_, w)| w.to_string()),
        );
    }
    Ok(commits)
}

/// `--revs` input for git: every tip, and `^have` when the other side has it.
pub(super) fn revs_input(tips: &std::collections::BTreeSet<&str>, have: Option<&str>) -> String {
    let mut input = String::new();
    for tip in tips {
        input.push_str(tip);
        input.push('\n');
    }
    if let Some(have) = have {
        input.push_str(&format!("^{have}\n"));
    }
    input
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use crate::git::Repo;
    use crate::published::PublishedRepo;
    use crate::refs::Layout;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(dir)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A commit of a tree holding `file` = `text`, with `parents`.
    fn commit(dir: &Path, file: &str, text: &str, parents: &[&str]) -> String {
        let blob = {
            let mut child = Command::new("git")
                .arg("--git-dir")
                .arg(dir)
                .args(["hash-object", "-w", "--stdin"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("git");
            std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), text.as_bytes())
                .expect("write");
            let out = child.wait_with_output().expect("git");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let tree = {
            let mut child = Command::new("git")
                .arg("--git-dir")
                .arg(dir)
                .args(["mktree"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("git");
            std::io::Write::write_all(
                &mut child.stdin.take().expect("stdin"),
                format!("100644 blob {blob}\t{file}\n").as_bytes(),
            )
            .expect("write");
            let out = child.wait_with_output().expect("git");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let mut args = vec!["commit-tree", tree.as_str(), "-m", file];
        for parent in parents {
            args.extend(["-p", parent]);
        }
        git(dir, &args)
    }

    fn shallow(view: &Path) -> Vec<String> {
        std::fs::read_to_string(view.join("shallow"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn has(view: &Path, oid: &str) -> bool {
        Command::new("git")
            .arg("--git-dir")
            .arg(view)
            .args(["cat-file", "-e", oid])
            .status()
            .expect("git")
            .success()
    }

    #[test]
    fn proposal_tips_are_cut_only_when_they_hide_draft_history() {
        let temp = tempfile::tempdir().expect("tempdir");
        let authoring = temp.path().join("a.git");
        git(
            temp.path(),
            &["init", "-q", "--bare", authoring.to_str().expect("path")],
        );
        let view_dir = temp.path().join("v.git");
        let view = PublishedRepo::at(&view_dir);
        view.create("main").expect("create");
        let layout = Layout::new("main", "");
        let sync = || {
            view.sync(&Repo::open(&authoring).expect("open"), &layout, None)
                .expect("sync")
        };
        let base = commit(&authoring, "a", "base", &[]);
        git(&authoring, &["update-ref", "refs/heads/main", &base]);
        sync();
        assert!(shallow(&view_dir).is_empty());

        // A one-commit draft on the branch: nothing hidden, no cut.
        let p1 = commit(&authoring, "a", "one", &[&base]);
        let m1 = commit(&authoring, "a", "one", &[&base, &p1]);
        git(&authoring, &["update-ref", "refs/heads/main", &m1]);
        sync();
        assert!(shallow(&view_dir).is_empty());
        assert!(!view_dir.join("shallow").exists());

        // A proposal whose tip is an earlier branch commit (a draft with no
        // commit of its own): held whole already, no cut.
        let m2 = commit(&authoring, "a", "one", &[&m1, &base]);
        git(&authoring, &["update-ref", "refs/heads/main", &m2]);
        sync();
        assert!(shallow(&view_dir).is_empty());

        // Two commits: the first is draft history, cut off.
        let secret = commit(&authoring, "a", "secret", &[&m2]);
        let p3 = commit(&authoring, "a", "three", &[&secret]);
        let m3 = commit(&authoring, "a", "three", &[&m2, &p3]);
        git(&authoring, &["update-ref", "refs/heads/main", &m3]);
        git(&authoring, &["update-ref", "refs/tags/a/v1", &m3]);
        sync();
        assert_eq!(shallow(&view_dir), vec![p3.clone()]);
        assert!(has(&view_dir, &p3) && !has(&view_dir, &secret));
        git(&view_dir, &["fsck", "--no-progress"]);

        // An older layout (everything copied, no cut) is rebuilt and pruned.
        std::fs::remove_file(view_dir.join("shallow")).expect("shallow");
        std::fs::remove_file(view_dir.join(super::super::FORMAT)).expect("format");
        let pack = Command::new("git")
            .arg("--git-dir")
            .arg(&authoring)
            .args(["pack-objects", "--all", "--stdout", "-q"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("git");
        let mut index = Command::new("git")
            .arg("--git-dir")
            .arg(&view_dir)
            .args(["index-pack", "--stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("git");
        std::io::Write::write_all(&mut index.stdin.take().expect("stdin"), &pack.stdout)
            .expect("write");
        assert!(index.wait().expect("git").success());
        assert!(has(&view_dir, &secret));
        assert!(sync().rebuilt);
        assert_eq!(shallow(&view_dir), vec![p3.clone()]);
        assert!(!has(&view_dir, &secret));
        git(&view_dir, &["fsck", "--no-progress"]);
        assert!(!sync().rebuilt);
    }
}
