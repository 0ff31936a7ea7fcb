//! Idempotent set-up of a repository, checked cheaply.
//!
//! The server prepares every registered repository (and its published view)
//! on each start. Nearly always the set-up is already done, so each step
//! first looks — one `git config --local --list` for all settings, `HEAD`
//! and `refs/` read as files — and runs git only for what is missing. A
//! restart with 1,000 repositories thus runs about two git processes per
//! repository instead of twenty (docs/limits.md, BENCHMARKS.md).

use std::path::Path;

use crate::git::{pack_refs, GitError};
use crate::process::GitCommand;

/// The settings of `wanted` that `listing` (the output of
/// `git config --local --list`) lacks or holds with another value. git lists
/// section and key names in lower case; the last value of a key wins.
pub fn missing_settings<'a>(
    listing: &str,
    wanted: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut current = std::collections::HashMap::new();
    for line in listing.lines() {
        if let Some((key, value)) = line.split_once('=') {
            current.insert(key.to_ascii_lowercase(), value);
        }
    }
    wanted
        .iter()
        .filter(|(key, value)| current.get(&key.to_ascii_lowercase()) != Some(value))
        .copied()
        .collect()
}

/// Give the repository at `git_dir` every setting of `wanted`: its config is
/// read once, and only what is missing or differs is written. Returns how
/// many settings were written.
///
/// Settings the config lacks altogether (a new repository: all of them) are
/// appended in one write, the way git writes its config: the new content
/// goes to `config.lock` (created exclusively, so never while git holds the
/// lock) and is renamed over `config`. A setting held with another value is
/// left to `git config`, and so is everything when the lock is taken.
pub fn apply_settings(
    git: &Path,
    git_dir: &Path,
    wanted: &[(&str, &str)],
) -> Result<usize, GitError> {
    // `--local`: the command's own `-c`-style settings (GIT_CONFIG_*) are
    // not the repository's.
    let listing = GitCommand::new(git)
        .git_dir(git_dir)
        .args(["config", "--local", "--list"])
        .run()?;
    let missing = missing_settings(&listing, wanted);
    let present: std::collections::HashSet<String> = listing
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_ascii_lowercase()))
        .collect();
    let (absent, mut by_git): (Vec<_>, Vec<_>) =
        missing.iter().copied().partition(|(key, value)| {
            !present.contains(&key.to_ascii_lowercase()) && plain(key, value)
        });
    if !absent.is_empty() && append_settings(git_dir, &absent).is_err() {
        by_git.extend(absent);
    }
    for (key, value) in &by_git {
        GitCommand::new(git)
            .git_dir(git_dir)
            .args(["config", key, value])
            .run()?;
    }
    Ok(missing.len())
}

/// `section.name` and a value of ASCII letters and digits only: written as
/// `[section]` and `name = value` without quoting.
fn plain(key: &str, value: &str) -> bool {
    let word = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric());
    word(value)
        && key
            .split_once('.')
            .is_some_and(|(section, name)| word(section) && word(name))
}

/// Append `settings` (all [`plain`]) to the repository's config under git's
/// lock protocol: `config.lock` created exclusively, written whole, renamed
/// over `config` (not synced: git does not sync its config either).
fn append_settings(git_dir: &Path, settings: &[(&str, &str)]) -> std::io::Result<()> {
    use std::io::Write as _;
    let config = git_dir.join("config");
    let lock = git_dir.join("config.lock");
    let mut text = std::fs::read(&config)?;
    if !text.is_empty() && !text.ends_with(b"\n") {
        text.push(b'\n');
    }
    for (key, value) in settings {
        if let Some((section, name)) = key.split_once('.') {
            text.extend_from_slice(format!("[{section}]\n\t{name} = {value}\n").as_bytes());
        }
    }
    let permissions = std::fs::metadata(&config)?.permissions();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&lock)?;
    let written = file
        .write_all(&text)
        .and_then(|()| std::fs::set_permissions(&lock, permissions))
        .and_then(|()| std::fs::rename(&lock, &config));
    if written.is_err() {
        let _ = std::fs::remove_file(&lock);
    }
    written
}

/// Point `HEAD` of the repository at `git_dir` at `branch_ref` unless it
/// already does. `HEAD` is read as the file git writes (`ref: <name>`);
/// anything else (another branch, a detached or reftable `HEAD`) is left to
/// `git symbolic-ref`.
pub fn point_head(git: &Path, git_dir: &Path, branch_ref: &str) -> Result<(), GitError> {
    let head = std::fs::read_to_string(git_dir.join("HEAD")).unwrap_or_default();
    if head.strip_prefix("ref: ").map(str::trim_end) == Some(branch_ref) {
        return Ok(());
    }
    GitCommand::new(git)
        .git_dir(git_dir)
        .args(["symbolic-ref", "HEAD", branch_ref])
        .run()
        .map(drop)
}

/// Pack the refs of the repository at `git_dir` when any loose ref file lies
/// under its `refs/` (written by an older server, a hook-mode host, or a
/// crash before the packing was due); otherwise there is nothing to pack.
/// Returns whether it packed.
pub fn pack_loose_refs(git: &Path, git_dir: &Path) -> Result<bool, GitError> {
    if !has_file(&git_dir.join("refs"), 0) {
        return Ok(false);
    }
    pack_refs(git, git_dir)?;
    Ok(true)
}

/// Whether any file (not a directory) lies below `dir`; ref names nest a
/// bounded depth, and deeper is taken as "yes" (pack to be safe).
fn has_file(dir: &Path, depth: usize) -> bool {
    if depth > 64 {
        return true;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| match entry.file_type() {
        Ok(kind) if kind.is_dir() => has_file(&entry.path(), depth + 1),
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_settings_compares_lower_case_keys_and_last_values() {
        let listing = "core.bare=true\ncore.logallrefupdates=always\nreceive.fsckobjects=false\nreceive.fsckobjects=true\nuploadpack.allowfilter=false\n";
        let wanted = [
            ("core.logAllRefUpdates", "always"),
            ("receive.fsckObjects", "true"),
            ("uploadpack.allowFilter", "true"),
            ("repack.writeBitmaps", "true"),
        ];
        assert_eq!(
            missing_settings(listing, &wanted),
            vec![
                ("uploadpack.allowFilter", "true"),
                ("repack.writeBitmaps", "true")
            ]
        );
        assert_eq!(missing_settings("", &wanted), wanted.to_vec());
    }

    #[test]
    fn set_up_runs_git_only_for_what_is_missing() {
        let dir = std::env::temp_dir().join(format!("cadgate-setup-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let git = Path::new("git");
        GitCommand::new(git)
            .args(["init", "--bare", "--quiet", "--initial-branch", "main"])
            .arg(&dir)
            .run()
            .unwrap();
        let wanted = [
            ("receive.autogc", "false"),
            ("gc.writeCommitGraph", "true"),
            ("core.logAllRefUpdates", "always"),
        ];
        GitCommand::new(git)
            .git_dir(&dir)
            .args(["config", "gc.writeCommitGraph", "false"])
            .run()
            .unwrap();
        assert_eq!(apply_settings(git, &dir, &wanted).unwrap(), 3);
        assert_eq!(apply_settings(git, &dir, &wanted).unwrap(), 0);
        // What git reads back: one value each, and the config still git's.
        for (key, value) in wanted {
            let read = GitCommand::new(git)
                .git_dir(&dir)
                .args(["config", "--local", "--get-all", key])
                .run()
                .unwrap();
            assert_eq!(read, format!("{value}\n"), "{key}");
        }
        assert!(!dir.join("config.lock").exists());
        // A config git holds locked is left to git, which says so.
        std::fs::write(dir.join("config.lock"), "").unwrap();
        let locked = apply_settings(git, &dir, &[("uploadpack.allowFilter", "true")]);
        assert!(locked.is_err(), "{locked:?}");
        std::fs::remove_file(dir.join("config.lock")).unwrap();
        point_head(git, &dir, "refs/heads/trunk").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("HEAD")).unwrap(),
            "ref: refs/heads/trunk\n"
        );
        assert!(!pack_loose_refs(git, &dir).unwrap());
        let tree = GitCommand::new(git)
            .git_dir(&dir)
            .args(["mktree"])
            .run_with_input(Some(b""))
            .unwrap();
        let commit = GitCommand::new(git)
            .git_dir(&dir)
            .args(["commit-tree", "-m", "x", tree.trim()])
            .env("GIT_AUTHOR_NAME", "a")
            .env("GIT_AUTHOR_EMAIL", "a@b")
            .env("GIT_COMMITTER_NAME", "a")
            .env("GIT_COMMITTER_EMAIL", "a@b")
            .run()
            .unwrap();
        GitCommand::new(git)
            .git_dir(&dir)
            .args(["update-ref", "refs/heads/trunk", commit.trim()])
            .run()
            .unwrap();
        assert!(pack_loose_refs(git, &dir).unwrap());
        assert!(!dir.join("refs/heads/trunk").exists());
        assert!(!pack_loose_refs(git, &dir).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
