//! The package rules of a draft: new package names, one package per draft,
//! no nesting, one workspace per revision.

use super::snapshot::Snapshot;
use super::{internal, package_of, refuse, Context};
use crate::git::{GitError, Repo};
use crate::kptfile::KPTFILE;
use crate::lifecycle::{Refs, Refusal};
use crate::refs::{Layout, PackagePath, RefKind, DELETION_PROPOSED, DRAFTS, PROPOSED, TAGS};

/// A draft that creates its ref starts a new workspace (a draft made
/// again from a proposal is a rejection, judged apart; reusing a published
/// revision's workspace is refused by [`check_draft`]): its name follows
/// Porch's rule for a new `workspaceName`
/// ([`cadgate_config::names::validate_workspace`]). Drafts and proposals
/// whose workspace exists already keep working whatever its name.
pub(super) fn check_new_workspace(workspace: &str) -> Result<(), Refusal> {
    cadgate_config::names::validate_workspace(workspace).map_err(|m| refuse("workspace-name", m))
}

/// A draft creating a package path that no lifecycle ref and no Kptfile on
/// the branch holds yet makes a new package: its path below the package
/// directory follows Porch's rule (every segment a DNS-1123 label), and its
/// API name (`repo.<path with / as .>.ws`) is no other package's. Packages
/// that already exist under other names (Porch's own repositories, older
/// pushes) keep working.
pub(super) fn check_new_package(
    repo: &Repo,
    context: &Context,
    snapshot: &Snapshot,
    package: &PackagePath,
) -> Result<(), Refusal> {
    use cadgate_config::names::{api_name_key, validate_new_package_path};
    let layout = &context.layout;
    let in_refs = snapshot
        .refs
        .keys()
        .any(|name| package_of(layout.classify(name)).as_ref() == Some(package));
    if in_refs {
        return Ok(());
    }
    if let Some(tip) = snapshot.get(&layout.branch_ref()) {
        let on_branch = repo
            .files_exist(&[(tip, format!("{package}/{KPTFILE}"))])
            .map_err(internal)?;
        if on_branch.first().copied().unwrap_or(false) {
            return Ok(());
        }
    }
    validate_new_package_path(layout.package_name(package))
        .map_err(|m| refuse("package-name", m))?;
    // New packages are rare: reading every lifecycle ref here is cheap
    // enough, and only this sees a collision.
    // The API names a package by its path below the directory, as Porch
    // does (porch pkg/util/util.go `ComposePkgRevObjName`).
    let key = api_name_key(layout.package_name(package));
    let every = repo
        .refs_under(&[DRAFTS, PROPOSED, TAGS, DELETION_PROPOSED])
        .map_err(internal)?;
    if let Some(other) = every
        .iter()
        .filter_map(|r| package_of(layout.classify(&r.name)))
        .find(|p| p != package && api_name_key(layout.package_name(p)) == key)
    {
        return Err(refuse(
            "api-name-is-unique",
            format!("package {package} would have the same API name as package {other} (both are {key} in revision names); pick another path"),
        ));
    }
    Ok(())
}

/// The package rules of a draft commit (contract §6, first row) besides its
/// Kptfile ([`check_kptfile`]).
pub(super) fn check_draft(
    repo: &Repo,
    context: &Context,
    snapshot: &Snapshot,
    package: &PackagePath,
    workspace: &str,
    commit: &str,
) -> Result<(), Refusal> {
    let layout = &context.layout;
    // Only the package changes, compared with where it left the branch.
    let branch = snapshot.get(&layout.branch_ref());
    let base = match &branch {
        Some(tip) => repo.merge_base(commit, tip).map_err(internal)?,
        None => None,
    };
    let base = base.ok_or_else(|| {
        refuse(
            "draft-based-on-branch",
            format!("the draft shares no history with {}; start it from there: git fetch origin && git checkout -b work origin/{}", layout.branch(), layout.branch()),
        )
    })?;
    let prefix = format!("{package}/");
    let outside = repo
        .changes_outside(&base, commit, package.as_str())
        .map_err(internal)?;
    if let Some(first) = outside.first() {
        return Err(refuse(
            "draft-changes-one-package",
            format!("a draft of {package} may change files under {prefix} only, but it changes {first}{}", if outside.len() > 1 { format!(" and {} more", outside.len() - 1) } else { String::new() }),
        ));
    }
    // Not inside or around another package (on the branch or in the draft).
    if let Some(other) = nesting_package(repo, layout, package, [branch.as_deref(), Some(commit)])
        .map_err(internal)?
    {
        return Err(refuse(
            "packages-do-not-nest",
            format!("{package} would nest with package {other}; a package may not contain another"),
        ));
    }
    // The workspace is the package's alone.
    let taken = snapshot
        .refs
        .keys()
        .any(|name| match layout.classify(name) {
            RefKind::Proposed {
                package: p,
                workspace: w,
            } => p == *package && w == workspace,
            _ => false,
        });
    let refs: Vec<(String, String)> = snapshot
        .refs
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let published = crate::listing::published_workspaces(repo, layout, package, &refs)
        .map_err(internal)?
        .iter()
        .any(|w| w == workspace);
    if taken || published {
        return Err(refuse(
            "workspace-is-unique",
            format!("workspace {workspace} of {package} is already used by a proposal or a published revision; pick another workspace name"),
        ));
    }
    Ok(())
}

/// A package that would contain `package` or lie inside it, in any of
/// `commits`: a `Kptfile` in a directory above it (inside the layout's
/// directory) or below it. Only the trees along and below the package's
/// path are read.
pub(super) fn nesting_package<'a>(
    repo: &Repo,
    layout: &Layout,
    package: &PackagePath,
    commits: impl IntoIterator<Item = Option<&'a str>>,
) -> Result<Option<PackagePath>, GitError> {
    let own = format!("{package}/{KPTFILE}");
    let ancestors: Vec<PackagePath> = package
        .as_str()
        .match_indices('/')
        .filter_map(|(i, _)| layout.package(&package.as_str()[..i]))
        .collect();
    for commit in commits.into_iter().flatten() {
        let queries: Vec<(String, String)> = ancestors
            .iter()
            .map(|a| (commit.to_string(), format!("{a}/{KPTFILE}")))
            .collect();
        let present = repo.files_exist(&queries)?;
        if let Some((ancestor, _)) = ancestors.iter().zip(present).find(|(_, p)| *p) {
            return Ok(Some(ancestor.clone()));
        }
        for path in repo.files_under(commit, package.as_str())? {
            if path == own {
                continue;
            }
            if let Some(inner) = path
                .strip_suffix("/Kptfile")
                .and_then(|d| layout.package(d))
            {
                return Ok(Some(inner));
            }
        }
    }
    Ok(None)
}
