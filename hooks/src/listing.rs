//! Every package revision of a repository, straight from its refs: no
//! second store, so a push is visible in the very next listing.
//!
//! Discovery follows Porch: drafts and proposals come from their branches;
//! published revisions from `F/vN` tags whose commit holds `F/Kptfile`;
//! a `deletionProposed/F/vN` branch marks its revision DeletionProposed.
//! Foreign tags and branches are ignored.

use std::collections::HashMap;

use serde::Deserialize;

use crate::git::{GitError, Repo};
use crate::kptfile::KPTFILE;
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
}

/// Porch's `kpt:` annotation in commit messages.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Annotation {
    #[serde(default)]
    package: String,
    #[serde(default)]
    workspace_name: String,
}

/// The workspace an approval commit's annotation names for `package`.
pub(crate) fn annotated_workspace(message: &str, package: &PackagePath) -> Option<String> {
    message
        .lines()
        .filter_map(|l| l.trim().strip_prefix("kpt:"))
        .filter_map(|json| serde_json::from_str::<Annotation>(json).ok())
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

/// List every package revision of the repository.
pub fn list(repo: &Repo, layout: &Layout) -> Result<Vec<PackageRevision>, GitError> {
    let refs = repo.refs()?;
    let mut out = Vec::new();
    let mut tags = Vec::new();
    let mut deletion_proposed = std::collections::HashSet::new();
    for entry in &refs {
        match layout.classify(&entry.name) {
            RefKind::Draft { package, workspace } | RefKind::Proposed { package, workspace } => {
                let lifecycle = if entry.name.starts_with(crate::refs::DRAFTS) {
                    Lifecycle::Draft
                } else {
                    Lifecycle::Proposed
                };
                out.push(PackageRevision {
                    package,
                    workspace,
                    revision: 0,
                    lifecycle,
                    latest: false,
                    commit: entry.commit.clone(),
                    published_by: None,
                    published_at: None,
                });
            }
            RefKind::Published { package, revision } => {
                tags.push((package, revision, entry.commit.clone()))
            }
            RefKind::DeletionProposed { package, revision } => {
                deletion_proposed.insert((package, revision));
            }
            _ => {}
        }
    }
    // A tag is a package revision only when its commit holds the package.
    let queries: Vec<(String, String)> = tags
        .iter()
        .map(|(p, _, c)| (c.clone(), format!("{p}/{KPTFILE}")))
        .collect();
    let present = repo.files_exist(&queries)?;
    let tags: Vec<_> = tags
        .into_iter()
        .zip(present)
        .filter_map(|(tag, ok)| ok.then_some(tag))
        .collect();
    let commits: Vec<String> = tags.iter().map(|(_, _, c)| c.clone()).collect();
    let infos = repo.commit_infos(&commits)?;
    let mut latest: HashMap<PackagePath, u64> = HashMap::new();
    for ((package, revision, commit), info) in tags.into_iter().zip(infos) {
        let entry = latest.entry(package.clone()).or_insert(0);
        *entry = (*entry).max(revision);
        let lifecycle = if deletion_proposed.contains(&(package.clone(), revision)) {
            Lifecycle::DeletionProposed
        } else {
            Lifecycle::Published
        };
        let workspace =
            annotated_workspace(&info.message, &package).unwrap_or_else(|| format!("v{revision}"));
        out.push(PackageRevision {
            package,
            workspace,
            revision,
            lifecycle,
            latest: false,
            commit,
            published_by: Some(info.author_email),
            published_at: Some(info.author_time),
        });
    }
    for r in &mut out {
        r.latest = r.revision > 0 && latest.get(&r.package) == Some(&r.revision);
    }
    out.sort_by(|a, b| {
        (a.package.as_str(), a.revision, a.lifecycle, &a.workspace).cmp(&(
            b.package.as_str(),
            b.revision,
            b.lifecycle,
            &b.workspace,
        ))
    });
    Ok(out)
}
