//! Reading a repository through the `git` binary.
//!
//! Hooks run while pushed objects sit in git's quarantine directory; the git
//! binary honours `GIT_OBJECT_DIRECTORY` and `GIT_ALTERNATE_OBJECT_DIRECTORIES`
//! by itself, so reading through it sees exactly what the push would make
//! visible. Each call batches its work into one git process.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A git command failed.
#[derive(Debug, thiserror::Error)]
#[error("git {args} in {}: {detail}", git_dir.display())]
pub struct GitError {
    args: String,
    git_dir: PathBuf,
    detail: String,
}

/// One ref: its name, the object it points at, and the commit it peels to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefEntry {
    /// Full name, e.g. `refs/tags/basens/v1`.
    pub name: String,
    /// The object the ref points at (a tag object for annotated tags).
    pub target: String,
    /// The commit it peels to.
    pub commit: String,
}

/// What the listing needs of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// Author e-mail.
    pub author_email: String,
    /// Author time, seconds since the epoch.
    pub author_time: i64,
    /// The full message.
    pub message: String,
}

/// A repository read through git.
#[derive(Debug, Clone)]
pub struct Repo {
    git: PathBuf,
    git_dir: PathBuf,
}

impl Repo {
    /// The repository at `git_dir`, read with the `git` on PATH.
    pub fn open(git_dir: &Path) -> Self {
        Self::with_git(PathBuf::from("git"), git_dir)
    }

    /// The repository at `git_dir`, read with the given git binary.
    pub fn with_git(git: PathBuf, git_dir: &Path) -> Self {
        Self {
            git,
            git_dir: git_dir.to_path_buf(),
        }
    }

    fn run(&self, args: &[&str], input: Option<&[u8]>) -> Result<String, GitError> {
        self.run_with(args, input, &[])
    }

    fn run_with(
        &self,
        args: &[&str],
        input: Option<&[u8]>,
        env: &[(&str, &str)],
    ) -> Result<String, GitError> {
        let error = |detail: String| GitError {
            args: args.join(" "),
            git_dir: self.git_dir.clone(),
            detail,
        };
        let mut child = Command::new(&self.git)
            .arg("--git-dir")
            .arg(&self.git_dir)
            .args(args)
            .envs(env.iter().copied())
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| error(e.to_string()))?;
        if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(data).map_err(|e| error(e.to_string()))?;
        }
        let out = child.wait_with_output().map_err(|e| error(e.to_string()))?;
        if !out.status.success() {
            return Err(error(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Every branch and tag, peeled, and cadgate's audit notes ref.
    pub fn refs(&self) -> Result<Vec<RefEntry>, GitError> {
        let out = self.run(
            &[
                "for-each-ref",
                "--format=%(refname)%00%(objectname)%00%(*objectname)",
                "refs/heads",
                "refs/tags",
                crate::refs::NOTES,
            ],
            None,
        )?;
        Ok(out
            .lines()
            .filter_map(|line| {
                let mut parts = line.split('\0');
                let name = parts.next()?.to_string();
                let target = parts.next()?.to_string();
                let peeled = parts.next().unwrap_or("");
                let commit = if peeled.is_empty() {
                    target.clone()
                } else {
                    peeled.to_string()
                };
                Some(RefEntry {
                    name,
                    target,
                    commit,
                })
            })
            .collect())
    }

    /// For each `(commit, path)`, whether that path is a file in that commit.
    pub fn files_exist(&self, queries: &[(String, String)]) -> Result<Vec<bool>, GitError> {
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let mut input = String::new();
        for (commit, path) in queries {
            input.push_str(&format!("{commit}:{path}\n"));
        }
        let out = self.run(
            &["cat-file", "--batch-check=%(objecttype)"],
            Some(input.as_bytes()),
        )?;
        // One answer line per query: "blob", "tree", … or "<query> missing".
        Ok(out.lines().map(|l| l == "blob").collect())
    }

    /// Author and message of each commit, in the order asked.
    pub fn commit_infos(&self, commits: &[String]) -> Result<Vec<CommitInfo>, GitError> {
        if commits.is_empty() {
            return Ok(Vec::new());
        }
        let mut input = commits.join("\n");
        input.push('\n');
        let out = self.run(
            &[
                "log",
                "--no-walk=unsorted",
                "--stdin",
                "--format=%H%x00%ae%x00%at%x00%B%x1e",
            ],
            Some(input.as_bytes()),
        )?;
        let mut by_id = std::collections::HashMap::new();
        for record in out.split('\x1e') {
            let record = record.trim_start_matches('\n');
            let mut parts = record.splitn(4, '\0');
            if let (Some(id), Some(email), Some(time), Some(message)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            {
                by_id.insert(
                    id.to_string(),
                    CommitInfo {
                        author_email: email.to_string(),
                        author_time: time.trim().parse().unwrap_or(0),
                        message: message.to_string(),
                    },
                );
            }
        }
        Ok(commits
            .iter()
            .map(|c| {
                by_id.get(c).cloned().unwrap_or(CommitInfo {
                    author_email: String::new(),
                    author_time: 0,
                    message: String::new(),
                })
            })
            .collect())
    }
}

/// One compare-and-swap ref edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefEdit {
    /// Create `name` at `new`; fails if it exists.
    Create {
        /// Full ref name.
        name: String,
        /// New value.
        new: String,
    },
    /// Move `name` from `old` to `new`; fails if it is not at `old`.
    Update {
        /// Full ref name.
        name: String,
        /// New value.
        new: String,
        /// Expected current value.
        old: String,
    },
    /// Delete `name`; fails if it is not at `old`.
    Delete {
        /// Full ref name.
        name: String,
        /// Expected current value.
        old: String,
    },
}

impl Repo {
    /// Apply `edits` in one atomic transaction: every ref is locked and
    /// checked against its expected value, then all change or none do.
    pub fn update_refs(&self, edits: &[RefEdit], message: &str) -> Result<(), GitError> {
        if edits.is_empty() {
            return Ok(());
        }
        let mut script = String::from("start\n");
        for edit in edits {
            match edit {
                RefEdit::Create { name, new } => script.push_str(&format!("create {name} {new}\n")),
                RefEdit::Update { name, new, old } => {
                    script.push_str(&format!("update {name} {new} {old}\n"))
                }
                RefEdit::Delete { name, old } => script.push_str(&format!("delete {name} {old}\n")),
            }
        }
        script.push_str("prepare\ncommit\n");
        self.run(
            &["update-ref", "-m", message, "--stdin"],
            Some(script.as_bytes()),
        )
        .map(|_| ())
    }

    /// The merge base of two commits, if they share history.
    pub fn merge_base(&self, a: &str, b: &str) -> Result<Option<String>, GitError> {
        match self.run(&["merge-base", a, b], None) {
            Ok(out) => Ok(Some(out.trim().to_string())),
            // Exit 1 with no output: no common ancestor.
            Err(e) if e.detail.is_empty() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Paths that differ between two commits.
    pub fn changed_paths(&self, from: &str, to: &str) -> Result<Vec<String>, GitError> {
        let out = self.run(
            &[
                "diff-tree",
                "-r",
                "--no-renames",
                "--name-only",
                "-z",
                from,
                to,
            ],
            None,
        )?;
        Ok(out
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Every file path in a commit.
    pub fn files(&self, commit: &str) -> Result<Vec<String>, GitError> {
        let out = self.run(&["ls-tree", "-r", "--name-only", "-z", commit], None)?;
        Ok(out
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// The content of `path` in `commit`, if it is a file.
    pub fn read_file(&self, commit: &str, path: &str) -> Result<Option<String>, GitError> {
        if self
            .files_exist(&[(commit.to_string(), path.to_string())])?
            .first()
            != Some(&true)
        {
            return Ok(None);
        }
        self.run(&["cat-file", "blob", &format!("{commit}:{path}")], None)
            .map(Some)
    }
}

/// Who made a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Name.
    pub name: String,
    /// E-mail.
    pub email: String,
}

impl Repo {
    /// The id of the tree or blob at `path` in `commit`, if present.
    pub fn object_at(&self, commit: &str, path: &str) -> Result<Option<String>, GitError> {
        match self.run(
            &["rev-parse", "--verify", "-q", &format!("{commit}:{path}")],
            None,
        ) {
            Ok(out) => Ok(Some(out.trim().to_string())),
            Err(e) if e.detail.is_empty() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The commit an object (commit or annotated tag) peels to.
    pub fn peel(&self, object: &str) -> Result<Option<String>, GitError> {
        match self.run(
            &[
                "rev-parse",
                "--verify",
                "-q",
                &format!("{object}^{{commit}}"),
            ],
            None,
        ) {
            Ok(out) => Ok(Some(out.trim().to_string())),
            Err(e) if e.detail.is_empty() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Store `content` as a blob.
    pub fn write_blob(&self, content: &[u8]) -> Result<String, GitError> {
        Ok(self
            .run(&["hash-object", "-w", "--stdin"], Some(content))?
            .trim()
            .to_string())
    }

    /// The tree of `base` with the directory `package` replaced by the same
    /// directory of `source` (or removed when `source` is `None`).
    pub fn tree_with_package(
        &self,
        base: &str,
        package: &str,
        source: Option<&str>,
    ) -> Result<String, GitError> {
        let prefix = format!("{package}/");
        let mut entries = Vec::new();
        let listing = self.run(&["ls-tree", "-r", "-z", "--full-tree", base], None)?;
        for entry in listing.split('\0').filter(|e| !e.is_empty()) {
            let path = entry.split_once('\t').map(|(_, p)| p).unwrap_or("");
            if !path.starts_with(&prefix) {
                entries.push(entry.to_string());
            }
        }
        if let Some(source) = source {
            let listing = self.run(
                &["ls-tree", "-r", "-z", "--full-tree", source, "--", &prefix],
                None,
            )?;
            entries.extend(
                listing
                    .split('\0')
                    .filter(|e| !e.is_empty())
                    .map(str::to_string),
            );
        }
        self.write_tree(&entries)
    }

    /// Write a tree from `ls-tree -r -z`-style entries (`mode type oid\tpath`).
    pub fn write_tree(&self, entries: &[String]) -> Result<String, GitError> {
        let mut input = entries.join("\0");
        input.push('\0');
        let index = self.git_dir.join(format!(
            "cadgate-index-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let index_str = index.display().to_string();
        let env = [("GIT_INDEX_FILE", index_str.as_str())];
        let written = self
            .run_with(
                &["update-index", "-z", "--index-info"],
                Some(input.as_bytes()),
                &env,
            )
            .and_then(|_| self.run_with(&["write-tree"], None, &env));
        let _ = std::fs::remove_file(&index);
        Ok(written?.trim().to_string())
    }

    /// Every entry of a tree, recursively, as `mode type oid\tpath`.
    pub fn tree_entries(&self, tree_ish: &str) -> Result<Vec<String>, GitError> {
        let listing = self.run(&["ls-tree", "-r", "-z", "--full-tree", tree_ish], None)?;
        Ok(listing
            .split('\0')
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Write a commit; returns its id.
    pub fn commit_tree(
        &self,
        tree: &str,
        parents: &[&str],
        message: &str,
        author: &Signature,
    ) -> Result<String, GitError> {
        let mut args = vec!["commit-tree", tree];
        for parent in parents {
            args.push("-p");
            args.push(parent);
        }
        let env = [
            ("GIT_AUTHOR_NAME", author.name.as_str()),
            ("GIT_AUTHOR_EMAIL", author.email.as_str()),
            ("GIT_COMMITTER_NAME", "cadgate"),
            ("GIT_COMMITTER_EMAIL", "cadgate@localhost"),
        ];
        Ok(self
            .run_with(&args, Some(message.as_bytes()), &env)?
            .trim()
            .to_string())
    }
}

impl Repo {
    /// Files under `commit` named `file_name` whose content contains `text`.
    pub fn files_containing(
        &self,
        commit: &str,
        file_name: &str,
        text: &str,
    ) -> Result<Vec<String>, GitError> {
        let pattern = format!("*{file_name}");
        match self.run(
            &["grep", "-l", "-F", "-e", text, commit, "--", &pattern],
            None,
        ) {
            Ok(out) => Ok(out
                .lines()
                .filter_map(|l| l.split_once(':').map(|(_, p)| p.to_string()))
                .filter(|p| p == file_name || p.ends_with(&format!("/{file_name}")))
                .collect()),
            // Exit 1 without a message: nothing matched.
            Err(e) if e.detail.is_empty() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}
