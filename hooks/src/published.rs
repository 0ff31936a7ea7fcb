//! The published view's repository: a sibling bare repository that holds the
//! registered branch, `HEAD` and the `F/vN` tags — and only the objects
//! reachable from them. Drafts and proposals never enter it, so no request,
//! not even a `want` by SHA, can reach them there (contract §8).
//!
//! The lifecycle keeps it current: after a push that changed the branch or a
//! tag is applied, the same hook run (still holding the repository's
//! lifecycle lock) copies the new objects over with `git pack-objects` and
//! moves the sibling's refs to match. When a published push returns, the view
//! already shows it. A full reconcile (on server start) repairs a sibling
//! left behind by a crash between the two steps.
//!
//! A deleted revision's commit stays in the branch's history, so it remains
//! reachable; it is recorded as *withdrawn* instead, and the server refuses
//! a `want` of it, so a pin on a deleted revision stops deploying.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::git::{pack_refs, pack_refs_when_due, run_command, GitError, Repo};
use crate::refs::{Layout, RefKind};

/// The file in the sibling repository listing withdrawn commits, one per line.
pub const WITHDRAWN: &str = "cadgate-withdrawn";

/// The file in the sibling repository holding its refs generation: a counter
/// bumped after every change of its refs, so a server that remembers answers
/// of the view knows when they are stale.
pub const GENERATION: &str = "cadgate-generation";

/// Settings of the sibling repository.
const SETTINGS: &[(&str, &str)] = &[
    // Protocol v0 may fetch any reachable commit by SHA (SHA pins).
    ("uploadpack.allowReachableSHA1InWant", "true"),
    ("uploadpack.allowFilter", "true"),
    ("repack.writeBitmaps", "true"),
    ("pack.writeBitmapHashCache", "true"),
    ("gc.writeCommitGraph", "true"),
    ("core.logAllRefUpdates", "false"),
];

/// The published-only sibling of an authoring repository.
#[derive(Debug, Clone)]
pub struct PublishedRepo {
    dir: PathBuf,
    git: PathBuf,
}

/// What a sync changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Refs created or moved.
    pub updated: usize,
    /// Refs removed.
    pub removed: usize,
}

impl PublishedRepo {
    /// The sibling at `dir`, written with the `git` on PATH.
    pub fn at(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            git: PathBuf::from("git"),
        }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn error(&self, what: &str, detail: impl std::fmt::Display) -> GitError {
        GitError::new(what, &self.dir, detail)
    }

    fn git(&self, git_dir: &Path) -> Command {
        let mut command = crate::process::GitCommand::new(&self.git)
            .git_dir(git_dir)
            .into_std();
        command
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("GIT_OBJECT_DIRECTORY")
            .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
            .env_remove("GIT_QUARANTINE_PATH")
            .env_remove("GIT_DIR")
            .stderr(Stdio::piped());
        command
    }

    fn run(&self, args: &[&str], input: Option<&str>) -> Result<String, GitError> {
        let mut command = self.git(&self.dir);
        command.args(args);
        run_command(
            command,
            &args.join(" "),
            &self.dir,
            input.map(str::as_bytes),
        )
    }

    /// Create the sibling if it does not exist and apply its settings, with
    /// `HEAD` naming `branch` (idempotent).
    pub fn create(&self, branch: &str) -> Result<(), GitError> {
        if !self.dir.join("HEAD").exists() {
            if let Some(parent) = self.dir.parent() {
                std::fs::create_dir_all(parent).map_err(|e| self.error("create", e))?;
            }
            let out = crate::process::GitCommand::new(&self.git)
                .args(["init", "--bare", "--quiet", "--initial-branch", branch])
                .arg(&self.dir)
                .into_std()
                .output()
                .map_err(|e| self.error("init", e))?;
            if !out.status.success() {
                return Err(self.error("init", String::from_utf8_lossy(&out.stderr).trim()));
            }
        }
        for (key, value) in SETTINGS {
            self.run(&["config", key, value], None)?;
        }
        self.run(
            &["symbolic-ref", "HEAD", &format!("refs/heads/{branch}")],
            None,
        )?;
        Ok(())
    }

    /// The commits a `want` may not name: deleted revisions.
    pub fn withdrawn(&self) -> BTreeSet<String> {
        read_withdrawn(&self.dir)
    }

    /// Make the sibling's refs named in `names` (full ref names; `None`:
    /// every published ref of either side) match the authoring repository,
    /// copying the objects they need first.
    pub fn sync(
        &self,
        authoring: &Repo,
        layout: &Layout,
        names: Option<&[String]>,
    ) -> Result<SyncReport, GitError> {
        let served = |name: &str| {
            matches!(
                layout.classify(name),
                RefKind::Branch | RefKind::Published { .. }
            )
        };
        let sibling = Repo::open(&self.dir)?;
        let (wanted, current): (BTreeMap<String, String>, BTreeMap<String, String>) = match names {
            Some(names) => {
                let names: Vec<&str> = names
                    .iter()
                    .map(String::as_str)
                    .filter(|n| served(n))
                    .collect();
                (
                    as_map(authoring.refs_under(&names)?),
                    as_map(sibling.refs_under(&names)?),
                )
            }
            None => (
                as_map(
                    authoring
                        .refs_under(&["refs/heads/", "refs/tags/"])?
                        .into_iter()
                        .filter(|r| served(&r.name))
                        .collect(),
                ),
                as_map(sibling.refs_under(&["refs/"])?),
            ),
        };
        let mut report = SyncReport::default();
        let tips: Vec<&String> = wanted
            .iter()
            .filter(|(name, oid)| current.get(*name) != Some(*oid))
            .map(|(_, oid)| oid)
            .collect();
        if !tips.is_empty() {
            let have = current
                .get(&layout.branch_ref())
                .filter(|oid| authoring.peel(oid).ok().flatten().is_some());
            self.copy_objects(authoring, &tips, have.map(String::as_str))?;
        }
        // Deleted revisions are withdrawn before their tags disappear, so
        // there is no moment at which they are fetchable by SHA but untagged.
        let gone: Vec<(&String, &String)> = current
            .iter()
            .filter(|(name, _)| !wanted.contains_key(*name))
            .collect();
        let mut withdrawn = self.withdrawn();
        let before = withdrawn.len();
        for (name, oid) in &gone {
            if matches!(layout.classify(name), RefKind::Published { .. }) {
                withdrawn.insert((*oid).clone());
            }
        }
        // A commit published again (never in practice: approval commits are
        // unique) is no longer withdrawn.
        for oid in wanted.values() {
            withdrawn.remove(oid);
        }
        if withdrawn.len() != before || !gone.is_empty() {
            write_withdrawn(&self.dir, &withdrawn).map_err(|e| self.error("withdraw", e))?;
        }
        let mut script = String::from("start\n");
        for (name, oid) in &wanted {
            match current.get(name) {
                Some(old) if old == oid => {}
                Some(old) => {
                    script.push_str(&format!("update {name} {oid} {old}\n"));
                    report.updated += 1;
                }
                None => {
                    script.push_str(&format!("create {name} {oid}\n"));
                    report.updated += 1;
                }
            }
        }
        for (name, oid) in gone {
            script.push_str(&format!("delete {name} {oid}\n"));
            report.removed += 1;
        }
        if report.updated + report.removed > 0 {
            script.push_str("prepare\ncommit\n");
            self.run(
                &["update-ref", "-m", "cadgate: published", "--stdin"],
                Some(&script),
            )?;
            self.bump_generation()?;
            self.tidy(report.updated + report.removed)?;
        }
        Ok(report)
    }

    /// The current refs generation (0 before the first sync).
    pub fn generation(&self) -> u64 {
        read_generation(&self.dir)
    }

    fn bump_generation(&self) -> Result<(), GitError> {
        let next = self.generation() + 1;
        let temporary = self.dir.join(format!("{GENERATION}.tmp"));
        std::fs::write(&temporary, format!("{next}\n"))
            .and_then(|()| std::fs::rename(&temporary, self.dir.join(GENERATION)))
            .map_err(|e| self.error("bump the generation", e))
    }

    /// Keep what the pollers read in shape after `changed` ref updates:
    /// `gc --auto` repacks (with bitmaps and the commit graph) once packs
    /// pile up, and refs are packed as [`pack_refs_when_due`] rules, so a
    /// listing never walks thousands of loose ref files.
    fn tidy(&self, changed: usize) -> Result<(), GitError> {
        self.run(
            &["-c", "gc.autoDetach=false", "gc", "--auto", "--quiet"],
            None,
        )?;
        pack_refs_when_due(&self.git, &self.dir, changed)
    }

    /// Full maintenance: one pack with a reachability bitmap, the commit
    /// graph, packed refs. For after a large sync (a server's first start).
    pub fn maintain(&self) -> Result<(), GitError> {
        self.run(&["repack", "-a", "-d", "-q", "--write-bitmap-index"], None)?;
        self.run(&["commit-graph", "write", "--reachable"], None)?;
        pack_refs(&self.git, &self.dir)
    }

    /// Copy every object reachable from `tips` but not from `have` from the
    /// authoring repository into the sibling, as one pack.
    fn copy_objects(
        &self,
        authoring: &Repo,
        tips: &[&String],
        have: Option<&str>,
    ) -> Result<(), GitError> {
        let mut input = String::new();
        for tip in tips {
            input.push_str(tip);
            input.push('\n');
        }
        if let Some(have) = have {
            input.push_str(&format!("^{have}\n"));
        }
        let mut pack = self
            .git(authoring.git_dir())
            .args([
                "pack-objects",
                "--revs",
                "--stdout",
                "-q",
                "--delta-base-offset",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| self.error("pack-objects", e))?;
        let stdout = pack
            .stdout
            .take()
            .ok_or_else(|| self.error("pack-objects", "no output"))?;
        let index = self
            .git(&self.dir)
            .args(["index-pack", "--stdin"])
            .stdin(Stdio::from(stdout))
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| self.error("index-pack", e))?;
        if let Some(mut stdin) = pack.stdin.take() {
            stdin
                .write_all(input.as_bytes())
                .map_err(|e| self.error("pack-objects", e))?;
        }
        let packed = pack
            .wait_with_output()
            .map_err(|e| self.error("pack-objects", e))?;
        let indexed = index
            .wait_with_output()
            .map_err(|e| self.error("index-pack", e))?;
        if !packed.status.success() {
            return Err(self.error(
                "pack-objects",
                String::from_utf8_lossy(&packed.stderr).trim(),
            ));
        }
        if !indexed.status.success() {
            return Err(self.error(
                "index-pack",
                String::from_utf8_lossy(&indexed.stderr).trim(),
            ));
        }
        Ok(())
    }
}

fn as_map(refs: Vec<crate::git::RefEntry>) -> BTreeMap<String, String> {
    refs.into_iter().map(|r| (r.name, r.target)).collect()
}

/// The refs generation of the sibling at `dir` (0 when never synced).
pub fn read_generation(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join(GENERATION))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// The withdrawn commits recorded in the sibling at `dir`.
pub fn read_withdrawn(dir: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(dir.join(WITHDRAWN))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| l.len() == 40 && l.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string)
        .collect()
}

fn write_withdrawn(dir: &Path, withdrawn: &BTreeSet<String>) -> std::io::Result<()> {
    let temporary = dir.join(format!("{WITHDRAWN}.tmp"));
    let mut text = String::new();
    for oid in withdrawn {
        text.push_str(oid);
        text.push('\n');
    }
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, dir.join(WITHDRAWN))
}
