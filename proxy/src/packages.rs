//! Making package revisions through the API: `POST
//! /api/v1/repositories/{repo}/revisions` clones a published upstream
//! revision into a new package's first draft.
//!
//! ```json
//! {"packageName": "apps/web", "workspaceName": "ws",
//!  "clone": {"repository": "blueprints", "packageName": "web", "revision": 3}}
//! {"packageName": "apps/web", "workspaceName": "ws",
//!  "clone": {"git": {"repo": "https://host/x.git", "ref": "web/v3", "directory": "web"}}}
//! ```
//!
//! `revision` may be left out for the latest. The server writes the draft
//! commit and then pushes it as the caller, through the same `receive-pack`
//! and hook as any `git push`: the lifecycle rules are judged in one place.

use std::sync::Arc;

use cadgate_config::Role;
use cadgate_hooks::annotation::Task;
use cadgate_hooks::clone::{
    check_new_objects, copy_commit, draft_commit, init_commit, package_files, upgrade_commit,
    CloneError, Origin, Upgrade,
};
use cadgate_hooks::git::{Repo, Signature};
use cadgate_hooks::refs::Layout;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Deserialize;

use crate::api::{self, RevisionJson};
use crate::auth::{self, Principal};
use crate::error::HttpError;
use crate::fetch::{self, Scratch};
use crate::repositories::Repository;
use crate::service::{ResponseBody, State};

/// The largest request body the API reads.
const MAX_BODY: usize = 64 * 1024;

/// What `POST …/revisions` asks for.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Create {
    package_name: String,
    workspace_name: String,
    clone: Option<CloneFrom>,
    upgrade: Option<UpgradeTo>,
    init: Option<InitSpec>,
    copy: Option<CopySpec>,
}

/// A new, empty package (`kpt pkg init`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InitSpec {
    #[serde(default)]
    description: String,
}

/// A new workspace of an existing package from its published revision
/// `revision` (the latest when left out).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CopySpec {
    revision: Option<u64>,
}

/// An upgrade: to published revision `revision` of the package's upstream
/// (the latest when left out).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpgradeTo {
    revision: Option<u64>,
}

/// The upstream of a clone: a registered repository's published revision,
/// or any Git URL, ref and directory.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CloneFrom {
    repository: Option<String>,
    package_name: Option<String>,
    revision: Option<u64>,
    git: Option<GitSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GitSource {
    repo: String,
    #[serde(rename = "ref")]
    reference: String,
    directory: String,
}

fn invalid(message: impl Into<String>) -> HttpError {
    HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, message).json("invalid")
}

/// `POST /api/v1/repositories/{repo}/revisions`.
pub async fn create(
    state: &State,
    repo: &Arc<Repository>,
    principal: &Principal,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, HttpError> {
    let name = repo.config.name.clone();
    let role = auth::authorize(
        &state.config,
        principal,
        &name,
        Role::Author,
        "creating a draft",
    )
    .map_err(|e| e.json("forbidden"))?;
    let headers = request.headers().clone();
    let body = read_body(request).await?;
    let create: Create = serde_json::from_slice(&body).map_err(|e| {
        HttpError::bad_request(format!("the body is not a revision request: {e}"))
            .json("bad_request")
    })?;
    let layout = Layout::new(&repo.config.branch, &repo.config.directory);
    // packageName is the path below the repository's directory, as Porch's
    // (porch pkg/externalrepo/git/package.go line 113, `ToPkgPathname`).
    let package = layout
        .package_named(&create.package_name)
        .ok_or_else(|| {
            invalid(format!(
                "packageName '{}' is not a package path (below the repository's directory '{}'; each segment of a new package path is {})",
                create.package_name, repo.config.directory, cadgate_config::names::DNS_LABEL_RULE
            ))
        })?;
    // The push rules judge names too; checking here first answers 422 with
    // the rule instead of a refused push.
    cadgate_config::names::validate_workspace(&create.workspace_name)
        .map_err(|m| invalid(format!("workspaceName: {m} [workspace-name]")))?;
    if create.init.is_some() || create.clone.is_some() {
        cadgate_config::names::validate_new_package_path(layout.package_name(&package))
            .map_err(|m| invalid(format!("packageName: {m}")))?;
    }
    let ws = create.workspace_name.clone();
    let refname = layout.draft_ref(&package, &ws);
    let draft_package = package.clone();
    let author = Signature {
        name: principal.name.clone(),
        email: format!("{}@cadgate", principal.name),
    };
    let asked = [
        create.clone.is_some(),
        create.upgrade.is_some(),
        create.init.is_some(),
        create.copy.is_some(),
    ];
    if asked.iter().filter(|a| **a).count() != 1 {
        return Err(invalid(
            "give exactly one of init (a new empty package), clone (a new package from an upstream), copy (a new draft of a published revision) or upgrade (to a newer upstream revision)",
        ));
    }
    let commit = match (&create.clone, &create.upgrade) {
        _ if create.init.is_some() => {
            let description = create.init.as_ref().map(|i| i.description.clone()).unwrap_or_default();
            let target = repo.clone();
            let workspace = ws.clone();
            blocking(move || {
                let git = Repo::open(&target.path)?;
                init_commit(&git, &layout, &package, &workspace, &description, &author)
            })
            .await?
        }
        _ if create.copy.is_some() => {
            let wanted = create.copy.as_ref().and_then(|c| c.revision);
            let (listed, _) = api::list(repo, Some(package.clone())).await?;
            let chosen = listed
                .iter()
                .filter(|r| r.revision > 0)
                .filter(|r| wanted.is_none_or(|n| n == r.revision))
                .max_by_key(|r| r.revision)
                .ok_or_else(|| {
                    invalid(format!(
                        "{package} has no published revision {} to copy",
                        wanted.map_or("at all".into(), |n| format!("v{n}"))
                    ))
                })?;
            let (commit, revision) = (chosen.commit.clone(), chosen.revision);
            let source = api::revision_name(
                &repo.config.name,
                layout.package_name(&package),
                &chosen.workspace,
            );
            let target = repo.clone();
            let workspace = ws.clone();
            blocking(move || {
                let git = Repo::open(&target.path)?;
                copy_commit(
                    &git, &layout, &package, &workspace, &commit, revision, &source, &author,
                )
            })
            .await?
        }
        (Some(from), None) => {
            let (origin, scratch, registered) = resolve(state, principal, &headers, from).await?;
            let source = match (&scratch, source_repository(state, from)) {
                (Some(scratch), _) => Some(scratch.dir().to_path_buf()),
                (None, Some(source)) => Some(source.path.clone()),
                (None, None) => None,
            };
            let target = repo.clone();
            let git = state.runner.git().to_path_buf();
            let scratch_root = state.config.server.data_dir.join(".scratch");
            let workspace = ws.clone();
            blocking(move || {
                let repo = Repo::with_git(git.clone(), &target.path)?;
                let files = match source {
                    Some(source) => package_files(
                        &Repo::with_git(git.clone(), &source)?,
                        &origin.commit,
                        &origin.directory,
                    )?,
                    None => package_files(&repo, &origin.commit, &origin.directory)?,
                };
                let commit = draft_commit(
                    &repo,
                    &layout,
                    &package,
                    &workspace,
                    files,
                    &origin,
                    registered.as_deref(),
                    &author,
                )?;
                check_new_objects(&git, &target.path, &commit, &scratch_root)?;
                drop(scratch);
                Ok(commit)
            })
            .await?
        }
        (None, Some(to)) => {
            let plan = plan_upgrade(state, repo, principal, &headers, &package, to).await?;
            let target = repo.clone();
            let upgrading = package.clone();
            let workspace = ws.clone();
            let git = state.runner.git().to_path_buf();
            let scratch_root = state.config.server.data_dir.join(".scratch");
            let upgraded = blocking(move || {
                let repo = Repo::with_git(git.clone(), &target.path)?;
                let source = match (&plan.scratch, &plan.source) {
                    (Some(scratch), _) => Repo::with_git(git.clone(), scratch.dir())?,
                    (None, Some(source)) => Repo::with_git(git.clone(), &source.path)?,
                    (None, None) => repo.clone(),
                };
                let base = package_files(&source, &plan.base.commit, &plan.base.directory)?;
                let new = package_files(&source, &plan.new.commit, &plan.new.directory)?;
                let upgraded = upgrade_commit(
                    &repo, &layout, &upgrading, &workspace, base, new, &plan.new, plan.task,
                    &author,
                )?;
                if let Upgrade::Draft(commit) = &upgraded {
                    check_new_objects(&git, &target.path, commit, &scratch_root)?;
                }
                Ok(upgraded)
            })
            .await?;
            match upgraded {
                Upgrade::Draft(commit) => commit,
                Upgrade::Conflicts(conflicts) => {
                    return Ok(conflict_response(&package, &conflicts))
                }
            }
        }
        _ => {
            return Err(invalid(
                "give exactly one of clone (a new package from an upstream) or upgrade (an existing one to a newer upstream revision)",
            ))
        }
    };
    let layout = Layout::new(&repo.config.branch, &repo.config.directory);
    let zero = "0".repeat(40);
    let reports = crate::smart_http::push_as(
        state,
        repo,
        &principal.name,
        role,
        &[(zero, commit, refname.clone())],
    )
    .await?;
    if let Some(reason) = reports.reports.iter().find_map(|r| r.refused.clone()) {
        return Err(
            HttpError::new(StatusCode::CONFLICT, format!("{refname}: {reason}")).json("refused"),
        );
    }
    let (listed, _) = api::list(repo, Some(draft_package)).await?;
    let made = listed
        .iter()
        .find(|r| r.workspace == ws && r.revision == 0)
        .ok_or_else(|| {
            HttpError::internal("the draft was pushed but is not listed").json("internal")
        })?;
    let body = serde_json::to_string(&RevisionJson::new(&name, &layout, made))
        .map_err(|e| HttpError::internal(e.to_string()).json("internal"))?
        + "\n";
    let etag = api::digest(&[body.as_bytes()]);
    let mut response = api::respond(&HeaderMap::new(), etag, body.into_bytes());
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// Run clone or upgrade work off the async threads, mapping its errors.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CloneError> + Send + 'static,
) -> Result<T, HttpError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| HttpError::internal(e.to_string()).json("internal"))?
        .map_err(|e| match e {
            CloneError::NotAPackage(m) => invalid(m),
            CloneError::Exists(m) => HttpError::new(StatusCode::CONFLICT, m).json("conflict"),
            CloneError::Kptfile(_) | CloneError::Unsafe(_) => invalid(e.to_string()),
            CloneError::Git(e) => {
                tracing::error!(error = %e, "cannot write the draft");
                HttpError::internal("cannot write the draft; the server log says why")
                    .json("internal")
            }
        })
}

/// 409 listing what could not be merged, resource and field.
fn conflict_response(
    package: &cadgate_hooks::refs::PackagePath,
    conflicts: &[cadgate_merge::Conflict],
) -> Response<ResponseBody> {
    let items: Vec<serde_json::Value> = conflicts
        .iter()
        .map(|c| {
            serde_json::json!({
                "path": c.path,
                "resource": c.resource.as_ref().map(|r| r.to_string()),
                "field": c.field,
                "detail": c.detail,
            })
        })
        .collect();
    let body = serde_json::json!({
        "error": format!(
            "the upgrade of {package} conflicts with its local changes in {} place(s); nothing was written: change the package so the upstream's change applies, or upgrade by hand",
            items.len()
        ),
        "code": "conflict",
        "conflicts": items,
    })
    .to_string()
        + "\n";
    let etag = api::digest(&[body.as_bytes()]);
    let mut response = api::respond(&HeaderMap::new(), etag, body.into_bytes());
    *response.status_mut() = StatusCode::CONFLICT;
    response
}

/// Where an upgrade goes from and to.
struct UpgradePlan {
    /// The registered repository holding the upstream.
    source: Option<Arc<Repository>>,
    /// Or the scratch repository its revisions were fetched into.
    scratch: Option<Scratch>,
    /// The upstream revision the package is at.
    base: Origin,
    /// The one it moves to.
    new: Origin,
    /// Porch's upgrade task naming the three revisions, when they are
    /// revisions of registered repositories (Porch upgrades only between
    /// its own objects).
    task: Option<Task>,
}

async fn plan_upgrade(
    state: &State,
    repo: &Arc<Repository>,
    principal: &Principal,
    headers: &HeaderMap,
    package: &cadgate_hooks::refs::PackagePath,
    to: &UpgradeTo,
) -> Result<UpgradePlan, HttpError> {
    let (listed, _) = api::list(repo, Some(package.clone())).await?;
    let current = listed
        .iter()
        .filter(|r| r.revision > 0)
        .max_by_key(|r| r.revision)
        .ok_or_else(|| invalid(format!("{package} has no published revision to upgrade")))?;
    let lock = current
        .upstream_lock
        .as_ref()
        .and_then(|l| l.git.clone())
        .ok_or_else(|| {
            invalid(format!(
                "{package} v{} has no upstreamLock in its Kptfile: it was not cloned from an upstream",
                current.revision
            ))
        })?;
    let directory = lock.directory.trim_matches('/').to_string();
    let base = Origin {
        repo: lock.repo.clone(),
        directory: directory.clone(),
        reference: lock.reference.clone(),
        commit: lock.commit.clone(),
    };
    let at = cadgate_hooks::refs::tag_revision(&lock.reference, &directory);
    let registered = current
        .upstream_lock
        .as_ref()
        .and_then(|l| api::registered_upstream(state, l))
        .map(|(repo, _, _)| repo);
    let local = api::revision_name(&repo.config.name, package.as_str(), &current.workspace);
    let (source, scratch, new, task) = match registered {
        Some(source) => {
            let source = api::repository(state, principal, &source.config.name)?.clone();
            let layout = Layout::new(&source.config.branch, &source.config.directory);
            let (upstream, _) = api::list(&source, layout.package(&directory)).await?;
            let chosen = upstream
                .iter()
                .filter(|r| r.revision > 0)
                .filter(|r| to.revision.is_none_or(|n| n == r.revision))
                .max_by_key(|r| r.revision)
                .ok_or_else(|| {
                    invalid(format!(
                        "the upstream has no published revision {} of {directory}",
                        to.revision.map_or("at all".into(), |n| format!("v{n}"))
                    ))
                })?;
            let new = Origin {
                repo: lock.repo.clone(),
                directory: directory.clone(),
                reference: format!("{directory}/v{}", chosen.revision),
                commit: chosen.commit.clone(),
            };
            // Porch's upgrade task names the upstream revision the package
            // is at, the one it moves to and the local one by object name
            // (`porchctl rpkg upgrade`, upgrade/command.go lines 217–231);
            // without the old revision (deleted since) there is no name to
            // write, and so no task.
            let name = |r: &cadgate_hooks::listing::PackageRevision| {
                api::revision_name(&source.config.name, r.package.as_str(), &r.workspace)
            };
            let task = upstream
                .iter()
                .find(|r| at == Some(r.revision))
                .map(|old| Task::upgrade(&name(old), &name(chosen), &local));
            (Some(source), None, new, task)
        }
        None => {
            // Everything the Kptfile says is hostile: checked before git runs.
            let url = fetch::check_url("the Kptfile's upstreamLock.git.repo", &lock.repo)?;
            fetch::check_ref("the Kptfile's upstreamLock.git.ref", &lock.reference)?;
            fetch::check_directory("the Kptfile's upstreamLock.git.directory", &directory)?;
            let destination = fetch::destination(state, principal, headers, &url).await?;
            let revision = match to.revision {
                Some(n) => n,
                None => fetch::latest_revision(state, &destination, &url, &directory).await?,
            };
            let wanted = format!("{directory}/v{revision}");
            let (scratch, commits) =
                fetch::fetch(state, &destination, &url, &[&lock.reference, &wanted]).await?;
            if commits[0] != lock.commit {
                return Err(invalid(format!(
                    "the upstream's {} is no longer the commit the Kptfile's upstreamLock names; upgrade by hand",
                    lock.reference
                )));
            }
            let new = Origin {
                repo: url.shown(),
                directory: directory.clone(),
                reference: wanted,
                commit: commits[1].clone(),
            };
            (None, Some(scratch), new, None)
        }
    };
    if let (Some(at), Some(to_revision)) = (
        at,
        cadgate_hooks::refs::tag_revision(&new.reference, &directory),
    ) {
        if to_revision <= at {
            return Err(HttpError::new(
                StatusCode::CONFLICT,
                format!("{package} is at {directory} v{at} already; v{to_revision} is not newer"),
            )
            .json("conflict"));
        }
    }
    Ok(UpgradePlan {
        source,
        scratch,
        base,
        new,
        task,
    })
}

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
async fn published_tag(
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

/// The package `repo`'s API names `package_name` (its path below the
/// repository's directory).
fn layout_package(
    repo: &Repository,
    package_name: &str,
) -> Option<cadgate_hooks::refs::PackagePath> {
    Layout::new(&repo.config.branch, &repo.config.directory).package_named(package_name)
}

/// The commit Porch writes to delete a package from the branch: child of
/// `tip`, `tip`'s tree without `package`, message `Delete F`
/// (porch pkg/externalrepo/git/git.go `createPackageDeleteCommitInRepo`,
/// lines 1318–1365).
async fn package_deletion_commit(
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

fn source_repository(state: &State, from: &CloneFrom) -> Option<Arc<Repository>> {
    from.repository
        .as_deref()
        .and_then(|r| state.registry.get(r))
        .cloned()
}

/// Where the clone comes from, with its commit resolved (and, for a Git
/// URL, the scratch repository its objects were fetched into; for a
/// registered repository, the object name of the cloned revision).
async fn resolve(
    state: &State,
    principal: &Principal,
    headers: &HeaderMap,
    from: &CloneFrom,
) -> Result<(Origin, Option<Scratch>, Option<String>), HttpError> {
    match (&from.repository, &from.git) {
        (Some(source), None) => {
            let package = from
                .package_name
                .as_deref()
                .ok_or_else(|| invalid("clone.packageName is needed with clone.repository"))?
                .trim_matches('/')
                .to_string();
            let repo = api::repository(state, principal, source)?;
            let found = layout_package(repo, &package);
            // The upstream's directory in Git: the full path.
            let full = found
                .as_ref()
                .map_or(package.clone(), |p| p.as_str().to_string());
            let (listed, _) = match found {
                Some(found) => api::list(repo, Some(found)).await?,
                None => (Vec::new(), String::new()),
            };
            let mut published = listed.iter().filter(|r| {
                r.revision > 0 && from.revision.is_none_or(|n| n == r.revision)
            });
            let chosen = match from.revision {
                Some(_) => published.next_back(),
                None => published.rfind(|r| r.latest),
            }
            .ok_or_else(|| {
                invalid(format!(
                    "repository '{source}' has no published revision {} of '{package}'",
                    from.revision.map_or("at all".to_string(), |n| format!("v{n}"))
                ))
            })?;
            let origin = Origin {
                repo: api::registered_url(state, repo, &base_url(headers)),
                directory: full.clone(),
                reference: format!("{full}/v{}", chosen.revision),
                commit: chosen.commit.clone(),
            };
            let name = api::revision_name(source, chosen.package.as_str(), &chosen.workspace);
            Ok((origin, None, Some(name)))
        }
        (None, Some(git)) => {
            let url = fetch::check_url("clone.git.repo", &git.repo)?;
            fetch::check_ref("clone.git.ref", &git.reference)?;
            fetch::check_directory("clone.git.directory", &git.directory)?;
            let destination = fetch::destination(state, principal, headers, &url).await?;
            let (scratch, commits) =
                fetch::fetch(state, &destination, &url, &[&git.reference]).await?;
            let origin = Origin {
                // Credentials in the URL never go into the Kptfile.
                repo: url.shown(),
                directory: git.directory.trim_matches('/').to_string(),
                reference: git.reference.clone(),
                commit: commits[0].clone(),
            };
            Ok((origin, Some(scratch), None))
        }
        _ => Err(invalid(
            "clone needs either repository (with packageName and optional revision) or git (repo, ref, directory)",
        )),
    }
}

/// The URL this server is reached at, as the request names it (when
/// `[server] public_url` does not say).
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

async fn read_body(request: Request<Incoming>) -> Result<Vec<u8>, HttpError> {
    let limited = http_body_util::Limited::new(request.into_body(), MAX_BODY);
    limited
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .map_err(|_| {
            HttpError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {MAX_BODY} bytes or broken"),
            )
            .json("too_large")
        })
}
