//! Deleting a package from the branch, Porch's way: Porch lists a
//! placeholder revision of every package on the branch (revision −1,
//! workspace = the branch's name) and deletes it in two steps
//! (porch pkg/externalrepo/git/git.go):
//!
//! 1. propose: `deletionProposed/F/B` at the placeholder's commit, the
//!    branch tip Porch listed (`UpdateLifecycle`, lines 1741–1748; the name
//!    from ref.go `createDeletionProposedName`, lines 129–135);
//! 2. delete: one push of a `Delete F` commit on `B` — child of the tip, the
//!    tip's tree without `F` (`createPackageDeleteCommitInRepo`, lines
//!    1318–1365, pushed by `executeCommitOperations`, lines 1386–1398) — and
//!    the deletion of `deletionProposed/F/B` (`DeletePackageRevision`,
//!    lines 638–641; Porch's API requires the proposal first:
//!    pkg/registry/porch/packagecommon.go lines 447–455).
//!
//! cadgate accepts both as lifecycle steps with the roles of a revision's
//! deletion (propose: author; delete or reject: approver), and keeps its
//! own rules: the branch holds every package's latest published revision
//! (contract §5), so a package that still has published revisions is not
//! removed this way (deleting its last revision removes it), and no package
//! whose `upstreamLock` follows the branch at `F` loses its upstream.

use super::snapshot::Snapshot;
use super::{internal, refuse, Context, Downstream, Plan};
use crate::audit;
use crate::events::EventKind;
use crate::git::{RefEdit, Repo};
use crate::kptfile::{upstream_lock_of, KPTFILE};
use crate::lifecycle::{Refs, Refusal};
use crate::proc_receive::Command;
use crate::refs::{Layout, PackagePath};

/// The published revisions of `package` the snapshot holds, as `vN`.
fn published(snapshot: &Snapshot, package: &PackagePath) -> Vec<String> {
    let mut found: Vec<u64> = snapshot
        .published(package)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    found.sort_unstable();
    found.into_iter().map(|n| format!("v{n}")).collect()
}

/// Refused while `package` has published revisions: the branch holds the
/// latest of them (contract §5), and deleting the last one removes the
/// package from the branch anyway.
fn no_published_revisions(
    layout: &Layout,
    snapshot: &Snapshot,
    package: &PackagePath,
) -> Result<(), Refusal> {
    let revisions = published(snapshot, package);
    if revisions.is_empty() {
        return Ok(());
    }
    Err(refuse(
        "package-has-revisions",
        format!(
            "{package} has published revisions ({}); {} holds the latest of them, so delete those revisions instead (propose-delete, then delete each; deleting the last one removes {package} from {})",
            revisions.join(", "),
            layout.branch(),
            layout.branch()
        ),
    ))
}

/// Propose removing `package` from the branch: `deletionProposed/F/B` at a
/// commit of the branch (the tip Porch listed, or an older one) that holds
/// the package, while the branch still holds it.
pub(super) fn propose_package_deletion(
    repo: &Repo,
    context: &Context,
    snapshot: &Snapshot,
    command: &Command,
    package: &PackagePath,
) -> Result<Plan, Refusal> {
    let layout = &context.layout;
    let tip = snapshot.branch_tip()?;
    let holds = repo
        .files_exist(&[
            (tip.clone(), format!("{package}/{KPTFILE}")),
            (command.new.clone(), format!("{package}/{KPTFILE}")),
        ])
        .map_err(internal)?;
    if holds.first() != Some(&true) {
        return Err(refuse(
            "no-such-package-on-branch",
            format!("{} holds no package {package}", layout.branch()),
        ));
    }
    let on_branch = repo.merge_base(&command.new, &tip).map_err(internal)?;
    if on_branch.as_deref() != Some(command.new.as_str()) || holds.get(1) != Some(&true) {
        return Err(refuse(
            "deletion-proposal-at-the-branch",
            format!(
                "a proposal to remove {package} from {b} points at a commit of {b} holding it: git push origin {b}:{}",
                command.refname,
                b = layout.branch()
            ),
        ));
    }
    no_published_revisions(layout, snapshot, package)?;
    Ok(Plan::new(
        vec![RefEdit::Create {
            name: command.refname.clone(),
            new: command.new.clone(),
        }],
        format!("proposed deleting {package} from {}", layout.branch()),
    )
    .with_event(
        EventKind::DeletionProposed,
        package,
        layout.branch(),
        0,
        &command.new,
    ))
}

/// Reject removing `package` from the branch: its proposal goes.
pub(super) fn reject_package_deletion(
    context: &Context,
    command: &Command,
    package: &PackagePath,
) -> Plan {
    let layout = &context.layout;
    Plan::new(
        vec![RefEdit::Delete {
            name: command.refname.clone(),
            old: command.old.clone(),
        }],
        format!("rejected deleting {package} from {}", layout.branch()),
    )
    .with_event(
        EventKind::DeletionRejected,
        package,
        layout.branch(),
        0,
        &command.old,
    )
}

/// Remove `package` from the branch with the client's `Delete F` commit
/// (see [`package_deletion`]): the branch moves to it and the proposal
/// `deletionProposed/F/B` goes, in one transaction.
pub(super) fn delete_package(
    repo: &Repo,
    context: &Context,
    snapshot: &Snapshot,
    command: &Command,
    package: &PackagePath,
) -> Result<Plan, Refusal> {
    let layout = &context.layout;
    let marker = layout.placeholder_deletion_ref(package);
    let Some(proposed) = snapshot.get(&marker) else {
        return Err(refuse(
            "deletion-needs-a-proposal",
            format!(
                "propose removing {package} from {b} first: git push origin {b}:{marker}",
                b = layout.branch()
            ),
        ));
    };
    no_published_revisions(layout, snapshot, package)?;
    let tip = snapshot.branch_tip()?;
    let here = follows_branch(repo, layout, &tip, package, true)?;
    let elsewhere = || {
        context
            .downstreams
            .iter()
            .find_map(|d| follows_in(d, layout, package))
    };
    if let Some(place) = here.or_else(elsewhere) {
        return Err(refuse(
            "revision-is-pinned",
            format!("{package} on {b} is the upstream of {place} (its Kptfile upstreamLock follows {b} at {package}); upgrade or delete it first", b = layout.branch()),
        ));
    }
    let mut plan = Plan::new(
        vec![
            RefEdit::Update {
                name: command.refname.clone(),
                new: command.new.clone(),
                old: tip.clone(),
            },
            RefEdit::Delete {
                name: marker,
                old: proposed,
            },
        ],
        format!("deleted {package}: {} no longer holds it", layout.branch()),
    )
    .with_event(EventKind::Deleted, package, layout.branch(), 0, &tip);
    plan.audit.push((
        command.new.clone(),
        format!("deleted-by: {} {}", context.user, audit::now()),
    ));
    Ok(plan)
}

/// Whether an `upstreamLock` with `reference` and `directory` follows
/// `package` on the branch (Porch records a clone of its placeholder
/// revision with the branch's name as `ref`, and the package path with or
/// without the repository's directory).
fn follows(layout: &Layout, package: &PackagePath, reference: &str, directory: &str) -> bool {
    let directory = directory.trim_matches('/');
    reference == layout.branch()
        && (directory == package.as_str() || directory == layout.package_name(package))
}

/// `repository:package` of a package on `downstream`'s branch whose
/// `upstreamLock` follows `package` on this repository's branch. A
/// repository that cannot be read follows nothing.
fn follows_in(downstream: &Downstream, layout: &Layout, package: &PackagePath) -> Option<String> {
    let repo = Repo::open(&downstream.path).ok()?;
    let branch = format!("refs/heads/{}", downstream.branch);
    let tip = repo.refs_under(&[branch.as_str()]).ok()?.pop()?.commit;
    follows_branch(&repo, layout, &tip, package, false)
        .ok()
        .flatten()
        .map(|dir| format!("{}:{dir}", downstream.name))
}

/// A package on the branch `tip` of `repo` (other than `package` itself
/// when `same_repository`) whose Kptfile's `upstreamLock` follows
/// `package` on `layout`'s branch, as its path.
fn follows_branch(
    repo: &Repo,
    layout: &Layout,
    tip: &str,
    package: &PackagePath,
    same_repository: bool,
) -> Result<Option<String>, Refusal> {
    for path in repo
        .files_containing(tip, KPTFILE, layout.branch())
        .map_err(internal)?
    {
        let Some(dir) = path.strip_suffix("/Kptfile") else {
            continue;
        };
        if same_repository && dir == package.as_str() {
            continue;
        }
        let text = repo
            .read_file(tip, &path)
            .map_err(internal)?
            .unwrap_or_default();
        let follows_it = upstream_lock_of(&text)
            .and_then(|l| l.git)
            .is_some_and(|g| follows(layout, package, &g.reference, &g.directory));
        if follows_it {
            return Ok(Some(dir.to_string()));
        }
    }
    Ok(None)
}
