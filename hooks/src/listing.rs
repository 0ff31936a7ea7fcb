//! Every package revision of a repository, straight from its refs: no
//! second store, so a push is visible in the very next listing.
//!
//! Discovery follows Porch: drafts and proposals come from their branches
//! and published revisions from `F/vN` tags, each only when its commit holds
//! `F/Kptfile`; a `deletionProposed/F/vN` branch (exactly that spelling)
//! marks its revision DeletionProposed.
//! Foreign tags and branches are ignored.
//!
//! [`placeholders`] adds what Porch lists besides: one placeholder revision
//! per package on the registered branch (revision −1, workspace = the
//! branch's name), which the API shows marked as such and which nothing
//! numbers, counts as latest or clones from.

use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::sync::{Arc, Mutex};

use crate::git::{GitError, Repo};
use crate::kptfile::{upstream_lock_of, UpstreamLock, KPTFILE};
use crate::refs::{Layout, PackagePath, RefKind};

/// Where a package revision is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lifecycle {
    /// Being edited.
    Draft,
    /// Waiting for approval.
    Proposed,
    /// Approved, with a revision number.
    Published,
    /// Published, and its deletion is proposed.
    DeletionProposed,
}

impl Lifecycle {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Draft => "Draft",
            Lifecycle::Proposed => "Proposed",
            Lifecycle::Published => "Published",
            Lifecycle::DeletionProposed => "DeletionProposed",
        }
    }
}

/// One package revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRevision {
    /// Full path `F` (with the repository directory).
    pub package: PackagePath,
    /// The workspace.
    pub workspace: String,
    /// N for published revisions, 0 for drafts and proposals.
    pub revision: u64,
    /// Its lifecycle.
    pub lifecycle: Lifecycle,
    /// The highest published (or deletion-proposed) revision of its package.
    pub latest: bool,
    /// The commit: the branch tip, or the tagged approval commit.
    pub commit: String,
    /// Author e-mail of the approval commit (published revisions).
    pub published_by: Option<String>,
    /// Author time of the approval commit, seconds since the epoch.
    pub published_at: Option<i64>,
    /// The `upstreamLock` of its `F/Kptfile`, when it has one.
    pub upstream_lock: Option<UpstreamLock>,
    /// Porch's placeholder revision of a package on the branch (revision −1
    /// for Porch; `revision` is 0 here and `latest` false): see
    /// [`placeholders`].
    pub placeholder: bool,
}

/// The workspace an approval commit's annotation names for `package`.
pub(crate) fn annotated_workspace(message: &str, package: &PackagePath) -> Option<String> {
    crate::annotation::Annotation::all_in(message)
        .into_iter()
        .find(|a| a.package == package.as_str() && !a.workspace_name.is_empty())
        .map(|a| a.workspace_name)
}

/// The workspaces of `package`'s published revisions (from the `kpt:`
/// annotation of each tagged commit, `vN` without one).
pub fn published_workspaces(
    repo: &Repo,
    layout: &Layout,
    package: &PackagePath,
    refs: &[(String, String)],
) -> Result<Vec<String>, GitError> {
    let tags: Vec<(u64, String)> = refs
        .iter()
        .filter_map(|(name, oid)| match layout.classify(name) {
            RefKind::Published {
                package: p,
                revision,
            } if p == *package => Some((revision, oid.clone())),
            _ => None,
        })
        .collect();
    let commits: Vec<String> = tags
        .iter()
        .map(|(_, oid)| repo.peel(oid).ok().flatten().unwrap_or_else(|| oid.clone()))
        .collect();
    let infos = repo.commit_infos(&commits)?;
    Ok(tags
        .iter()
        .zip(infos)
        .map(|((revision, _), info)| {
            annotated_workspace(&info.message, package).unwrap_or_else(|| format!("v{revision}"))
        })
        .collect())
}

/// Facts of one package revision that never change for a given commit and
/// package: read from objects once and remembered by a [`Memo`].
#[derive(Debug, Clone)]
struct Facts {
    /// `F/Kptfile` is a file in the commit.
    has_kptfile: bool,
    /// Its `upstreamLock`.
    upstream_lock: Option<UpstreamLock>,
    /// Author of the commit (the approval commit for a published revision).
    author_email: String,
    /// Author time, seconds since the epoch.
    author_time: i64,
    /// The workspace its `kpt:` annotation names for the package.
    annotated_workspace: Option<String>,
}

/// What listings have already read from immutable objects: which commit a
/// ref's object peels to, and each (commit, package)'s [`Facts`]. Objects
/// never change, so nothing here goes stale; refs are read afresh by every
/// listing, so a push is still visible in the very next one. Bounded: past
/// [`MEMO_ENTRIES`] it starts over, so memory stays flat.
#[derive(Debug, Default)]
pub struct Memo {
    inner: Mutex<MemoInner>,
}

#[derive(Debug, Default)]
struct MemoInner {
    peeled: FxHashMap<String, String>,
    /// By commit, then by package: looked up without allocating.
    facts: FxHashMap<String, FxHashMap<String, Arc<Facts>>>,
    facts_count: usize,
    trees: crate::git::TreeIndex,
    /// The packages below trees (for the placeholders of a branch).
    package_trees: crate::git::PackageTrees,
    /// The `upstreamLock` of a Kptfile, by its blob id.
    locks: FxHashMap<String, Option<UpstreamLock>>,
}

/// Entries a [`Memo`] holds before it starts over.
pub const MEMO_ENTRIES: usize = 1_000_000;

impl Memo {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemoInner> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.facts_count + inner.peeled.len() + inner.locks.len() > MEMO_ENTRIES {
            *inner = MemoInner::default();
        }
        inner
    }
}

impl MemoInner {
    fn peel(&mut self, repo: &Repo, target: &str) -> String {
        if let Some(commit) = self.peeled.get(target) {
            return commit.clone();
        }
        let commit = repo
            .peel(target)
            .ok()
            .flatten()
            .unwrap_or_else(|| target.to_string());
        self.peeled.insert(target.to_string(), commit.clone());
        commit
    }

    fn facts(
        &mut self,
        repo: &Repo,
        commit: &str,
        package: &PackagePath,
    ) -> Result<Arc<Facts>, GitError> {
        if let Some(facts) = self
            .facts
            .get(commit)
            .and_then(|by_package| by_package.get(package.as_str()))
        {
            return Ok(facts.clone());
        }
        let kptfile =
            repo.file_id_with(commit, &format!("{package}/{KPTFILE}"), &mut self.trees)?;
        let upstream_lock = match &kptfile {
            Some(blob) => repo
                .read_blob(blob)?
                .and_then(|data| upstream_lock_of(&String::from_utf8_lossy(&data))),
            None => None,
        };
        let info = repo
            .commit_infos(&[commit.to_string()])?
            .pop()
            .unwrap_or_default();
        let facts = Arc::new(Facts {
            has_kptfile: kptfile.is_some(),
            upstream_lock,
            annotated_workspace: annotated_workspace(&info.message, package),
            author_email: info.author_email,
            author_time: info.author_time,
        });
        self.facts
            .entry(commit.to_string())
            .or_default()
            .insert(package.as_str().to_string(), facts.clone());
        self.facts_count += 1;
        Ok(facts)
    }
}

impl MemoInner {
    /// The `upstreamLock` of the Kptfile blob `blob`, read once.
    fn lock_of(&mut self, repo: &Repo, blob: &str) -> Result<Option<UpstreamLock>, GitError> {
        if let Some(lock) = self.locks.get(blob) {
            return Ok(lock.clone());
        }
        let lock = repo
            .read_blob(blob)?
            .and_then(|data| upstream_lock_of(&String::from_utf8_lossy(&data)));
        self.locks.insert(blob.to_string(), lock.clone());
        Ok(lock)
    }
}

/// The refs a listing reads: every branch and tag, or with `package` only
/// the refs that can name its revisions (fast in a repository of thousands
/// of packages: packed refs are searched by prefix).
pub fn listing_patterns(package: Option<&PackagePath>) -> Vec<String> {
    match package {
        None => vec!["refs/heads/".into(), "refs/tags/".into()],
        Some(p) => vec![
            format!("{}{p}/", crate::refs::DRAFTS),
            format!("{}{p}/", crate::refs::PROPOSED),
            format!("refs/tags/{p}/"),
            format!("{}{p}/", crate::refs::DELETION_PROPOSED),
        ],
    }
}

/// [`listing_patterns`] plus the registered branch, which
/// [`placeholders`] read.
pub fn listing_patterns_with_branch(layout: &Layout, package: Option<&PackagePath>) -> Vec<String> {
    let mut patterns = listing_patterns(package);
    if package.is_some() {
        patterns.push(layout.branch_ref());
    }
    patterns
}

/// Porch's placeholder revisions among `refs` (which must hold the
/// registered branch): one per package the branch's tip holds below the
/// repository's directory, as Porch lists them
/// (porch pkg/externalrepo/git/git.go `listPackageRevisions` lines 374–453
/// and `discoverFinalizedPackages` lines 832–877; package_tree.go
/// `buildGitPackageRevision` lines 97–104: the revision of the branch name
/// is −1 and the workspace is the branch name): revision −1 (0 here, with
/// `placeholder` set), workspace = the branch's name, the branch tip's
/// commit, Published — or DeletionProposed while
/// `deletionProposed/F/<branch>` exists (git.go `checkPublishedLifecycle`,
/// lines 1700–1714). Never `latest`, never numbered.
pub fn placeholders(
    repo: &Repo,
    layout: &Layout,
    refs: &[(String, String)],
    memo: &Memo,
) -> Result<Vec<PackageRevision>, GitError> {
    let mut tip = None;
    let mut marked = std::collections::HashSet::new();
    for (name, target) in refs {
        match layout.classify(name) {
            RefKind::Branch => tip = Some(target.clone()),
            RefKind::PlaceholderDeletionProposed { package } => {
                marked.insert(package);
            }
            _ => {}
        }
    }
    let Some(tip) = tip else {
        return Ok(Vec::new());
    };
    let mut memo = memo.lock();
    let commit = memo.peel(repo, &tip);
    let on_branch = repo.package_dirs(&commit, layout.directory(), &mut memo.package_trees)?;
    let mut out = Vec::new();
    for (path, kptfile) in on_branch {
        let Some(package) = layout.package(&path) else {
            continue;
        };
        let upstream_lock = memo.lock_of(repo, &kptfile)?;
        let lifecycle = if marked.contains(&package) {
            Lifecycle::DeletionProposed
        } else {
            Lifecycle::Published
        };
        out.push(PackageRevision {
            package,
            workspace: layout.branch().to_string(),
            revision: 0,
            lifecycle,
            latest: false,
            commit: commit.clone(),
            published_by: None,
            published_at: None,
            upstream_lock,
            placeholder: true,
        });
    }
    Ok(out)
}

/// List every package revision of the repository.
pub fn list(repo: &Repo, layout: &Layout) -> Result<Vec<PackageRevision>, GitError> {
    let patterns = listing_patterns(None);
    let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
    let refs = repo.ref_targets(&patterns)?;
    list_refs(repo, layout, &refs, &Memo::default())
}

/// The package revisions `refs` (name, object) name, sorted by package,
/// revision, lifecycle and workspace; objects are read through `memo`.
pub fn list_refs(
    repo: &Repo,
    layout: &Layout,
    refs: &[(String, String)],
    memo: &Memo,
) -> Result<Vec<PackageRevision>, GitError> {
    let mut memo = memo.lock();
    let mut out = Vec::new();
    let mut tags = Vec::new();
    let mut deletion_proposed = std::collections::HashSet::new();
    for (name, target) in refs {
        match layout.classify(name) {
            RefKind::Draft { package, workspace } | RefKind::Proposed { package, workspace } => {
                let lifecycle = if name.starts_with(crate::refs::DRAFTS) {
                    Lifecycle::Draft
                } else {
                    Lifecycle::Proposed
                };
                let commit = memo.peel(repo, target);
                let facts = memo.facts(repo, &commit, &package)?;
                // As Porch (`pkg/externalrepo/git/git.go` 880–920 `loadDraft`,
                // 412–416): a draft or proposal whose commit has no
                // `F/Kptfile` is not a package revision.
                if !facts.has_kptfile {
                    continue;
                }
                out.push(PackageRevision {
                    package,
                    workspace,
                    revision: 0,
                    lifecycle,
                    latest: false,
                    commit,
                    published_by: None,
                    published_at: None,
                    upstream_lock: facts.upstream_lock.clone(),
                    placeholder: false,
                });
            }
            RefKind::Published { package, revision } => tags.push((package, revision, target)),
            // Only Porch's spelling `deletionProposed/F/vN` marks revision N
            // (`pkg/externalrepo/git/ref.go` 129–135, `git.go` 1700–1714);
            // `deletionProposed/F/7` or `…/v07` marks nothing.
            RefKind::DeletionProposed { package, revision }
                if *name == layout.deletion_proposed_ref(&package, revision) =>
            {
                deletion_proposed.insert((package, revision));
            }
            _ => {}
        }
    }
    let mut latest: HashMap<PackagePath, u64> = HashMap::new();
    let first_published = out.len();
    for (package, revision, target) in tags {
        let commit = memo.peel(repo, target);
        let facts = memo.facts(repo, &commit, &package)?;
        // A tag is a package revision only when its commit holds the package.
        if !facts.has_kptfile {
            continue;
        }
        let entry = latest.entry(package.clone()).or_insert(0);
        *entry = (*entry).max(revision);
        let lifecycle = if deletion_proposed.contains(&(package.clone(), revision)) {
            Lifecycle::DeletionProposed
        } else {
            Lifecycle::Published
        };
        out.push(PackageRevision {
            workspace: facts
                .annotated_workspace
                .clone()
                .unwrap_or_else(|| format!("v{revision}")),
            package,
            revision,
            lifecycle,
            latest: false,
            commit,
            published_by: Some(facts.author_email.clone()),
            published_at: Some(facts.author_time),
            upstream_lock: facts.upstream_lock.clone(),
            placeholder: false,
        });
    }
    for r in &mut out[first_published..] {
        r.latest = latest.get(&r.package) == Some(&r.revision);
    }
    out.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    Ok(out)
}

impl PackageRevision {
    /// The listing's order: package, revision, lifecycle, workspace.
    pub fn sort_key(&self) -> (&str, u64, Lifecycle, &str) {
        (
            self.package.as_str(),
            self.revision,
            self.lifecycle,
            &self.workspace,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::{PackageTrees, Signature};
    use crate::process::GitCommand;

    /// Porch's discovery (package_tree.go 146–187): a directory holding a
    /// `Kptfile` is a package and nothing below it is one; the directory
    /// itself is not; cached trees give the same answer.
    #[test]
    fn packages_on_the_branch_are_found_as_porch_finds_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("r.git");
        GitCommand::new(std::path::Path::new("git"))
            .args(["init", "--bare", "--quiet"])
            .arg(&path)
            .run()
            .expect("init");
        let repo = Repo::open(&path).expect("open");
        let file = |p: &str| (p.to_string(), b"kind: Kptfile\n".to_vec());
        let tree = repo
            .tree_with_files(
                None,
                &[
                    file("d/Kptfile"),
                    file("d/a/Kptfile"),
                    file("d/a/inner/Kptfile"),
                    file("d/b/c/Kptfile"),
                    ("d/b/readme".to_string(), b"x".to_vec()),
                    file("other/Kptfile"),
                ],
            )
            .expect("tree");
        let author = Signature {
            name: "t".into(),
            email: "t@example.com".into(),
        };
        let commit = repo
            .commit_tree(&tree, &[], "x\n", &author)
            .expect("commit");
        let mut cache = PackageTrees::default();
        let found = |cache: &mut PackageTrees, dir: &str| {
            let mut paths: Vec<String> = repo
                .package_dirs(&commit, dir, cache)
                .expect("walk")
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            paths.sort();
            paths
        };
        assert_eq!(found(&mut cache, "d"), ["d/a", "d/b/c"]);
        assert_eq!(found(&mut cache, "d"), ["d/a", "d/b/c"]);
        assert_eq!(found(&mut cache, ""), ["d", "other"]);
        assert!(found(&mut cache, "missing").is_empty());

        let layout = Layout::new("main", "d");
        let refs = vec![
            ("refs/heads/main".to_string(), commit.clone()),
            (
                "refs/heads/deletionProposed/d/b/c/main".to_string(),
                commit.clone(),
            ),
        ];
        let listed = placeholders(&repo, &layout, &refs, &Memo::default()).expect("listed");
        let shown: Vec<(&str, &str, Lifecycle, bool, bool)> = listed
            .iter()
            .map(|r| {
                (
                    r.package.as_str(),
                    r.workspace.as_str(),
                    r.lifecycle,
                    r.placeholder,
                    r.latest,
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("d/a", "main", Lifecycle::Published, true, false),
                ("d/b/c", "main", Lifecycle::DeletionProposed, true, false)
            ]
        );
    }
}
