//! `POST …/revisions/{name}/{action}`: a revision moved through its lifecycle
//! by the ref change a `git push` would make.

use std::sync::Arc;

use cadgate_config::Role;
use cadgate_hooks::git::{Repo, Signature};
use cadgate_hooks::refs::Layout;
use http::{HeaderMap, Response, StatusCode};

use crate::api::{self, RevisionJson};
use crate::auth::{self, Principal};
use crate::error::HttpError;
use crate::repositories::Repository;
use crate::service::{ResponseBody, State};

/// `POST /api/v1/repositories/{repo}/revisions/{name}/{action}`: move a
/// revision through its lifecycle as the caller, by the ref change a
/// `git push` would make (contract §6), through the same hook. Actions:
/// `propose`, `reject`, `approve`, `propose-delete`, `reject-delete`,
/// `delete`. Answers with the package's revisions afterwards.
pub async fn transition(
    state: &State,
    repo: &Arc<Repository>,
    principal: &Principal,
    name: &str,
    action: &str,
) -> Result<Response<ResponseBody>, HttpError> {
    let repository = repo.config.name.clone();
    let role = auth::authorize(
        &state.config,
        principal,
        &repository,
        Role::Reader,
        "changing a revision",
    )
    .map_err(|e| e.json("forbidden"))?;
    let (listed, _) = api::list_shown(repo, None).await?;
    let layout = Layout::new(&repo.config.branch, &repo.config.directory);
    let revision = api::find_revision(&repository, &layout, &listed, name)?;
    let package = revision.package.as_str();
    let ws = &revision.workspace;
    let n = revision.revision;
    let zero = "0".repeat(40);
    let draft = format!("refs/heads/drafts/{package}/{ws}");
    let proposed = format!("refs/heads/proposed/{package}/{ws}");
    let tag = format!("refs/tags/{package}/v{n}");
    // A placeholder's deletion proposal names the branch (Porch's
    // `deletionProposed/F/B`), and approving it removes F from the branch.
    let deletion = if revision.placeholder {
        layout.placeholder_deletion_ref(&revision.package)
    } else {
        format!("refs/heads/deletionProposed/{package}/v{n}")
    };
    let branch = format!("refs/heads/{}", repo.config.branch);
    use cadgate_hooks::listing::Lifecycle::*;
    let wrong = |needs: &str| {
        HttpError::new(
            StatusCode::CONFLICT,
            format!(
                "{name} is {}; {action} needs a {needs} revision",
                revision.lifecycle.as_str()
            ),
        )
        .json("conflict")
    };
    let current = |refname: String| {
        let path = repo.path.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                Repo::open(&path)
                    .and_then(|git| git.ref_targets(&[refname.as_str()]))
                    .ok()
                    .and_then(|refs| {
                        refs.into_iter()
                            .find(|(n, _)| *n == refname)
                            .map(|(_, t)| t)
                    })
            })
            .await
            .ok()
            .flatten()
            .ok_or_else(|| {
                HttpError::new(StatusCode::CONFLICT, "the ref moved meanwhile; list again")
                    .json("conflict")
            })
        }
    };
    let commands = match (action, revision.lifecycle) {
        ("propose", Draft) => vec![(zero, revision.commit.clone(), proposed)],
        ("reject", Proposed) => vec![(zero, revision.commit.clone(), draft)],
        ("approve", Proposed) => vec![(current(branch.clone()).await?, revision.commit.clone(), branch)],
        ("propose-delete", Published) => vec![(zero, revision.commit.clone(), deletion)],
        ("reject-delete", DeletionProposed) => vec![(current(deletion.clone()).await?, zero, deletion)],
        ("delete", Draft) => vec![(revision.commit.clone(), zero, draft)],
        ("delete", Proposed) => vec![(revision.commit.clone(), zero, proposed)],
        ("delete", DeletionProposed) if revision.placeholder => {
            let tip = current(branch.clone()).await?;
            let marker = current(deletion.clone()).await?;
            let commit = package_deletion_commit(repo, &revision.package, &tip, &principal.name).await?;
            vec![(tip, commit, branch), (marker, zero, deletion)]
        }
        ("delete", DeletionProposed) => {
            let tag = published_tag(repo, &revision.package, n).await.unwrap_or(tag);
            vec![(current(tag.clone()).await?, zero, tag)]
        }
        ("propose", _) => return Err(wrong("Draft")),
        ("reject" | "approve", _) => return Err(wrong("Proposed")),
        ("propose-delete", _) => return Err(wrong("Published")),
        ("reject-delete", _) => return Err(wrong("DeletionProposed")),
        ("delete", _) => {
            return Err(wrong("Draft, Proposed or DeletionProposed (propose the deletion of a published one first)"))
        }
        _ => {
            return Err(HttpError::not_found(format!(
                "no action '{action}'; actions: propose, reject, approve, propose-delete, reject-delete, delete"
            ))
            .json("not_found"))
        }
    };
    let pushed = crate::smart_http::push_as(state, repo, &principal.name, role, &commands).await?;
    if let Some(reason) = pushed.reports.iter().find_map(|r| r.refused.clone()) {
        let status = if reason.ends_with("[role]") {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::CONFLICT
        };
        return Err(HttpError::new(status, reason).json("refused"));
    }
    let (after, _) = api::list_shown(repo, Some(revision.package.clone())).await?;
    let layout = Layout::new(&repo.config.branch, &repo.config.directory);
    let items: Vec<serde_json::Value> = after
        .iter()
        .filter_map(|r| serde_json::to_value(RevisionJson::new(&repository, &layout, r)).ok())
        .collect();
    let body =
        serde_json::json!({ "items": items, "messages": pushed.messages }).to_string() + "\n";
    let etag = api::digest(&[body.as_bytes()]);
    Ok(api::respond(&HeaderMap::new(), etag, body.into_bytes()))
}

/// The tag of revision `n` of `package` as it is spelled in the
/// repository: `F/vN` when there is one, else a hand-made tag Porch reads
/// as N (`F/7`, `F/v07`; [`cadgate_hooks::refs::parse_revision`]).
pub(super) async fn published_tag(
    repo: &Repository,
    package: &cadgate_hooks::refs::PackagePath,
    n: u64,
) -> Option<String> {
    let layout = Layout::new(&repo.config.branch, &repo.config.directory);
    let canonical = layout.tag_ref(package, n);
    let under = format!("{}{package}/", cadgate_hooks::refs::TAGS);
    let path = repo.path.clone();
    let package = package.clone();
    tokio::task::spawn_blocking(move || {
        let mut tags: Vec<String> = Repo::open(&path)
            .and_then(|git| git.refs_under(&[under.as_str()]))
            .ok()?
            .into_iter()
            .map(|r| r.name)
            .filter(|name| {
                matches!(layout.classify(name), cadgate_hooks::refs::RefKind::Published { package: p, revision }
                    if p == package && revision == n)
            })
            .collect();
        tags.sort_by_key(|name| (*name != canonical, name.clone()));
        tags.into_iter().next()
    })
    .await
    .ok()
    .flatten()
}

/// The commit Porch writes to delete a package from the branch: child of
/// `tip`, `tip`'s tree without `package`, message `Delete F`
/// (porch pkg/externalrepo/git/git.go `createPackageDeleteCommitInRepo`,
/// lines 1318–1365).
pub(super) async fn package_deletion_commit(
    repo: &Arc<Repository>,
    package: &cadgate_hooks::refs::PackagePath,
    tip: &str,
    user: &str,
) -> Result<String, HttpError> {
    let (path, package, tip, user) = (
        repo.path.clone(),
        package.clone(),
        tip.to_string(),
        user.to_string(),
    );
    tokio::task::spawn_blocking(move || {
        let git = Repo::open(&path)?;
        let tree = git.tree_with_package(&tip, package.as_str(), None)?;
        let author = Signature {
            name: user.clone(),
            email: format!("{user}@cadgate"),
        };
        git.commit_tree(&tree, &[&tip], &format!("Delete {package}\n"), &author)
    })
    .await
    .map_err(|e| HttpError::internal(e.to_string()).json("internal"))?
    .map_err(|e| HttpError::internal(e.to_string()).json("internal"))
}
