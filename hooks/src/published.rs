//! The published view's repository: a sibling bare repository that holds the
//! registered branch, `HEAD` and the `F/vN` tags — and only approved history:
//! the branch's first-parent chain, each approval commit and the proposal tip
//! it approved (its other parent, whose tree is the approved tree). The
//! sibling is a *shallow* repository whose `shallow` file lists every such
//! proposal tip that has draft history behind it, so that history
//! (intermediate drafts, files removed before proposing, other workspaces
//! merged in) is never copied and no request, not even a `want` by SHA, can
//! reach it (contract §8). The authoring layout is untouched: the same
//! commits, the same SHAs. See docs/published-view.md.
//!
//! The lifecycle keeps it current: after a push that changed the branch or a
//! tag is applied, the same hook run (still holding the repository's
//! lifecycle lock) copies the new objects over with `git pack-objects` and
//! moves the sibling's refs to match. When a published push returns, the view
//! already shows it. A full reconcile (on server start) repairs a sibling
//! left behind by a crash between the two steps.
//!
//! A deleted revision's commit stays in the branch's history, so it remains
//! reachable; it is recorded as *withdrawn* instead, with its proposal tip,
//! their root trees and the objects of its package that no published tip
//! still holds, and the server refuses a `want` of any of them, so a pin on
//! a deleted revision stops deploying. This is a deploy guard, not secrecy:
//! a clone of the branch's history still holds the deleted revision.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::git::{pack_refs, pack_refs_when_due, run_command, GitError, Repo};
use crate::refs::{Layout, RefKind};

mod approved;

/// The file in the sibling repository listing withdrawn objects (deleted
/// revisions' commits and what only they hold), one per line.
pub const WITHDRAWN: &str = "cadgate-withdrawn";

/// The file in the sibling repository holding its refs generation: a counter
/// bumped after every change of its refs, so a server that remembers answers
/// of the view knows when they are stale.
pub const GENERATION: &str = "cadgate-generation";

/// The file in the sibling repository that says it holds approved history
/// only (cut at each approved proposal tip). A sibling without it (written
/// by an older cadgate, which copied whole draft histories) is rebuilt by the
/// next sync: cut, repacked, and its unreachable objects pruned.
pub const FORMAT: &str = "cadgate-view-format";

/// A scratch file in the sibling: the cut handed to git's `--shallow-file`.
const CUT_FILE: &str = "cadgate-cut.tmp";

/// The content of [`FORMAT`] for the current layout of the sibling.
const FORMAT_VERSION: &str = "approved-history 1\n";

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
    /// The sibling was rebuilt: cut at the approved proposal tips, repacked
    /// and pruned (an older layout, or a cut that had to move).
    pub rebuilt: bool,
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
        self.run_at(&self.dir, None, args, input)
    }

    /// Run git in `git_dir`, its history cut at the commits listed in the
    /// file `cut` (git's `--shallow-file`) when given.
    fn run_at(
        &self,
        git_dir: &Path,
        cut: Option<&Path>,
        args: &[&str],
        input: Option<&str>,
    ) -> Result<String, GitError> {
        let mut command = self.git(git_dir);
        if let Some(cut) = cut {
            command.arg("--shallow-file").arg(cut);
        }
        command.args(args);
        run_command(command, &args.join(" "), git_dir, input.map(str::as_bytes))
    }

    /// Create the sibling if it does not exist and apply its settings, with
    /// `HEAD` naming `branch` (idempotent).
    pub fn create(&self, branch: &str) -> Result<(), GitError> {
        if !self.dir.join("HEAD").exists() {
            if let Some(parent) = self.dir.parent() {
                std::fs::create_dir_all(parent).map_err(|e| self.error("create", e))?;
            }
            let out = crate::process::GitCommand::new(&self.git)
                // No template: its sample hooks cost a start-up 14 file
                // copies a repository and are never run.
                .args(["init", "--bare", "--quiet", "--template="])
                .args(["--initial-branch", branch])
                .arg(&self.dir)
                .into_std()
                .output()
                .map_err(|e| self.error("init", e))?;
            if !out.status.success() {
                return Err(self.error("init", String::from_utf8_lossy(&out.stderr).trim()));
            }
            // Empty, so nothing leaked: it starts in the current layout.
            self.write_file(FORMAT, FORMAT_VERSION)?;
        }
        // Checked first, so a restart runs one git process here, not seven.
        crate::setup::apply_settings(&self.git, &self.dir, SETTINGS)?;
        crate::setup::point_head(&self.git, &self.dir, &format!("refs/heads/{branch}"))
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
        // A sibling of an older layout may hold draft history: the first
        // sync of any kind rebuilds it whole.
        let rebuild = !self.is_current_format();
        let names = if rebuild { None } else { names };
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
        let mut report = SyncReport {
            rebuilt: rebuild,
            ..SyncReport::default()
        };
        let tips: BTreeSet<&str> = wanted
            .iter()
            .filter(|(name, oid)| rebuild || current.get(*name) != Some(*oid))
            .map(|(_, oid)| oid.as_str())
            .collect();
        if !tips.is_empty() {
            let have = current
                .get(&layout.branch_ref())
                .filter(|_| !rebuild)
                .filter(|oid| authoring.peel(oid).ok().flatten().is_some());
            let old_cut = if rebuild {
                BTreeSet::new()
            } else {
                read_oids(&self.dir.join("shallow"))
            };
            let cut = approved::cut(
                self,
                authoring,
                &tips,
                have.map(String::as_str),
                &old_cut,
                !rebuild,
            )?;
            let Some(cut) = cut else {
                // The new history runs through a commit the sibling holds
                // cut from its parents: only a rebuild gets it right.
                self.remove_file(FORMAT)?;
                return self.sync(authoring, layout, None);
            };
            // The cut is written before the objects come: a sync killed
            // between the two must not leave a proposal tip held without its
            // cut, which the next sync would take for a whole commit.
            if rebuild || cut.len() != old_cut.len() {
                self.write_cut(&cut)?;
            }
            self.copy_objects(authoring, &tips, have.map(String::as_str), &cut)?;
        } else if rebuild {
            self.write_cut(&BTreeSet::new())?;
        }
        // Deleted revisions are withdrawn before their tags disappear, so
        // there is no moment at which they are fetchable by SHA but untagged.
        let gone: Vec<(&String, &String)> = current
            .iter()
            .filter(|(name, _)| !wanted.contains_key(*name))
            .collect();
        let mut withdrawn = self.withdrawn();
        let before = withdrawn.len();
        let deleted: Vec<(String, &str)> = gone
            .iter()
            .filter_map(|(name, oid)| match layout.classify(name) {
                RefKind::Published { package, .. } => {
                    Some((package.as_str().to_string(), oid.as_str()))
                }
                _ => None,
            })
            .collect();
        if !deleted.is_empty() {
            let live = self.live_tips(&wanted, &current, names.is_some())?;
            withdrawn.extend(approved::withdrawn(self, &deleted, &live)?);
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
        }
        if rebuild {
            self.prune()?;
            self.write_file(FORMAT, FORMAT_VERSION)?;
        }
        if rebuild || report.updated + report.removed > 0 {
            self.bump_generation()?;
            self.tidy(report.updated + report.removed)?;
        }
        Ok(report)
    }

    /// The tips still published once this sync is done: every served ref of
    /// the sibling after it (`partial`: only some names were read, so the
    /// sibling's other refs stay as they are).
    fn live_tips(
        &self,
        wanted: &BTreeMap<String, String>,
        current: &BTreeMap<String, String>,
        partial: bool,
    ) -> Result<Vec<String>, GitError> {
        let mut live: BTreeSet<String> = wanted.values().cloned().collect();
        if partial {
            for entry in Repo::open(&self.dir)?.refs_under(&["refs/"])? {
                if !current.contains_key(&entry.name) {
                    live.insert(entry.target);
                }
            }
        }
        Ok(live.into_iter().collect())
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
    /// authoring repository into the sibling, as one pack, the history cut
    /// at the commits of `cut`: their parents are not copied.
    fn copy_objects(
        &self,
        authoring: &Repo,
        tips: &BTreeSet<&str>,
        have: Option<&str>,
        cut: &BTreeSet<String>,
    ) -> Result<(), GitError> {
        let input = approved::revs_input(tips, have);
        let cut_file = self.cut_file(authoring, cut)?;
        let mut command = self.git(authoring.git_dir());
        if let Some(file) = &cut_file {
            command.arg("--shallow-file").arg(file);
        }
        let mut pack = command
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
        self.remove_file(CUT_FILE)?;
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

impl PublishedRepo {
    /// Whether the sibling is in the current layout (see [`FORMAT`]).
    fn is_current_format(&self) -> bool {
        std::fs::read_to_string(self.dir.join(FORMAT)).is_ok_and(|text| text == FORMAT_VERSION)
    }

    /// Write `name` in the sibling whole: a temporary file, synced, renamed.
    fn write_file(&self, name: &str, text: &str) -> Result<(), GitError> {
        write_whole(&self.dir.join(name), text).map_err(|e| self.error(name, e))
    }

    /// Make `cut` the sibling's shallow commits. None: no `shallow` file
    /// (an empty one would still make git treat the repository as shallow).
    fn write_cut(&self, cut: &BTreeSet<String>) -> Result<(), GitError> {
        if cut.is_empty() {
            self.remove_file("shallow")
        } else {
            self.write_file("shallow", &lines(cut))
        }
    }

    fn remove_file(&self, name: &str) -> Result<(), GitError> {
        match std::fs::remove_file(self.dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.error(name, e)),
            _ => Ok(()),
        }
    }

    /// A file listing `cut` and the authoring repository's own shallow
    /// commits (git reads one such file, so it must hold both), for git's
    /// `--shallow-file`; `None` when there are none.
    fn cut_file(
        &self,
        authoring: &Repo,
        cut: &BTreeSet<String>,
    ) -> Result<Option<PathBuf>, GitError> {
        let mut all = read_oids(&authoring.git_dir().join("shallow"));
        all.extend(cut.iter().cloned());
        if all.is_empty() {
            return Ok(None);
        }
        let path =
            std::path::absolute(self.dir.join(CUT_FILE)).map_err(|e| self.error("cut", e))?;
        write_whole(&path, &lines(&all)).map_err(|e| self.error("cut", e))?;
        Ok(Some(path))
    }

    /// Drop every object no served ref reaches through the cut history: the
    /// draft history an older layout copied in. The commit graph goes too
    /// (git does not use one in a shallow repository, and it named those
    /// commits).
    fn prune(&self) -> Result<(), GitError> {
        let info = self.dir.join("objects").join("info");
        let _ = std::fs::remove_file(info.join("commit-graph"));
        let _ = std::fs::remove_dir_all(info.join("commit-graphs"));
        self.run(&["repack", "-a", "-d", "-q", "--write-bitmap-index"], None)?;
        self.run(&["prune", "--expire=now"], None)?;
        Ok(())
    }
}

/// The object names listed one a line in the file at `path` (none when it
/// does not exist).
fn read_oids(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| l.len() == 40 && l.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string)
        .collect()
}

fn lines(oids: &BTreeSet<String>) -> String {
    let mut text = String::new();
    for oid in oids {
        text.push_str(oid);
        text.push('\n');
    }
    text
}

fn write_whole(path: &Path, text: &str) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".cadgate.tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
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

/// The withdrawn objects recorded in the sibling at `dir`: the commits of
/// deleted revisions and the objects only they hold.
pub fn read_withdrawn(dir: &Path) -> BTreeSet<String> {
    read_oids(&dir.join(WITHDRAWN))
}

fn write_withdrawn(dir: &Path, withdrawn: &BTreeSet<String>) -> std::io::Result<()> {
    write_whole(&dir.join(WITHDRAWN), &lines(withdrawn))
}
