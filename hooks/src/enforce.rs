//! Judging a whole push and carrying it out: every ref update is classified
//! ([`crate::lifecycle`]), checked against the user's role and the package
//! rules, and the accepted ones are applied in one compare-and-swap ref
//! transaction, so a push lands completely or not at all.

use std::collections::HashMap;

use cadgate_config::Role;

use crate::audit::{self, AuditLog};
use crate::events::{EventKind, Pending};
use crate::forward::{ForwardError, Upstream};
use crate::git::{GitError, RefEdit, Repo, Signature};
use crate::journal;
use crate::kptfile::{Kptfile, KPTFILE};
use crate::lifecycle::{authorize, classify, Refs, Refusal, Transition};
use crate::proc_receive::{Command, Outcome, Request};
use crate::refs::{Layout, PackagePath, RefKind, DELETION_PROPOSED, DRAFTS, NOTES, PROPOSED, TAGS};

/// Who is pushing, and what the repository allows.
#[derive(Debug, Clone)]
pub struct Context {
    /// The repository's layout (branch and package directory).
    pub layout: Layout,
    /// The authenticated user.
    pub user: String,
    /// Their role on this repository.
    pub role: Role,
    /// `[policy] self_approval`.
    pub self_approval: bool,
    /// Forward mode: the upstream that must accept every change first.
    pub upstream: Option<Upstream>,
    /// The server's other repositories, whose packages may pin this one's
    /// revisions (an approved deletion must not pull a pinned revision
    /// from under them).
    pub downstreams: Vec<Downstream>,
}

/// Another repository of the same server, as the hook sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Downstream {
    /// Its registered name.
    pub name: String,
    /// Its bare repository.
    pub path: std::path::PathBuf,
    /// Its registered branch.
    pub branch: String,
}

/// The environment variable carrying [`Context::downstreams`] (JSON) from
/// the server to the hook.
pub const DOWNSTREAMS_VARIABLE: &str = "CADGATE_DOWNSTREAMS";

/// The refs as they were when the push was judged.
struct Snapshot {
    refs: HashMap<String, String>,
    layout: Layout,
}

impl Snapshot {
    /// The registered branch's tip; publishing and deleting need it.
    fn branch_tip(&self) -> Result<String, Refusal> {
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
    fn read(repo: &Repo, layout: &Layout, commands: &[Command]) -> Result<Self, GitError> {
        let branch_ref = layout.branch_ref();
        let mut patterns = vec![branch_ref.clone(), NOTES.to_string(), PROPOSED.to_string()];
        let mut packages = Vec::new();
        for command in commands {
            match layout.classify(&command.refname) {
                RefKind::Draft { package, .. }
                | RefKind::Proposed { package, .. }
                | RefKind::Published { package, .. }
                | RefKind::DeletionProposed { package, .. } => packages.push(package),
                _ => {}
            }
        }
        let base = Self::from_refs(repo, layout, &patterns)?;
        // A push to the branch publishes the proposal at its new tip.
        for command in commands {
            if command.refname == branch_ref {
                packages.extend(
                    base.step_proposals(repo, &command.new)
                        .into_iter()
                        .map(|(p, _, _)| p),
                );
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

    fn from_refs(repo: &Repo, layout: &Layout, patterns: &[String]) -> Result<Self, GitError> {
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
    fn step_proposals(&self, repo: &Repo, oid: &str) -> Vec<(PackagePath, String, String)> {
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

/// What carrying out a push printed and reported.
pub struct Verdict {
    /// One outcome per command, in order.
    pub outcomes: Vec<Outcome>,
    /// Lines for the pusher (`remote: …`).
    pub messages: Vec<String>,
    /// The refs the push changed (full names), empty when nothing landed.
    pub changed: Vec<String>,
    /// Forward mode: the upstream refused because a ref moved there; judging
    /// again after refreshing the mirror may succeed.
    pub upstream_moved: bool,
    /// Forward mode: the mirror was refreshed from the upstream, so refs
    /// other than `changed` may have moved too.
    pub refreshed: bool,
    /// The lifecycle events of the edits that landed, in command order
    /// (empty when nothing landed); the caller records them under the lock.
    pub events: Vec<Pending>,
}

/// How one accepted ref update is carried out.
struct Plan {
    /// The ref edits.
    edits: Vec<RefEdit>,
    /// A line for the pusher.
    message: String,
    /// Audit lines: (commit, line).
    audit: Vec<(String, String)>,
    /// This plan publishes (one publish per push).
    publishes: bool,
    /// The lifecycle event it causes once applied.
    event: Option<Pending>,
}

impl Plan {
    fn new(edits: Vec<RefEdit>, message: String) -> Self {
        Self {
            edits,
            message,
            audit: Vec::new(),
            publishes: false,
            event: None,
        }
    }

    fn with_event(
        mut self,
        kind: EventKind,
        package: &PackagePath,
        workspace: &str,
        revision: u64,
        commit: &str,
    ) -> Self {
        self.event = Some(Pending {
            kind,
            package: package.as_str().to_string(),
            workspace: workspace.to_string(),
            revision,
            commit: commit.to_string(),
        });
        self
    }
}

/// What the pushed commits hold, judged before the lifecycle lock is taken:
/// each draft's Kptfile, read and parsed once per (commit, package). Pushed
/// commits never change, so these results stay true while other pushes land;
/// judging under the lock reads them instead of parsing user content.
#[derive(Debug, Default)]
pub struct Inspected {
    kptfiles: HashMap<(String, PackagePath), Result<(), Refusal>>,
}

impl Inspected {
    /// The result for the Kptfile of `package` in `commit`, if inspected.
    fn kptfile(&self, commit: &str, package: &PackagePath) -> Option<Result<(), Refusal>> {
        self.kptfiles
            .get(&(commit.to_string(), package.clone()))
            .cloned()
    }
}

impl Inspected {
    /// When the content of every command of `request` is refused, the
    /// outcomes: such a push is answered without waiting for the lifecycle
    /// lock (nothing of it could land).
    pub fn refuses_all(&self, context: &Context, request: &Request) -> Option<Vec<Outcome>> {
        if request.commands.is_empty() {
            return None;
        }
        request
            .commands
            .iter()
            .map(|command| {
                let RefKind::Draft { package, .. } = context.layout.classify(&command.refname)
                else {
                    return None;
                };
                if command.is_delete() {
                    return None;
                }
                match self.kptfile(&command.new, &package)? {
                    Ok(()) => None,
                    Err(refusal) => Some(Outcome::Rejected {
                        refname: command.refname.clone(),
                        reason: refusal.to_string(),
                    }),
                }
            })
            .collect()
    }
}

/// Check the content of every commit `request` pushes as a draft (its
/// package's Kptfile), without any lock: see [`Inspected`].
pub fn inspect(repo: &Repo, context: &Context, request: &Request) -> Inspected {
    let mut inspected = Inspected::default();
    for command in request.commands.iter().filter(|c| !c.is_delete()) {
        if let RefKind::Draft { package, .. } = context.layout.classify(&command.refname) {
            inspected
                .kptfiles
                .entry((command.new.clone(), package))
                .or_insert_with_key(|(commit, package)| check_kptfile(repo, package, commit));
        }
    }
    inspected
}

/// The package's Kptfile in `commit`: present, within the bounds on a
/// Kptfile, and valid for the package.
fn check_kptfile(repo: &Repo, package: &PackagePath, commit: &str) -> Result<(), Refusal> {
    let kptfile_path = format!("{package}/{KPTFILE}");
    let text = repo
        .read_file(commit, &kptfile_path)
        .map_err(internal)?
        .ok_or_else(|| {
            refuse(
                "draft-needs-kptfile",
                format!("the draft has no {kptfile_path}; a package is a directory with a Kptfile"),
            )
        })?;
    Kptfile::parse_for(package, &text).map_err(|e| refuse("kptfile", e.to_string()))?;
    Ok(())
}

/// Judge and carry out `request` on `repo`, inspecting its content first.
pub fn enforce(repo: &Repo, context: &Context, request: &Request) -> Result<Verdict, GitError> {
    let inspected = inspect(repo, context, request);
    enforce_inspected(repo, context, request, &inspected)
}

/// Judge and carry out `request` on `repo` with its content already
/// [`inspect`]ed: under the lifecycle lock only refs and trees are read.
pub fn enforce_inspected(
    repo: &Repo,
    context: &Context,
    request: &Request,
    inspected: &Inspected,
) -> Result<Verdict, GitError> {
    let snapshot = Snapshot::read(repo, &context.layout, &request.commands)?;
    let mut planned: Vec<(usize, Plan)> = Vec::new();
    let mut refusals: Vec<(usize, Refusal)> = Vec::new();
    let mut publishing = false;
    for (i, command) in request.commands.iter().enumerate() {
        match judge(repo, context, &snapshot, inspected, command) {
            Ok(plan) => {
                let publishes = plan.publishes;
                if publishes && publishing {
                    refusals.push((
                        i,
                        refuse(
                            "one-publish-per-push",
                            "publish one proposal per push".into(),
                        ),
                    ));
                    continue;
                }
                publishing |= publishes;
                planned.push((i, plan));
            }
            Err(refusal) => refusals.push((i, refusal)),
        }
    }
    one_step_per_package(
        repo,
        &context.layout,
        &snapshot,
        &request.commands,
        &mut planned,
        &mut refusals,
    );
    let mut outcomes: Vec<Option<Outcome>> = vec![None; request.commands.len()];
    let mut messages = Vec::new();
    for (i, refusal) in &refusals {
        outcomes[*i] = Some(Outcome::Rejected {
            refname: request.commands[*i].refname.clone(),
            reason: refusal.to_string(),
        });
    }
    if request.atomic && !refusals.is_empty() {
        for (i, _) in &planned {
            outcomes[*i] = Some(Outcome::Rejected {
                refname: request.commands[*i].refname.clone(),
                reason: "atomic push: another ref in this push was refused".into(),
            });
        }
        planned.clear();
    }
    let mut edits: Vec<RefEdit> = planned
        .iter()
        .flat_map(|(_, p)| p.edits.iter().cloned())
        .collect();
    let mut audit = AuditLog::default();
    for (_, plan) in &planned {
        for (commit, line) in &plan.audit {
            audit.add(commit, line.clone());
        }
    }
    let notes_tip = snapshot.get(NOTES);
    let refreshed = std::cell::Cell::new(false);
    let applied = audit
        .commit(repo, notes_tip.as_deref(), &context.user)
        .map_err(Failure::Local)
        .and_then(|notes| {
            edits.extend(notes);
            let pending: Vec<Pending> = planned
                .iter()
                .filter_map(|(_, p)| p.event.clone())
                .collect();
            apply(repo, context, &edits, &pending, &refreshed)
        });
    let mut events = Vec::new();
    for (i, plan) in planned {
        let refname = request.commands[i].refname.clone();
        outcomes[i] = Some(match &applied {
            Ok(()) => {
                if !plan.message.is_empty() {
                    messages.push(plan.message);
                }
                events.extend(plan.event);
                Outcome::Ok {
                    refname,
                    rewritten: None,
                }
            }
            Err(Failure::Local(e)) => Outcome::Rejected {
                refname,
                reason: format!(
                    "refs changed while this push was judged; fetch and push again ({})",
                    first_line(&e.to_string())
                ),
            },
            Err(Failure::Upstream(e @ ForwardError::Moved(_))) => Outcome::Rejected {
                refname,
                reason: format!("{e}; fetch and push again"),
            },
            Err(Failure::Upstream(e @ ForwardError::Unanswered { .. })) => Outcome::Rejected {
                refname,
                reason: format!(
                    "{e}; it may have landed there: once it answers, fetch to see, and push again only what is missing"
                ),
            },
            Err(Failure::Upstream(e)) => Outcome::Rejected {
                refname,
                reason: format!("{e}; nothing was changed, push again once it answers"),
            },
            Err(Failure::Journal(e)) => Outcome::Rejected {
                refname,
                reason: format!("cadgate could not record the change ({e}); nothing was changed"),
            },
        });
    }
    let changed = match applied {
        Ok(()) => edits.iter().map(|e| e.name().to_string()).collect(),
        Err(_) => Vec::new(),
    };
    Ok(Verdict {
        outcomes: outcomes.into_iter().flatten().collect(),
        messages,
        changed,
        upstream_moved: matches!(applied, Err(Failure::Upstream(ForwardError::Moved(_)))),
        refreshed: refreshed.get(),
        events,
    })
}

/// The package (as its path) whose lifecycle step `command` belongs to: the
/// package its ref names, or for the branch the package whose proposal the
/// push publishes. `None`: a command of no package, judged on its own.
fn step_of(repo: &Repo, layout: &Layout, snapshot: &Snapshot, command: &Command) -> Option<String> {
    match layout.classify(&command.refname) {
        RefKind::Branch => match snapshot.step_proposals(repo, &command.new).as_slice() {
            [(package, _, _)] => Some(package.as_str().to_string()),
            _ => None,
        },
        kind => package_of(kind).map(|p| p.as_str().to_string()),
    }
}

/// The ref and value an edit leaves (`None`: deleted).
fn edit_result(edit: &RefEdit) -> (&str, Option<&str>) {
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
fn one_step_per_package(
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
fn wrong_number(
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

/// Why accepted edits did not land.
enum Failure {
    /// The local ref transaction failed (a ref moved meanwhile).
    Local(GitError),
    /// Forward mode: the upstream refused or could not be reached.
    Upstream(ForwardError),
    /// The intent journal could not be written; nothing changed here.
    Journal(journal::JournalError),
}

/// Carry out `edits`: in forward mode upstream first (all or nothing, each
/// ref compared with its expected value there), then in the mirror.
///
/// The intent journal ([`crate::journal`]) is written before the local ref
/// transaction, so a crash in the middle is completed on recovery; the
/// caller removes it once the events are recorded.
fn apply(
    repo: &Repo,
    context: &Context,
    edits: &[RefEdit],
    pending: &[Pending],
    refreshed: &std::cell::Cell<bool>,
) -> Result<(), Failure> {
    let message = format!("cadgate: push by {}", context.user);
    let Some(upstream) = &context.upstream else {
        journal::write(repo.git_dir(), &context.user, edits, pending).map_err(Failure::Journal)?;
        return match repo.update_refs(edits, &message) {
            Ok(()) => {
                journal::crash_point("after-refs");
                Ok(())
            }
            Err(e) => {
                let _ = journal::abandon_if_untouched(repo, edits);
                Err(Failure::Local(e))
            }
        };
    };
    upstream.push(repo, edits).map_err(Failure::Upstream)?;
    journal::write(repo.git_dir(), &context.user, edits, pending).map_err(Failure::Journal)?;
    // The upstream has it. Should the mirror have moved meanwhile, it is
    // brought in step from the upstream instead.
    if repo.update_refs(edits, &message).is_err() {
        let _ = upstream.fetch(repo.git_dir());
        refreshed.set(true);
    }
    Ok(())
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Judge one ref update: how to carry it out, or why it is refused.
fn judge(
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
            return Err(already_on_branch(repo, snapshot, command).unwrap_or(refusal));
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
    }
}

/// The commit a published revision's ref points at (peeled) and the
/// workspace its approval commit names (`vN` when it names none).
fn revision_details(
    repo: &Repo,
    package: &PackagePath,
    revision: u64,
    oid: &str,
) -> (String, String) {
    let commit = repo
        .peel(oid)
        .ok()
        .flatten()
        .unwrap_or_else(|| oid.to_string());
    let workspace = repo
        .commit_infos(std::slice::from_ref(&commit))
        .ok()
        .and_then(|infos| infos.into_iter().next())
        .and_then(|info| crate::listing::annotated_workspace(&info.message, package))
        .unwrap_or_else(|| format!("v{revision}"));
    (commit, workspace)
}

/// Move `commit` from the ref `from` to the new ref `to` (propose, reject),
/// recording `audit` on the commit.
fn move_ref(to: String, from: String, commit: &str, message: String, audit: String) -> Plan {
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

/// Publish a proposal: the approval commit M (parents: branch tip and
/// proposal tip; tree: the branch with the package replaced), the next
/// revision number N, the tag `F/vN` → M, the branch moved to M and the
/// proposal removed — planned as one compare-and-swap transaction.
///
/// `porch`: the approval commit the client made itself (Porch's form,
/// porch pkg/externalrepo/git/git.go `createApprovalCommit`): accepted only
/// when it is exactly the commit cadgate would write — parents (branch tip,
/// proposal tip), the same tree, and a message naming the next revision.
fn publish(
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
    let revision = 1 + snapshot
        .refs
        .keys()
        .filter_map(|name| match layout.classify(name) {
            RefKind::Published {
                package: p,
                revision,
            } if p == *package => Some(revision),
            _ => None,
        })
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
fn check_porch_approval(
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
fn porch_proposal(
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

/// Approve a deletion: the tag and its deletion proposal go; when the
/// revision was the package's latest, the branch gets a commit that puts back
/// the new latest revision's tree (or removes the package when none is left),
/// so GitOps stops deploying it.
fn approve_deletion(
    repo: &Repo,
    context: &Context,
    snapshot: &Snapshot,
    command: &Command,
    package: &PackagePath,
    revision: u64,
) -> Result<Plan, Refusal> {
    let layout = &context.layout;
    let tag = command.refname.clone();
    let tagged = command.old.clone();
    let marker = layout.deletion_proposed_ref(package, revision);
    let branch_ref = layout.branch_ref();
    let tip = snapshot.branch_tip()?;
    // No package on the branch may be pinned to this revision.
    let tagged_commit = repo
        .peel(&tagged)
        .map_err(internal)?
        .unwrap_or_else(|| tagged.clone());
    for path in repo
        .files_containing(&tip, KPTFILE, &tagged_commit)
        .map_err(internal)?
    {
        let Some(dir) = path.strip_suffix("/Kptfile") else {
            continue;
        };
        let Some(other) = layout
            .package(dir)
            .or_else(|| Layout::new(layout.branch(), "").package(dir))
        else {
            continue;
        };
        let text = repo
            .read_file(&tip, &path)
            .map_err(internal)?
            .unwrap_or_default();
        let pinned = Kptfile::parse_for(&other, &text)
            .ok()
            .and_then(|k| k.upstream_lock)
            .and_then(|l| l.git)
            .is_some_and(|g| g.commit == tagged_commit);
        if pinned {
            return Err(refuse(
                "revision-is-pinned",
                format!("{package} v{revision} is the upstream of {other} (its Kptfile upstreamLock pins {}); upgrade or delete {other} first", &tagged_commit[..12.min(tagged_commit.len())]),
            ));
        }
    }
    // Nor any package of the server's other repositories.
    for downstream in &context.downstreams {
        if let Some(place) = pinned_in(downstream, &tagged_commit) {
            return Err(refuse(
                "revision-is-pinned",
                format!("{package} v{revision} is the upstream of {place} (its Kptfile upstreamLock pins {}); upgrade or delete it first", &tagged_commit[..12.min(tagged_commit.len())]),
            ));
        }
    }
    let mut edits = vec![
        RefEdit::Delete {
            name: tag,
            old: tagged.clone(),
        },
        RefEdit::Delete {
            name: marker.clone(),
            old: snapshot.get(&marker).unwrap_or_default(),
        },
    ];
    let others: Vec<(u64, String)> = snapshot
        .refs
        .iter()
        .filter_map(|(name, oid)| match layout.classify(name) {
            RefKind::Published {
                package: p,
                revision: n,
            } if p == *package && n != revision => Some((n, oid.clone())),
            _ => None,
        })
        .collect();
    let was_latest = others.iter().all(|(n, _)| *n < revision);
    let mut message = format!("deleted {package} v{revision}");
    if was_latest {
        let previous = others.iter().max_by_key(|(n, _)| *n);
        let source = previous.map(|(_, oid)| oid.as_str());
        let tree = repo
            .tree_with_package(&tip, package.as_str(), source)
            .map_err(internal)?;
        let current = repo.object_at(&tip, "").map_err(internal)?;
        if current.as_deref() != Some(tree.as_str()) {
            let text = format!(
                "Delete {package}/v{revision}\n\n{}\n\nApproved-by: {}\n",
                crate::annotation::Annotation {
                    package: package.to_string(),
                    revision: revision.to_string(),
                    ..Default::default()
                }
                .line(),
                context.user
            );
            let author = Signature {
                name: context.user.clone(),
                email: context.user.clone(),
            };
            let commit = repo
                .commit_tree(&tree, &[&tip], &text, &author)
                .map_err(internal)?;
            edits.push(RefEdit::Update {
                name: branch_ref,
                new: commit,
                old: tip,
            });
            message = match previous {
                Some((n, _)) => format!(
                    "deleted {package} v{revision}; {} now holds v{n}",
                    layout.branch()
                ),
                None => format!(
                    "deleted {package} v{revision}; {} no longer holds {package}",
                    layout.branch()
                ),
            };
        }
    }
    let (_, workspace) = revision_details(repo, package, revision, &tagged_commit);
    let mut plan = Plan::new(edits, message).with_event(
        EventKind::Deleted,
        package,
        &workspace,
        revision,
        &tagged_commit,
    );
    plan.audit.push((
        tagged_commit,
        format!("deleted-by: {} {}", context.user, audit::now()),
    ));
    Ok(plan)
}

/// A push to the branch of a commit the branch already holds: most often
/// the retry of a publish whose answer was lost (the upstream or the
/// connection died after the publish landed), so say that instead of
/// explaining how to publish.
fn already_on_branch(repo: &Repo, snapshot: &Snapshot, command: &Command) -> Option<Refusal> {
    let tip = snapshot.branch_tip().ok()?;
    let base = repo.merge_base(&command.new, &tip).ok()??;
    (base == command.new).then(|| {
        refuse(
            "already-on-branch",
            format!(
                "{} is already part of {}: it was published before (perhaps by a push whose answer was lost); fetch to see it: git fetch origin --tags",
                &command.new[..command.new.len().min(12)],
                command.refname
            ),
        )
    })
}

/// `repository:package` of a package on `downstream`'s branch whose
/// Kptfile `upstreamLock` pins `commit`, if any. A repository that cannot
/// be read pins nothing (it is logged by the server, not judged here).
fn pinned_in(downstream: &Downstream, commit: &str) -> Option<String> {
    let repo = Repo::open(&downstream.path).ok()?;
    let branch = format!("refs/heads/{}", downstream.branch);
    let tip = repo.refs_under(&[branch.as_str()]).ok()?.pop()?.commit;
    repo.files_containing(&tip, KPTFILE, commit)
        .ok()?
        .into_iter()
        .find(|path| {
            repo.read_file(&tip, path)
                .ok()
                .flatten()
                .and_then(|text| crate::kptfile::upstream_lock_of(&text))
                .and_then(|lock| lock.git)
                .is_some_and(|git| git.commit == commit)
        })
        .map(|path| {
            let dir = path.strip_suffix("/Kptfile").unwrap_or(&path);
            format!("{}:{dir}", downstream.name)
        })
}

/// A git failure while judging: the push is refused, saying why.
fn internal(e: GitError) -> Refusal {
    refuse(
        "internal",
        format!("cannot read the repository: {}", first_line(&e.to_string())),
    )
}

fn refuse(rule: &'static str, message: String) -> Refusal {
    Refusal { rule, message }
}

/// The package a lifecycle ref belongs to.
fn package_of(kind: RefKind) -> Option<PackagePath> {
    match kind {
        RefKind::Draft { package, .. }
        | RefKind::Proposed { package, .. }
        | RefKind::Published { package, .. }
        | RefKind::DeletionProposed { package, .. } => Some(package),
        _ => None,
    }
}

/// A draft creating a package path that no lifecycle ref and no Kptfile on
/// the branch holds yet makes a new package: its path below the package
/// directory follows Porch's rule (every segment a DNS-1123 label), and its
/// API name (`repo.<path with / as .>.ws`) is no other package's. Packages
/// that already exist under other names (Porch's own repositories, older
/// pushes) keep working.
fn check_new_package(
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
    let key = api_name_key(package.as_str());
    let every = repo
        .refs_under(&[DRAFTS, PROPOSED, TAGS, DELETION_PROPOSED])
        .map_err(internal)?;
    if let Some(other) = every
        .iter()
        .filter_map(|r| package_of(layout.classify(&r.name)))
        .find(|p| p != package && api_name_key(p.as_str()) == key)
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
fn check_draft(
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
fn nesting_package<'a>(
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
