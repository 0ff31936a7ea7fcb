//! Publishing a proposal: the approval commit, the next revision number and
//! its tag; also Porch's forms of propose and approve.

use super::draft::check_draft;
use super::inspect::{check_kptfile, Inspected};
use super::snapshot::Snapshot;
use super::{internal, refuse, Context, Plan};
use crate::audit;
use crate::events::EventKind;
use crate::git::{RefEdit, Repo, Signature};
use crate::lifecycle::{authorize, Refs, Refusal, Transition};
use crate::proc_receive::Command;
use crate::refs::{Layout, PackagePath, RefKind, NOTES};

/// Publish a proposal: the approval commit M (parents: branch tip and
/// proposal tip; tree: the branch with the package replaced), the next
/// revision number N, the tag `F/vN` → M, the branch moved to M and the
/// proposal removed — planned as one compare-and-swap transaction.
///
/// `porch`: the approval commit the client made itself (Porch's form,
/// porch pkg/externalrepo/git/git.go `createApprovalCommit`): accepted only
/// when it is exactly the commit cadgate would write — parents (branch tip,
/// proposal tip), the same tree, and a message naming the next revision.
pub(super) fn publish(
    repo: &Repo,
    context: &Context,
    snapshot: &Snapshot,
    proposal: &str,
    porch: Option<&str>,
    package: &PackagePath,
    workspace: &str,
) -> Result<Plan, Refusal> {
    let layout = &context.layout;
    let branch_ref = layout.branch_ref();
    let tip = snapshot.branch_tip()?;
    let notes_tip = snapshot.get(NOTES);
    let proposer = audit::proposer(
        repo,
        notes_tip.as_deref(),
        proposal,
        package.as_str(),
        workspace,
    )
    .map_err(internal)?;
    if !context.self_approval && proposer.as_deref() == Some(context.user.as_str()) {
        return Err(refuse(
            "no-self-approval",
            format!("{} proposed {package} workspace {workspace}; another approver must publish it (policy.self_approval = false)", context.user),
        ));
    }
    // Stale: the package changed on the branch since the draft began.
    let base = repo.merge_base(proposal, &tip).map_err(internal)?;
    let at_base = match &base {
        Some(base) => repo.object_at(base, package.as_str()).map_err(internal)?,
        None => None,
    };
    let on_branch = repo.object_at(&tip, package.as_str()).map_err(internal)?;
    if at_base != on_branch {
        return Err(refuse(
            "stale-proposal",
            format!("{package} changed on {} since this draft began; rebase it (git fetch origin && git rebase origin/{}), push the draft, propose again", layout.branch(), layout.branch()),
        ));
    }
    // The revision number is chosen here: one more than any tag of the
    // package reads as (Porch's reading, `refs::parse_revision`).
    let revision = 1 + snapshot
        .published(package)
        .into_iter()
        .map(|(n, _)| n)
        .max()
        .unwrap_or(0);
    let tree = repo
        .tree_with_package(&tip, package.as_str(), Some(proposal))
        .map_err(internal)?;
    let proposed_by = proposer.unwrap_or_else(|| "unknown".into());
    let message = format!(
        "Approving package revision {package}/{revision}\n\n{}\n\nProposed-by: {proposed_by}\nApproved-by: {}\n",
        crate::annotation::Annotation {
            package: package.to_string(),
            workspace_name: workspace.to_string(),
            revision: revision.to_string(),
            task: None,
        }
        .line(),
        context.user
    );
    let author = Signature {
        name: context.user.clone(),
        email: context.user.clone(),
    };
    let approval = match porch {
        None => repo
            .commit_tree(&tree, &[&tip, proposal], &message, &author)
            .map_err(internal)?,
        Some(merge) => {
            check_porch_approval(
                repo, layout, package, revision, merge, &tip, proposal, &tree,
            )?;
            merge.to_string()
        }
    };
    let mut plan = Plan::new(
        vec![
            RefEdit::Update {
                name: branch_ref,
                new: approval.clone(),
                old: tip.clone(),
            },
            RefEdit::Create {
                name: layout.tag_ref(package, revision),
                new: approval.clone(),
            },
            RefEdit::Delete {
                name: layout.proposed_ref(package, workspace),
                old: proposal.to_string(),
            },
        ],
        format!(
            "published {package} v{revision} (workspace {workspace}) as {}",
            &approval[..12.min(approval.len())]
        ),
    );
    plan.audit.push((
        approval.clone(),
        format!("approved-by: {} {}", context.user, audit::now()),
    ));
    // Reported as a plain `ok`: the client then records the proposal tip for
    // the branch, an ancestor of the approval commit that the next fetch
    // fast-forwards. Reporting the approval commit itself would make git try
    // to store an object it does not have and print an error.
    plan.publishes = true;
    Ok(plan.with_event(
        EventKind::Published,
        package,
        workspace,
        revision,
        &approval,
    ))
}

/// Porch's own approval merge `merge` is what cadgate would have written:
/// parents (branch tip, proposal tip), the tree `tree`, and the message
/// `Approving package revision F/N` with N the next revision.
#[allow(clippy::too_many_arguments)]
pub(super) fn check_porch_approval(
    repo: &Repo,
    layout: &Layout,
    package: &PackagePath,
    revision: u64,
    merge: &str,
    tip: &str,
    proposal: &str,
    tree: &str,
) -> Result<(), Refusal> {
    let parents = repo.parents(merge).map_err(internal)?;
    if parents.first().map(String::as_str) != Some(tip) {
        return Err(refuse(
            "stale-approval",
            format!(
                "the approval commit of {package} is based on {}, but {} is at {}: the branch moved; fetch and approve again",
                parents.first().map(|p| &p[..p.len().min(12)]).unwrap_or("nothing"),
                layout.branch(),
                &tip[..tip.len().min(12)]
            ),
        ));
    }
    if parents.len() != 2 || parents[1] != proposal {
        return Err(refuse(
            "approval-merges-the-proposal",
            format!("an approval commit of {package} has two parents: the branch tip and the proposal tip"),
        ));
    }
    if repo.object_at(merge, "").map_err(internal)?.as_deref() != Some(tree) {
        return Err(refuse(
            "approval-tree",
            format!("the approval commit of {package} does not hold {} with only {package} replaced by the proposal", layout.branch()),
        ));
    }
    let message = repo
        .commit_infos(&[merge.to_string()])
        .map_err(internal)?
        .pop()
        .map(|i| i.message)
        .unwrap_or_default();
    let expected = format!("Approving package revision {package}/{revision}");
    if message.lines().next().map(str::trim_end) != Some(expected.as_str()) {
        return Err(refuse(
            "approval-revision-number",
            format!("the next revision of {package} is {revision}; the approval commit must say `{expected}`"),
        ));
    }
    Ok(())
}

/// Porch's propose (porch pkg/externalrepo/git/git.go, the render commit of
/// `UpdateLifecycle` to Proposed): a new commit on `proposed/F/ws`, a child
/// of the draft tip changing only `F/`. It is judged as a draft update
/// followed by a propose; `None` when the commit is not of that form.
pub(super) fn porch_proposal(
    repo: &Repo,
    context: &Context,
    snapshot: &Snapshot,
    inspected: &Inspected,
    command: &Command,
) -> Option<Result<Plan, Refusal>> {
    let layout = &context.layout;
    let RefKind::Proposed { package, workspace } = layout.classify(&command.refname) else {
        return None;
    };
    let draft_ref = layout.draft_ref(&package, &workspace);
    let draft = snapshot.get(&draft_ref)?;
    if repo.parents(&command.new).ok()? != [draft.clone()] {
        return None;
    }
    let tree = repo
        .tree_with_package(&draft, package.as_str(), Some(&command.new))
        .ok()?;
    if repo.object_at(&command.new, "").ok()?.as_deref() != Some(tree.as_str()) {
        return None;
    }
    Some((|| {
        for transition in [
            Transition::SaveDraft {
                package: package.clone(),
                workspace: workspace.clone(),
            },
            Transition::Propose {
                package: package.clone(),
                workspace: workspace.clone(),
            },
        ] {
            authorize(&transition, &context.user, context.role)?;
        }
        inspected
            .kptfile(&command.new, &package)
            .unwrap_or_else(|| check_kptfile(repo, &package, &command.new))?;
        check_draft(repo, context, snapshot, &package, &workspace, &command.new)?;
        let mut plan = Plan::new(
            vec![
                RefEdit::Create {
                    name: command.refname.clone(),
                    new: command.new.clone(),
                },
                RefEdit::Delete {
                    name: draft_ref,
                    old: draft,
                },
            ],
            format!("saved and proposed {package} workspace {workspace}"),
        );
        plan.audit.push((
            command.new.clone(),
            audit::proposed_by(&context.user, audit::now(), package.as_str(), &workspace),
        ));
        Ok(plan.with_event(EventKind::Proposed, &package, &workspace, 0, &command.new))
    })())
}
