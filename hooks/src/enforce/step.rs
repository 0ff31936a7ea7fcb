//! One push, one lifecycle step per package: all or nothing.

use super::snapshot::Snapshot;
use super::{package_of, refuse, Plan};
use crate::git::{RefEdit, Repo};
use crate::lifecycle::Refusal;
use crate::proc_receive::Command;
use crate::refs::{Layout, RefKind};

/// The package (as its path) whose lifecycle step `command` belongs to: the
/// package its ref names, or for the branch the package whose proposal the
/// push publishes (or which its `Delete F` commit removes). `None`: a command of no package, judged on its own.
pub(super) fn step_of(
    repo: &Repo,
    layout: &Layout,
    snapshot: &Snapshot,
    command: &Command,
) -> Option<String> {
    match layout.classify(&command.refname) {
        RefKind::Branch => match snapshot.step_proposals(repo, &command.new).as_slice() {
            [(package, _, _)] => Some(package.as_str().to_string()),
            [] => snapshot
                .package_deletion(repo, &command.new)
                .map(|p| p.as_str().to_string()),
            _ => None,
        },
        kind => package_of(kind).map(|p| p.as_str().to_string()),
    }
}

/// The ref and value an edit leaves (`None`: deleted).
pub(super) fn edit_result(edit: &RefEdit) -> (&str, Option<&str>) {
    match edit {
        RefEdit::Create { name, new } | RefEdit::Update { name, new, .. } => (name, Some(new)),
        RefEdit::Delete { name, .. } => (name, None),
    }
}

/// A push is judged per package, all or nothing: the commands of one push
/// that concern the same package are one lifecycle step.
///
/// - A command whose result another accepted command of the same step
///   already brings about (Porch deletes the draft it proposes, the proposal
///   it publishes or rejects, the deletion proposal of the revision it
///   deletes, and pushes the tag of its approval) is accepted and not sent
///   to `update-ref` a second time.
/// - When any command of a step is refused, every command of it is, naming
///   the rule that refused — whether or not the client asked for `--atomic`.
pub(super) fn one_step_per_package(
    repo: &Repo,
    layout: &Layout,
    snapshot: &Snapshot,
    commands: &[Command],
    planned: &mut Vec<(usize, Plan)>,
    refusals: &mut Vec<(usize, Refusal)>,
) {
    let steps: Vec<Option<String>> = commands
        .iter()
        .map(|c| step_of(repo, layout, snapshot, c))
        .collect();
    // The result each command asks for, found among the edits of a larger
    // plan of the same step.
    let done_by_other = |i: usize, own_edits: usize, planned: &[(usize, Plan)]| {
        let command = &commands[i];
        let wanted = (
            command.refname.as_str(),
            (!command.is_delete()).then_some(command.new.as_str()),
        );
        steps[i].is_some()
            && planned.iter().any(|(j, plan)| {
                *j != i
                    && steps[*j] == steps[i]
                    && plan.edits.len() > own_edits
                    && plan.edits.iter().any(|e| edit_result(e) == wanted)
            })
    };
    let absorbed_planned: Vec<usize> = planned
        .iter()
        .filter(|(i, plan)| done_by_other(*i, plan.edits.len(), planned))
        .map(|(i, _)| *i)
        .collect();
    for (i, plan) in planned.iter_mut() {
        if absorbed_planned.contains(i) {
            plan.edits.clear();
            plan.audit.clear();
            plan.event = None;
            plan.message.clear();
        }
    }
    let mut still_refused = Vec::new();
    for (i, refusal) in refusals.drain(..) {
        if done_by_other(i, 0, planned) {
            planned.push((i, Plan::new(Vec::new(), String::new())));
            continue;
        }
        still_refused.push((i, wrong_number(layout, &commands[i], refusal, planned)));
    }
    *refusals = still_refused;
    refused_with_its_approval(layout, commands, &steps, refusals);
    let refused_steps: Vec<(String, Refusal)> = refusals
        .iter()
        .filter_map(|(i, r)| steps[*i].clone().map(|s| (s, r.clone())))
        .collect();
    let mut kept = Vec::new();
    for (i, plan) in planned.drain(..) {
        match steps[i]
            .as_ref()
            .and_then(|s| refused_steps.iter().find(|(t, _)| t == s))
        {
            Some((package, refusal)) => refusals.push((
                i,
                refuse(
                    "one-step-per-package",
                    format!("another ref of package {package} in this push was refused, so none of its refs changed: [{}] {}", refusal.rule, refusal.message),
                ),
            )),
            None => kept.push((i, plan)),
        }
    }
    kept.sort_by_key(|(i, _)| *i);
    *planned = kept;
}

/// A tag pushed beside an accepted publish of the same commit under another
/// number (Porch numbered the revision itself): say which number is next.
pub(super) fn wrong_number(
    layout: &Layout,
    command: &Command,
    refusal: Refusal,
    planned: &[(usize, Plan)],
) -> Refusal {
    let RefKind::Published { package, revision } = layout.classify(&command.refname) else {
        return refusal;
    };
    let expected = planned
        .iter()
        .flat_map(|(_, p)| &p.edits)
        .find_map(|e| match e {
            RefEdit::Create { name, new } if *new == command.new && name != &command.refname => {
                match layout.classify(name) {
                    RefKind::Published {
                        package: p,
                        revision: r,
                    } if p == package => Some(r),
                    _ => None,
                }
            }
            _ => None,
        });
    match expected {
        Some(next) => refuse(
            "approval-revision-number",
            format!(
                "{} names revision {revision} of {package}, but its next revision is {next}",
                command.refname
            ),
        ),
        None => refusal,
    }
}

/// A tag pushed beside an approval of the same package that was refused
/// (Porch's approval merge naming the wrong number, or stale): the tag is
/// refused because its approval was, which says more than "tags are created
/// only by publishing".
fn refused_with_its_approval(
    layout: &Layout,
    commands: &[Command],
    steps: &[Option<String>],
    refusals: &mut [(usize, Refusal)],
) {
    let branch = layout.branch_ref();
    let approval: Vec<(String, Refusal)> = refusals
        .iter()
        .filter(|(i, _)| commands[*i].refname == branch)
        .filter_map(|(i, r)| steps[*i].clone().map(|s| (s, r.clone())))
        .collect();
    for (i, refusal) in refusals.iter_mut() {
        let is_tag = matches!(
            layout.classify(&commands[*i].refname),
            RefKind::Published { .. }
        );
        let Some((package, why)) = steps[*i]
            .as_ref()
            .filter(|_| is_tag && refusal.rule == "tag-is-made-by-publishing")
            .and_then(|s| approval.iter().find(|(t, _)| t == s))
        else {
            continue;
        };
        *refusal = refuse(
            "one-step-per-package",
            format!(
                "the approval of package {package} in this push was refused, so its tag was not created: [{}] {}",
                why.rule, why.message
            ),
        );
    }
}
