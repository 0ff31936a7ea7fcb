//! The refs a push is judged against, read once before judging.

use std::collections::HashMap;

use super::refuse;
use crate::git::{GitError, Repo};
use crate::kptfile::KPTFILE;
use crate::lifecycle::{Refs, Refusal};
use crate::proc_receive::Command;
use crate::refs::{Layout, PackagePath, RefKind, DELETION_PROPOSED, DRAFTS, NOTES, PROPOSED, TAGS};

/// The refs as they were when the push was judged.
pub(super) struct Snapshot {
    pub(super) refs: HashMap<String, String>,
    layout: Layout,
}

impl Snapshot {
    /// The registered branch's tip; publishing and deleting need it.
    pub(super) fn branch_tip(&self) -> Result<String, Refusal> {
        let branch_ref = self.layout.branch_ref();
        self.get(&branch_ref).ok_or_else(|| {
            refuse(
                "branch-is-registered",
                format!("{branch_ref} does not exist"),
            )
        })
    }
}

impl Snapshot {
    /// Read the refs that judging `commands` can consult: the branch, the
    /// audit notes, every proposal (publishing looks one up by its tip), and
    /// the drafts, proposals, tags and deletion proposals of each package a
    /// command names — never the whole ref namespace, so judging costs the
    /// same in a repository of ten packages or ten thousand.
    pub(super) fn read(
        repo: &Repo,
        layout: &Layout,
        commands: &[Command],
    ) -> Result<Self, GitError> {
        let branch_ref = layout.branch_ref();
        let mut patterns = vec![branch_ref.clone(), NOTES.to_string(), PROPOSED.to_string()];
        let mut packages = Vec::new();
        for command in commands {
            match layout.classify(&command.refname) {
                RefKind::Draft { package, .. }
                | RefKind::Proposed { package, .. }
                | RefKind::Published { package, .. }
                | RefKind::DeletionProposed { package, .. }
                | RefKind::PlaceholderDeletionProposed { package } => packages.push(package),
                _ => {}
            }
        }
        let base = Self::from_refs(repo, layout, &patterns)?;
        // A push to the branch publishes the proposal at its new tip.
        for command in commands {
            if command.refname == branch_ref {
                let published = base.step_proposals(repo, &command.new);
                if published.is_empty() {
                    // Or deletes a package from the branch, Porch's way.
                    packages.extend(base.package_deletion(repo, &command.new));
                }
                packages.extend(published.into_iter().map(|(p, _, _)| p));
            }
        }
        packages.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        packages.dedup();
        if packages.is_empty() {
            return Ok(base);
        }
        for package in &packages {
            for namespace in [DRAFTS, PROPOSED, TAGS, DELETION_PROPOSED] {
                patterns.push(format!("{namespace}{package}/"));
            }
        }
        Self::from_refs(repo, layout, &patterns)
    }

    pub(super) fn from_refs(
        repo: &Repo,
        layout: &Layout,
        patterns: &[String],
    ) -> Result<Self, GitError> {
        let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
        Ok(Self {
            refs: repo
                .refs_under(&patterns)?
                .into_iter()
                .map(|r| (r.name, r.target))
                .collect(),
            layout: layout.clone(),
        })
    }
}

impl Snapshot {
    /// The proposals a push of `oid` to the branch publishes, as (package,
    /// workspace, proposal tip): those whose tip is `oid` (cadgate's form),
    /// or else those whose tip is the second parent of `oid` when `oid` is a
    /// two-parent merge (Porch's own approval commit,
    /// porch pkg/externalrepo/git/git.go `createApprovalCommit`/`PushAndPublish`).
    pub(super) fn step_proposals(
        &self,
        repo: &Repo,
        oid: &str,
    ) -> Vec<(PackagePath, String, String)> {
        let direct = self.proposals_at(oid);
        if !direct.is_empty() {
            return direct
                .into_iter()
                .map(|(p, w)| (p, w, oid.to_string()))
                .collect();
        }
        match repo.parents(oid).as_deref() {
            Ok([_, proposal]) => self
                .proposals_at(proposal)
                .into_iter()
                .map(|(p, w)| (p, w, proposal.clone()))
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl Snapshot {
    /// The package a push of `new` to the branch deletes, when `new` is Porch's
    /// `Delete F` commit: its only parent is the branch tip and its tree is the
    /// tip's tree without the package `F` (the top-most directory holding a
    /// `Kptfile`, as Porch discovers packages) — nothing else changed.
    pub(super) fn package_deletion(&self, repo: &Repo, new: &str) -> Option<PackagePath> {
        let tip = self.branch_tip().ok()?;
        if repo.parents(new).ok()?.as_slice() != [tip.clone()] {
            return None;
        }
        let changed = repo.changes_outside(&tip, new, "").ok()?;
        let first = changed.first()?;
        // The top-most directory of the first changed file that holds a
        // Kptfile on the branch.
        let segments: Vec<&str> = first.split('/').collect();
        let dirs: Vec<String> = (1..segments.len())
            .map(|n| segments[..n].join("/"))
            .collect();
        let queries: Vec<(String, String)> = dirs
            .iter()
            .map(|d| (tip.clone(), format!("{d}/{KPTFILE}")))
            .collect();
        let exists = repo.files_exist(&queries).ok()?;
        let dir = dirs
            .iter()
            .zip(exists)
            .find(|(_, exists)| *exists)
            .map(|(d, _)| d)?;
        let package = self.layout.package(dir)?;
        let removed = repo.tree_with_package(&tip, package.as_str(), None).ok()?;
        (repo.object_at(new, "").ok()?.as_deref() == Some(removed.as_str())).then_some(package)
    }
}

impl Snapshot {
    /// The published revisions of `package` the snapshot holds, as
    /// (revision, tag target), in no order: what publishing numbers after,
    /// what a deletion falls back to, what keeps a package on the branch.
    pub(super) fn published(&self, package: &PackagePath) -> Vec<(u64, String)> {
        self.refs
            .iter()
            .filter_map(|(name, oid)| match self.layout.classify(name) {
                RefKind::Published {
                    package: p,
                    revision,
                } if p == *package => Some((revision, oid.clone())),
                _ => None,
            })
            .collect()
    }
}

impl Refs for Snapshot {
    fn get(&self, name: &str) -> Option<String> {
        self.refs.get(name).cloned()
    }

    fn proposals_at(&self, oid: &str) -> Vec<(PackagePath, String)> {
        self.refs
            .iter()
            .filter(|(_, v)| v.as_str() == oid)
            .filter_map(|(k, _)| match self.layout.classify(k) {
                RefKind::Proposed { package, workspace } => Some((package, workspace)),
                _ => None,
            })
            .collect()
    }
}
