//! Reading and writing a repository: objects and refs are read in process
//! with gix; ref transactions (and the rare full-tree search) go through the
//! `git` binary, so locking, reflogs and ref backends stay git's own.
//!
//! `proc-receive` runs after receive-pack has moved the pushed objects out of
//! quarantine, so a plain open of the repository sees them. Reads touch only
//! what a push names — the refs under a package's prefixes, the trees along
//! a package's path — so their cost does not grow with the number of packages.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::GitCommand;

use gix::bstr::{BString, ByteSlice};
use gix::objs::tree::{EntryKind, EntryMode};
use gix::ObjectId;

pub use crate::process::GitError;

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitInfo {
    /// Author e-mail.
    pub author_email: String,
    /// Author time, seconds since the epoch.
    pub author_time: i64,
    /// The full message.
    pub message: String,
}

/// Who made a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Name.
    pub name: String,
    /// E-mail.
    pub email: String,
}

/// A repository.
#[derive(Clone)]
pub struct Repo {
    git: PathBuf,
    git_dir: PathBuf,
    gix: gix::Repository,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo")
            .field("git_dir", &self.git_dir)
            .finish()
    }
}

/// One entry of a tree: name, mode, object.
type Entry = (BString, EntryMode, ObjectId);

impl Repo {
    /// The repository at `git_dir`, written to with the `git` on PATH.
    pub fn open(git_dir: &Path) -> Result<Self, GitError> {
        Self::with_git(PathBuf::from("git"), git_dir)
    }

    /// The repository at `git_dir`, written to with the given git binary.
    pub fn with_git(git: PathBuf, git_dir: &Path) -> Result<Self, GitError> {
        let mut gix = gix::open_opts(git_dir, gix::open::Options::isolated())
            .map_err(|e| GitError::new("open", git_dir, e))?;
        gix.object_cache_size_if_unset(4 << 20);
        Ok(Self {
            git,
            git_dir: git_dir.to_path_buf(),
            gix,
        })
    }

    /// The repository's directory.
    pub fn git_dir(&self) -> &Path {
        &self.git_dir
    }

    fn error(&self, what: &str, detail: impl std::fmt::Display) -> GitError {
        GitError::new(what, &self.git_dir, detail)
    }

    fn run(&self, args: &[&str], input: Option<&[u8]>) -> Result<String, GitError> {
        GitCommand::new(&self.git)
            .git_dir(&self.git_dir)
            .args(args)
            .run_with_input(input)
    }

    fn oid(&self, hex: &str) -> Result<ObjectId, GitError> {
        ObjectId::from_hex(hex.as_bytes()).map_err(|e| self.error(&format!("parse {hex:?}"), e))
    }

    // ---- refs ----------------------------------------------------------

    /// Every branch and tag, peeled, and cadgate's audit notes ref.
    pub fn refs(&self) -> Result<Vec<RefEntry>, GitError> {
        self.refs_under(&["refs/heads/", "refs/tags/", crate::refs::NOTES])
    }

    /// The refs named by `patterns`: a pattern ending in `/` is a prefix
    /// (every ref below it), any other is one exact ref name. Symbolic refs
    /// are skipped; a ref is listed once even when patterns overlap.
    pub fn refs_under(&self, patterns: &[&str]) -> Result<Vec<RefEntry>, GitError> {
        let mut out: Vec<RefEntry> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let platform = self
            .gix
            .references()
            .map_err(|e| self.error("read refs", e))?;
        for pattern in patterns {
            let mut found = Vec::new();
            if pattern.ends_with('/') {
                let iter = platform
                    .prefixed(pattern.as_bytes().as_bstr())
                    .map_err(|e| self.error(&format!("read refs {pattern}"), e))?;
                for reference in iter {
                    found.push(reference.map_err(|e| self.error("read refs", e))?);
                }
            } else if let Some(reference) = self
                .gix
                .try_find_reference(*pattern)
                .map_err(|e| self.error(&format!("read ref {pattern}"), e))?
            {
                found.push(reference);
            }
            for mut reference in found {
                let name = reference.name().as_bstr().to_string();
                let Some(target) = reference.target().try_id().map(|id| id.to_owned()) else {
                    continue;
                };
                if !seen.insert(name.clone()) {
                    continue;
                }
                let commit = reference
                    .peel_to_id()
                    .map(|id| id.detach())
                    .unwrap_or(target);
                out.push(RefEntry {
                    name,
                    target: target.to_string(),
                    commit: commit.to_string(),
                });
            }
        }
        Ok(out)
    }

    /// The refs named by `patterns` (as for [`Repo::refs_under`]) with the
    /// object each points at, unpeeled: no object is read, so this costs
    /// only the ref storage's own reading.
    pub fn ref_targets(&self, patterns: &[&str]) -> Result<Vec<(String, String)>, GitError> {
        let platform = self
            .gix
            .references()
            .map_err(|e| self.error("read refs", e))?;
        let mut out = Vec::new();
        for pattern in patterns {
            let iter = platform
                .prefixed(pattern.as_bytes().as_bstr())
                .map_err(|e| self.error(&format!("read refs {pattern}"), e))?;
            for reference in iter {
                let reference = reference.map_err(|e| self.error("read refs", e))?;
                if let Some(id) = reference.target().try_id() {
                    out.push((reference.name().as_bstr().to_string(), id.to_string()));
                }
            }
        }
        Ok(out)
    }

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
        )?;
        pack_refs_when_due(&self.git, &self.git_dir, edits.len())
    }

    // ---- commits -------------------------------------------------------

    /// The commit an object (commit or annotated tag) peels to, if present.
    pub fn peel(&self, object: &str) -> Result<Option<String>, GitError> {
        Ok(self.commit_id(object)?.map(|id| id.to_string()))
    }

    fn commit_id(&self, object: &str) -> Result<Option<ObjectId>, GitError> {
        let id = self.oid(object)?;
        let Some(found) = self
            .gix
            .try_find_object(id)
            .map_err(|e| self.error(&format!("read {object}"), e))?
        else {
            return Ok(None);
        };
        Ok(found.peel_to_commit().ok().map(|c| c.id))
    }

    fn tree_of(&self, commit: &str) -> Result<Option<ObjectId>, GitError> {
        let Some(id) = self.commit_id(commit)? else {
            return Ok(None);
        };
        let commit = self
            .gix
            .find_commit(id)
            .map_err(|e| self.error(&format!("read commit {id}"), e))?;
        Ok(Some(
            commit
                .tree_id()
                .map_err(|e| self.error(&format!("read commit {id}"), e))?
                .detach(),
        ))
    }

    /// The parents of `commit`, in order (empty when it is not a commit).
    pub fn parents(&self, commit: &str) -> Result<Vec<String>, GitError> {
        let Some(id) = self.commit_id(commit)? else {
            return Ok(Vec::new());
        };
        let commit = self
            .gix
            .find_commit(id)
            .map_err(|e| self.error(&format!("read commit {id}"), e))?;
        Ok(commit
            .parent_ids()
            .map(|p| p.detach().to_string())
            .collect())
    }

    /// Author and message of each commit, in the order asked; a commit that
    /// cannot be read gives an empty record.
    pub fn commit_infos(&self, commits: &[String]) -> Result<Vec<CommitInfo>, GitError> {
        Ok(commits
            .iter()
            .map(|c| {
                self.commit_info(c).unwrap_or(CommitInfo {
                    author_email: String::new(),
                    author_time: 0,
                    message: String::new(),
                })
            })
            .collect())
    }

    fn commit_info(&self, commit: &str) -> Option<CommitInfo> {
        let id = self.commit_id(commit).ok()??;
        let commit = self.gix.find_commit(id).ok()?;
        let author = commit.author().ok()?;
        Some(CommitInfo {
            author_email: author.email.to_string(),
            author_time: author.time().map(|t| t.seconds).unwrap_or(0),
            message: commit.message_raw_sloppy().to_string(),
        })
    }

    /// The merge base of two commits, if they share history.
    pub fn merge_base(&self, a: &str, b: &str) -> Result<Option<String>, GitError> {
        let (a, b) = (self.oid(a)?, self.oid(b)?);
        self.gix
            .merge_base(a, b)
            .map(|base| base.map(|id| id.to_string()))
            .map_err(|e| self.error(&format!("merge-base {a} {b}"), e))
    }

    /// Write a commit; returns its id. The committer is cadgate.
    pub fn commit_tree(
        &self,
        tree: &str,
        parents: &[&str],
        message: &str,
        author: &Signature,
    ) -> Result<String, GitError> {
        let time = gix::date::Time::now_local_or_utc();
        let commit = gix::objs::Commit {
            tree: self.oid(tree)?,
            parents: parents
                .iter()
                .map(|p| self.oid(p))
                .collect::<Result<_, _>>()?,
            author: gix::actor::Signature {
                name: author.name.as_str().into(),
                email: author.email.as_str().into(),
                time,
            },
            committer: gix::actor::Signature {
                name: "cadgate".into(),
                email: "cadgate@localhost".into(),
                time,
            },
            encoding: None,
            message: message.into(),
            extra_headers: Vec::new(),
        };
        self.gix
            .write_object(&commit)
            .map(|id| id.to_string())
            .map_err(|e| self.error("write commit", e))
    }

    // ---- trees and files -----------------------------------------------

    fn entries(&self, tree: ObjectId) -> Result<Vec<Entry>, GitError> {
        let found = self
            .gix
            .find_tree(tree)
            .map_err(|e| self.error(&format!("read tree {tree}"), e))?;
        let mut out = Vec::new();
        for entry in found.iter() {
            let entry = entry.map_err(|e| self.error(&format!("read tree {tree}"), e))?;
            out.push((entry.filename().to_owned(), entry.mode(), entry.object_id()));
        }
        Ok(out)
    }

    /// [`Repo::file_id`], looking big trees up through `index`: a listing
    /// asks for `F/Kptfile` in the same root tree of thousands of entries
    /// once per package, which a linear scan of the tree makes quadratic.
    pub fn file_id_with(
        &self,
        commit: &str,
        path: &str,
        index: &mut TreeIndex,
    ) -> Result<Option<String>, GitError> {
        let Some(mut id) = self.tree_of(commit)? else {
            return Ok(None);
        };
        let mut mode = EntryMode::from(EntryKind::Tree);
        for component in path.split('/').filter(|c| !c.is_empty()) {
            if !mode.is_tree() {
                return Ok(None);
            }
            let found = match index.trees.get(&id) {
                Some(entries) => entries.get(component.as_bytes()).copied(),
                None => {
                    let tree = self
                        .gix
                        .find_tree(id)
                        .map_err(|e| self.error(&format!("read tree {id}"), e))?;
                    if tree.data.len() < TreeIndex::BIG_TREE_BYTES {
                        tree.find_entry(component)
                            .map(|e| (e.mode(), e.object_id()))
                    } else {
                        let mut entries = HashMap::new();
                        for entry in tree.iter() {
                            let entry =
                                entry.map_err(|e| self.error(&format!("read tree {id}"), e))?;
                            entries.insert(
                                entry.filename().to_vec(),
                                (entry.mode(), entry.object_id()),
                            );
                        }
                        let found = entries.get(component.as_bytes()).copied();
                        index.insert(id, entries);
                        found
                    }
                }
            };
            let Some(next) = found else {
                return Ok(None);
            };
            (mode, id) = next;
        }
        Ok(mode.is_blob_or_symlink().then(|| id.to_string()))
    }

    /// Mode and id of whatever is at `path` in `commit` (`""`: its tree).
    fn entry_at(
        &self,
        commit: &str,
        path: &str,
    ) -> Result<Option<(EntryMode, ObjectId)>, GitError> {
        let Some(mut id) = self.tree_of(commit)? else {
            return Ok(None);
        };
        let mut mode = EntryMode::from(EntryKind::Tree);
        for component in path.split('/').filter(|c| !c.is_empty()) {
            if !mode.is_tree() {
                return Ok(None);
            }
            let tree = self
                .gix
                .find_tree(id)
                .map_err(|e| self.error(&format!("read tree {id}"), e))?;
            let Some(entry) = tree.find_entry(component) else {
                return Ok(None);
            };
            (mode, id) = (entry.mode(), entry.object_id());
        }
        Ok(Some((mode, id)))
    }

    /// For each `(commit, path)`, whether that path is a file in that commit.
    pub fn files_exist(&self, queries: &[(String, String)]) -> Result<Vec<bool>, GitError> {
        queries
            .iter()
            .map(|(commit, path)| {
                Ok(self
                    .entry_at(commit, path)?
                    .is_some_and(|(mode, _)| mode.is_blob_or_symlink()))
            })
            .collect()
    }

    /// The blob id of `path` in `commit`, if it is a file.
    pub fn file_id(&self, commit: &str, path: &str) -> Result<Option<String>, GitError> {
        Ok(self
            .entry_at(commit, path)?
            .filter(|(mode, _)| mode.is_blob_or_symlink())
            .map(|(_, id)| id.to_string()))
    }

    /// The content of the blob `id`, if the repository has it.
    pub fn read_blob(&self, id: &str) -> Result<Option<Vec<u8>>, GitError> {
        let oid = self.oid(id)?;
        match self.gix.try_find_object(oid) {
            Ok(Some(object)) if object.kind == gix::object::Kind::Blob => {
                Ok(Some(object.detach().data))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(self.error(&format!("read blob {id}"), e)),
        }
    }

    /// The content of `path` in `commit`, if it is a file.
    pub fn read_file(&self, commit: &str, path: &str) -> Result<Option<String>, GitError> {
        match self.entry_at(commit, path)? {
            Some((mode, id)) if mode.is_blob_or_symlink() => {
                let blob = self
                    .gix
                    .find_blob(id)
                    .map_err(|e| self.error(&format!("read {commit}:{path}"), e))?;
                Ok(Some(String::from_utf8_lossy(&blob.data).into_owned()))
            }
            _ => Ok(None),
        }
    }

    /// The id of the tree or blob at `path` in `commit` (`""`: its tree).
    pub fn object_at(&self, commit: &str, path: &str) -> Result<Option<String>, GitError> {
        Ok(self.entry_at(commit, path)?.map(|(_, id)| id.to_string()))
    }

    /// Every file below the directory `dir` of `commit` (`""`: the whole
    /// tree), as full paths.
    pub fn files_under(&self, commit: &str, dir: &str) -> Result<Vec<String>, GitError> {
        let mut out = Vec::new();
        if let Some((mode, id)) = self.entry_at(commit, dir)? {
            if mode.is_tree() {
                self.walk(id, dir.trim_end_matches('/'), &mut out)?;
            }
        }
        Ok(out)
    }

    /// The packages below the directory `dir` of `commit` (`""`: the whole
    /// tree), as Porch discovers them on a branch: a directory holding a
    /// file `Kptfile` is a package, and nothing below a package is looked at
    /// (porch pkg/externalrepo/git/package_tree.go `discoverPackages`, lines
    /// 146–187). `dir` itself is not a package of its own directory. Each
    /// package comes with its Kptfile's blob id. Subtrees already looked at
    /// are taken from `cache` (trees never change), so after a publish only
    /// the trees that changed are read.
    pub fn package_dirs(
        &self,
        commit: &str,
        dir: &str,
        cache: &mut PackageTrees,
    ) -> Result<Vec<(String, String)>, GitError> {
        let mut out = Vec::new();
        let dir = dir.trim_matches('/');
        if let Some((mode, id)) = self.entry_at(commit, dir)? {
            if mode.is_tree() {
                for (name, mode, id) in self.entries(id)? {
                    if mode.is_tree() {
                        let prefix = join(dir, &name.to_str_lossy());
                        for (below, blob) in self.packages_below(id, cache)?.iter() {
                            out.push((join(&prefix, below), blob.to_string()));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// The packages at or below `tree`, as (path relative to it, Kptfile
    /// blob): `tree` itself (path "") when it holds a `Kptfile`.
    fn packages_below(
        &self,
        tree: ObjectId,
        cache: &mut PackageTrees,
    ) -> Result<std::sync::Arc<Vec<(String, ObjectId)>>, GitError> {
        if let Some(found) = cache.trees.get(&tree) {
            return Ok(found.clone());
        }
        let entries = self.entries(tree)?;
        let kptfile = entries
            .iter()
            .find(|(name, mode, _)| name == "Kptfile" && mode.is_blob_or_symlink());
        let found = match kptfile {
            Some((_, _, blob)) => vec![(String::new(), *blob)],
            None => {
                let mut found = Vec::new();
                for (name, mode, id) in &entries {
                    if mode.is_tree() {
                        let name = name.to_str_lossy();
                        for (below, blob) in self.packages_below(*id, cache)?.iter() {
                            found.push((join(&name, below), *blob));
                        }
                    }
                }
                found
            }
        };
        let found = std::sync::Arc::new(found);
        cache.insert(tree, found.clone());
        Ok(found)
    }

    fn walk(&self, tree: ObjectId, prefix: &str, out: &mut Vec<String>) -> Result<(), GitError> {
        for (name, mode, id) in self.entries(tree)? {
            let path = join(prefix, &name.to_str_lossy());
            if mode.is_tree() {
                self.walk(id, &path, out)?;
            } else if mode.is_blob_or_symlink() {
                out.push(path);
            }
        }
        Ok(())
    }

    /// Files that differ between two commits, except below `except` (a
    /// directory path, `""` for none) — like `git diff-tree -r --name-only`
    /// but descending only into subtrees that differ.
    pub fn changes_outside(
        &self,
        from: &str,
        to: &str,
        except: &str,
    ) -> Result<Vec<String>, GitError> {
        let mut out = Vec::new();
        let (a, b) = (self.tree_of(from)?, self.tree_of(to)?);
        self.diff(a, b, "", except.trim_end_matches('/'), &mut out)?;
        Ok(out)
    }

    fn diff(
        &self,
        a: Option<ObjectId>,
        b: Option<ObjectId>,
        prefix: &str,
        except: &str,
        out: &mut Vec<String>,
    ) -> Result<(), GitError> {
        if a == b {
            return Ok(());
        }
        let load = |t: Option<ObjectId>| -> Result<Vec<Entry>, GitError> {
            t.map(|t| self.entries(t)).unwrap_or(Ok(Vec::new()))
        };
        let (left, right) = (load(a)?, load(b)?);
        let index = |side: &[Entry]| -> HashMap<BString, (EntryMode, ObjectId)> {
            side.iter()
                .map(|(name, mode, id)| (name.clone(), (*mode, *id)))
                .collect()
        };
        let (left_index, right_index) = (index(&left), index(&right));
        let names = left.iter().map(|e| &e.0).chain(
            right
                .iter()
                .map(|e| &e.0)
                .filter(|name| !left_index.contains_key(*name)),
        );
        for name in names {
            let (l, r) = (
                left_index.get(name).copied(),
                right_index.get(name).copied(),
            );
            if l == r {
                continue;
            }
            let path = join(prefix, &name.to_str_lossy());
            if !except.is_empty() && path == except {
                continue;
            }
            let subtree =
                |e: Option<(EntryMode, ObjectId)>| e.filter(|e| e.0.is_tree()).map(|e| e.1);
            let (lt, rt) = (subtree(l), subtree(r));
            if lt.is_some() || rt.is_some() {
                self.diff(lt, rt, &path, except, out)?;
            }
            let is_file = |e: Option<(EntryMode, ObjectId)>| e.is_some_and(|e| !e.0.is_tree());
            if is_file(l) || is_file(r) {
                out.push(path);
            }
        }
        Ok(())
    }

    /// Store `content` as a blob.
    pub fn write_blob(&self, content: &[u8]) -> Result<String, GitError> {
        self.gix
            .write_blob(content)
            .map(|id| id.to_string())
            .map_err(|e| self.error("write blob", e))
    }

    /// The tree of `base` with the directory `package` replaced by the same
    /// directory of `source` (or removed when `source` is `None`). Only the
    /// trees along `package`'s path are rewritten.
    pub fn tree_with_package(
        &self,
        base: &str,
        package: &str,
        source: Option<&str>,
    ) -> Result<String, GitError> {
        let mut editor = self
            .gix
            .edit_tree(self.root_of(base)?)
            .map_err(|e| self.error("edit tree", e))?;
        let edited = match source {
            Some(source) => match self.entry_at(source, package)? {
                Some((mode, id)) if mode.is_tree() => editor.upsert(package, EntryKind::Tree, id),
                _ => return Err(self.error(&format!("read {source}:{package}"), "not a directory")),
            },
            None => editor.remove(package),
        };
        edited.map_err(|e| self.error(&format!("edit {package}"), e))?;
        editor
            .write()
            .map(|id| id.to_string())
            .map_err(|e| self.error("write tree", e))
    }

    /// The tree of `base` (a commit; `None`: the empty tree) with each
    /// `(path, content)` file written.
    pub fn tree_with_files(
        &self,
        base: Option<&str>,
        files: &[(String, Vec<u8>)],
    ) -> Result<String, GitError> {
        let root = match base {
            Some(base) => self.root_of(base)?,
            None => ObjectId::empty_tree(self.gix.object_hash()),
        };
        self.edited_tree(root, None, files)
    }

    /// The tree of `base` (a commit) with the directory `dir` holding
    /// exactly `files` (paths relative to `dir`), whatever it held before.
    pub fn tree_with_directory(
        &self,
        base: &str,
        dir: &str,
        files: &[(String, Vec<u8>)],
    ) -> Result<String, GitError> {
        let files: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(path, content)| (format!("{dir}/{path}"), content.clone()))
            .collect();
        self.edited_tree(self.root_of(base)?, Some(dir), &files)
    }

    /// The root tree of the commit `base`.
    fn root_of(&self, base: &str) -> Result<ObjectId, GitError> {
        self.tree_of(base)?
            .ok_or_else(|| self.error(&format!("read {base}"), "no such commit"))
    }

    /// `root` with `remove` gone and each `(path, content)` file written;
    /// only the trees along the edited paths are rewritten.
    fn edited_tree(
        &self,
        root: ObjectId,
        remove: Option<&str>,
        files: &[(String, Vec<u8>)],
    ) -> Result<String, GitError> {
        let mut editor = self
            .gix
            .edit_tree(root)
            .map_err(|e| self.error("edit tree", e))?;
        if let Some(dir) = remove {
            editor
                .remove(dir)
                .map_err(|e| self.error(&format!("edit {dir}"), e))?;
        }
        for (path, content) in files {
            let blob = self.write_blob(content)?;
            editor
                .upsert(path.as_str(), EntryKind::Blob, self.oid(&blob)?)
                .map_err(|e| self.error(&format!("edit {path}"), e))?;
        }
        editor
            .write()
            .map(|id| id.to_string())
            .map_err(|e| self.error("write tree", e))
    }

    /// Files under `commit` named `file_name` whose content contains `text`
    /// (one `git grep` over the whole tree).
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
            Err(e) if e.detail().is_empty() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

/// Big trees, decoded into maps for many lookups (see
/// [`Repo::file_id_with`]). Bounded: past [`TreeIndex::MAX_ENTRIES`] it
/// starts over.
#[derive(Debug, Default)]
pub struct TreeIndex {
    trees: HashMap<ObjectId, HashMap<Vec<u8>, (EntryMode, ObjectId)>>,
    entries: usize,
}

impl TreeIndex {
    /// Trees smaller than this (in bytes, about 100 entries) are scanned.
    const BIG_TREE_BYTES: usize = 4096;
    /// Entries held over all trees.
    pub const MAX_ENTRIES: usize = 1_000_000;

    fn insert(&mut self, id: ObjectId, entries: HashMap<Vec<u8>, (EntryMode, ObjectId)>) {
        if self.entries + entries.len() > Self::MAX_ENTRIES {
            self.trees.clear();
            self.entries = 0;
        }
        self.entries += entries.len();
        self.trees.insert(id, entries);
    }
}

/// The packages found below trees, by tree id (see
/// [`Repo::package_dirs`]). Bounded: past [`PackageTrees::MAX_ENTRIES`]
/// packages it starts over.
#[derive(Debug, Default)]
pub struct PackageTrees {
    trees: HashMap<ObjectId, std::sync::Arc<Vec<(String, ObjectId)>>>,
    entries: usize,
}

impl PackageTrees {
    /// Packages held over all trees.
    pub const MAX_ENTRIES: usize = 1_000_000;

    fn insert(&mut self, id: ObjectId, found: std::sync::Arc<Vec<(String, ObjectId)>>) {
        if self.entries + found.len() + 1 > Self::MAX_ENTRIES {
            self.trees.clear();
            self.entries = 0;
        }
        self.entries += found.len() + 1;
        self.trees.insert(id, found);
    }
}

/// Loose ref writes after which a repository's refs are packed again.
///
/// Every ref cadgate writes lands as a loose file; git reads each of them on
/// every advertisement, so a thousand loose refs cost an upload-pack 15 ms
/// where the packed file costs 2.
pub const PACK_REFS_EVERY: usize = 64;

/// The file in a repository counting loose ref writes since the last packing.
const LOOSE_REFS: &str = "cadgate-loose-refs";

/// Count `written` loose ref writes in the repository at `git_dir` and pack
/// its refs (with `git`) once [`PACK_REFS_EVERY`] have piled up. Callers
/// hold the repository's lifecycle lock.
pub fn pack_refs_when_due(git: &Path, git_dir: &Path, written: usize) -> Result<(), GitError> {
    let counter = git_dir.join(LOOSE_REFS);
    let loose = std::fs::read_to_string(&counter)
        .ok()
        .and_then(|t| t.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .saturating_add(written);
    if loose >= PACK_REFS_EVERY {
        return pack_refs(git, git_dir);
    }
    std::fs::write(&counter, format!("{loose}\n"))
        .map_err(|e| GitError::new("count loose refs", git_dir, e))
}

/// Pack every ref of the repository at `git_dir` now (after a fetch or a
/// sync that may have written many).
pub fn pack_refs(git: &Path, git_dir: &Path) -> Result<(), GitError> {
    GitCommand::new(git)
        .git_dir(git_dir)
        .args(["pack-refs", "--all", "--prune"])
        .run()?;
    std::fs::write(git_dir.join(LOOSE_REFS), "0\n")
        .map_err(|e| GitError::new("count loose refs", git_dir, e))
}

/// Run a git `command` built by the caller (about `git_dir`, described as
/// `what`), feeding it `input`; its stdout, or its stderr as the error.
/// The command is rebuilt on [`GitCommand`]'s clean environment: only its
/// program, arguments and the variables it sets explicitly are kept.
pub(crate) fn run_command(
    command: Command,
    what: &str,
    git_dir: &Path,
    input: Option<&[u8]>,
) -> Result<String, GitError> {
    let mut clean = GitCommand::new(command.get_program()).args(command.get_args());
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            clean = clean.env(key, value);
        }
    }
    clean
        .run_with_input(input)
        .map_err(|e| GitError::new(what, git_dir, e.detail()))
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else if name.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

impl RefEdit {
    /// The full name of the ref it changes.
    pub fn name(&self) -> &str {
        match self {
            RefEdit::Create { name, .. }
            | RefEdit::Update { name, .. }
            | RefEdit::Delete { name, .. } => name,
        }
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
