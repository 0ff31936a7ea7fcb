//! Judging one ref update: the lifecycle transition it is, and how to carry it out.

use super::deletion::{
    already_on_branch, approve_deletion, hand_made_tag_proposal, revision_details,
};
use super::draft::{check_draft, check_new_package, check_new_workspace};
use super::inspect::{check_kptfile, Inspected};
use super::placeholder::{delete_package, propose_package_deletion, reject_package_deletion};
use super::publish::{porch_proposal, publish};
use super::snapshot::Snapshot;
use super::{Context, Plan};
use crate::audit;
use crate::events::EventKind;
use crate::git::{RefEdit, Repo};
use crate::lifecycle::{authorize, classify, Refusal, Transition};
use crate::proc_receive::Command;

/// Judge one ref update: how to carry it out, or why it is refused.
pub(super) fn judge(
    repo: &Repo,
    context: &Context,
    snapshot: &Snapshot,
    inspected: &Inspected,
    command: &Command,
) -> Result<Plan, Refusal> {
    let layout = &context.layout;
    let transition = match classify(layout, command, snapshot) {
        Err(refusal) if refusal.rule == "direct-push-to-branch" => {
            let mut porch = snapshot.step_proposals(repo, &command.new);
            if porch.len() == 1 {
                let (package, workspace, proposal) = porch.remove(0);
                authorize(
                    &Transition::Publish {
                        package: package.clone(),
                        workspace: workspace.clone(),
                    },
                    &context.user,
                    context.role,
                )?;
                return publish(
                    repo,
                    context,
                    snapshot,
                    &proposal,
                    Some(&command.new),
                    &package,
                    &workspace,
                );
            }
            if let Some(package) = snapshot.package_deletion(repo, &command.new) {
                authorize(
                    &Transition::DeletePackage {
                        package: package.clone(),
                    },
                    &context.user,
                    context.role,
                )?;
                return delete_package(repo, context, snapshot, command, &package);
            }
            return Err(already_on_branch(repo, snapshot, command).unwrap_or(refusal));
        }
        Err(refusal) if refusal.rule == "no-such-revision" => {
            hand_made_tag_proposal(repo, layout, snapshot, command).unwrap_or(Err(refusal))?
        }
        Err(refusal) if refusal.rule == "propose-the-draft-tip" => {
            return porch_proposal(repo, context, snapshot, inspected, command)
                .unwrap_or(Err(refusal))
        }
        judged => judged?,
    };
    authorize(&transition, &context.user, context.role)?;
    let name = command.refname.clone();
    let user = &context.user;
    let at = audit::now();
    match transition {
        Transition::SaveDraft { package, workspace } => {
            if command.is_create() {
                check_new_workspace(&workspace)?;
                check_new_package(repo, context, snapshot, &package)?;
            }
            inspected
                .kptfile(&command.new, &package)
                .unwrap_or_else(|| check_kptfile(repo, &package, &command.new))?;
            check_draft(repo, context, snapshot, &package, &workspace, &command.new)?;
            let edit = if command.is_create() {
                RefEdit::Create {
                    name,
                    new: command.new.clone(),
                }
            } else {
                RefEdit::Update {
                    name,
                    new: command.new.clone(),
                    old: command.old.clone(),
                }
            };
            let kind = if command.is_create() {
                EventKind::Created
            } else {
                EventKind::Updated
            };
            Ok(Plan::new(
                vec![edit],
                format!("saved draft {package} workspace {workspace}"),
            )
            .with_event(kind, &package, &workspace, 0, &command.new))
        }
        Transition::DeleteDraft { package, workspace }
        | Transition::DeleteProposal { package, workspace } => Ok(Plan::new(
            vec![RefEdit::Delete {
                name,
                old: command.old.clone(),
            }],
            format!("deleted {package} workspace {workspace}"),
        )
        .with_event(
            EventKind::DraftDeleted,
            &package,
            &workspace,
            0,
            &command.old,
        )),
        Transition::Propose { package, workspace } => Ok(move_ref(
            name,
            layout.draft_ref(&package, &workspace),
            &command.new,
            format!("proposed {package} workspace {workspace}"),
            audit::proposed_by(user, at, package.as_str(), &workspace),
        )
        .with_event(EventKind::Proposed, &package, &workspace, 0, &command.new)),
        Transition::RejectProposal { package, workspace } => Ok(move_ref(
            name,
            layout.proposed_ref(&package, &workspace),
            &command.new,
            format!(
                "rejected the proposal of {package} workspace {workspace}; it is a draft again"
            ),
            format!("rejected-by: {user} {at}"),
        )
        .with_event(EventKind::Rejected, &package, &workspace, 0, &command.new)),
        Transition::Publish { package, workspace } => publish(
            repo,
            context,
            snapshot,
            &command.new,
            None,
            &package,
            &workspace,
        ),
        Transition::ProposeDeletion { package, revision } => {
            let (commit, workspace) = revision_details(repo, &package, revision, &command.new);
            Ok(Plan::new(
                vec![RefEdit::Create {
                    name,
                    new: command.new.clone(),
                }],
                format!("proposed deleting {package} v{revision}"),
            )
            .with_event(
                EventKind::DeletionProposed,
                &package,
                &workspace,
                revision,
                &commit,
            ))
        }
        Transition::RejectDeletion { package, revision } => {
            let (commit, workspace) = revision_details(repo, &package, revision, &command.old);
            Ok(Plan::new(
                vec![RefEdit::Delete {
                    name,
                    old: command.old.clone(),
                }],
                format!("rejected deleting {package} v{revision}"),
            )
            .with_event(
                EventKind::DeletionRejected,
                &package,
                &workspace,
                revision,
                &commit,
            ))
        }
        Transition::ApproveDeletion { package, revision } => {
            approve_deletion(repo, context, snapshot, command, &package, revision)
        }
        Transition::ProposePackageDeletion { package } => {
            propose_package_deletion(repo, context, snapshot, command, &package)
        }
        Transition::RejectPackageDeletion { package } => {
            Ok(reject_package_deletion(context, command, &package))
        }
        Transition::DeletePackage { package } => {
            delete_package(repo, context, snapshot, command, &package)
        }
    }
}

/// Move `commit` from the ref `from` to the new ref `to` (propose, reject),
/// recording `audit` on the commit.
pub(super) fn move_ref(
    to: String,
    from: String,
    commit: &str,
    message: String,
    audit: String,
) -> Plan {
    let mut plan = Plan::new(
        vec![
            RefEdit::Create {
                name: to,
                new: commit.to_string(),
            },
            RefEdit::Delete {
                name: from,
                old: commit.to_string(),
            },
        ],
        message,
    );
    plan.audit.push((commit.to_string(), audit));
    plan
}
