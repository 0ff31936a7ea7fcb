//! Approving a deletion: the tag and its marker go, and the branch falls
//! back to the new latest revision.

use super::snapshot::Snapshot;
use super::{internal, refuse, Context, Downstream, Plan};
use crate::audit;
use crate::events::EventKind;
use crate::git::{RefEdit, Repo, Signature};
use crate::kptfile::{Kptfile, KPTFILE};
use crate::lifecycle::{Refs, Refusal, Transition};
use crate::proc_receive::Command;
use crate::refs::{Layout, PackagePath, RefKind};

/// Approve a deletion: the tag and its deletion proposal go; when the
/// revision was the package's latest, the branch gets a commit that puts back
/// the new latest revision's tree (or removes the package when none is left),
/// so GitOps stops deploying it.
pub(super) fn approve_deletion(
    repo: &Repo,
    context: &Context,
    snapshot: &Snapshot,
    command: &Command,
    package: &PackagePath,
    revision: u64,
) -> Result<Plan, Refusal> {
    let layout = &context.layout;
    let tag = command.refname.clone();
    // A client that was not shown the tag (a host that hides tags from its
    // push advertisement, docs/pushing.md) sends the deletion without an old
    // value. git's own receive-pack then deletes the ref whatever it points
    // at; so does this, with the tag's value as it is (a tag never moves).
    let tagged = if command.is_create() {
        snapshot.get(&tag).ok_or_else(|| {
            refuse(
                "no-such-revision",
                format!("{package} has no published revision v{revision} ({tag} does not exist)"),
            )
        })?
    } else {
        command.old.clone()
    };
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
        .published(package)
        .into_iter()
        .filter(|(n, _)| *n != revision)
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
pub(super) fn already_on_branch(
    repo: &Repo,
    snapshot: &Snapshot,
    command: &Command,
) -> Option<Refusal> {
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
pub(super) fn pinned_in(downstream: &Downstream, commit: &str) -> Option<String> {
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

/// A deletion proposal of a revision whose tag is not spelled `F/vN` — a
/// hand-made `F/7` or `F/v07`, which Porch reads as revision 7
/// (`pkg/repository/util.go` `Revision2Int`) and so does cadgate
/// ([`crate::refs::parse_revision`]). [`crate::lifecycle::classify`] looks
/// for the tag `F/v7` only and answers `no-such-revision`; this finds the
/// revision's tag by its number instead. `None` when the package has no tag
/// of that number (the refusal stands).
///
/// Porch names the marker from the revision number, never from the tag:
/// `deletionProposed/F/v` + `Revision2Str(N)`
/// (`pkg/externalrepo/git/ref.go` `createDeletionProposedName`, lines
/// 129–135, pushed by `git.go` `UpdateLifecycle`, lines 1741–1748), and
/// reads a revision as DeletionProposed only under that name. So the
/// proposal must be made under that name (checked by
/// [`crate::lifecycle::classify`], rule `deletion-proposal-name`) and point
/// at the tag's commit (or the tag itself).
pub(super) fn hand_made_tag_proposal(
    repo: &Repo,
    layout: &Layout,
    snapshot: &Snapshot,
    command: &Command,
) -> Option<Result<Transition, Refusal>> {
    let RefKind::DeletionProposed { package, revision } = layout.classify(&command.refname) else {
        return None;
    };
    if !command.is_create() {
        return None;
    }
    let mut tags: Vec<(&String, &String)> = snapshot
        .refs
        .iter()
        .filter(|(name, _)| {
            matches!(layout.classify(name), RefKind::Published { package: p, revision: n }
                if p == package && n == revision)
        })
        .collect();
    tags.sort();
    let (tag, _) = *tags.first()?;
    let at_a_tag = tags.iter().any(|(_, oid)| {
        **oid == command.new || repo.peel(oid).ok().flatten().as_deref() == Some(&command.new)
    });
    if !at_a_tag {
        return Some(Err(refuse(
            "deletion-proposal-at-the-tag",
            format!(
                "a deletion proposal points at the published commit: git push origin {tag}:{}",
                command.refname
            ),
        )));
    }
    Some(Ok(Transition::ProposeDeletion { package, revision }))
}

/// The commit a published revision's ref points at (peeled) and the
/// workspace its approval commit names (`vN` when it names none).
pub(super) fn revision_details(
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
