//! Judging a whole push and carrying it out: every ref update is classified
//! ([`crate::lifecycle`]), checked against the user's role and the package
//! rules, and the accepted ones are applied in one compare-and-swap ref
//! transaction, so a push lands completely or not at all.

use cadgate_config::Role;

use crate::audit::AuditLog;
use crate::events::{EventKind, Pending};
use crate::forward::{ForwardError, Upstream};
use crate::git::{GitError, RefEdit, Repo};
use crate::journal;
use crate::lifecycle::{Refs, Refusal};
use crate::proc_receive::{Outcome, Request};
use crate::refs::{Layout, PackagePath, RefKind, NOTES};

mod deletion;
mod draft;
mod inspect;
mod judge;
mod placeholder;
mod publish;
mod snapshot;
mod step;

pub use inspect::{inspect, Inspected};
use judge::judge;
use snapshot::Snapshot;
use step::one_step_per_package;

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

/// Another repository of the same server, as the hook sees it (written by
/// the server and read by the hook through [`crate::downstreams`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Downstream {
    /// Its registered name.
    pub name: String,
    /// Its bare repository.
    pub path: std::path::PathBuf,
    /// Its registered branch.
    pub branch: String,
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
        | RefKind::DeletionProposed { package, .. }
        | RefKind::PlaceholderDeletionProposed { package } => Some(package),
        _ => None,
    }
}
