//! `POST /api/v1/repositories/{repo}/revisions`: a new draft by init, clone,
//! copy or upgrade.

use std::sync::Arc;

use cadgate_config::Role;
use cadgate_hooks::clone::{
    check_new_objects, copy_commit, draft_commit, init_commit, package_files, upgrade_commit,
    Origin, Upgrade,
};
use cadgate_hooks::git::{Repo, Signature};
use cadgate_hooks::refs::Layout;
use http::{HeaderMap, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;

use crate::api::{self, RevisionJson};
use crate::auth::{self, Principal};
use crate::error::HttpError;
use crate::fetch::{self, Scratch};
use crate::repositories::Repository;
use crate::service::{ResponseBody, State};

use super::upgrade::plan_upgrade;
use super::{base_url, blocking, invalid, layout_package, read_body};

/// What `POST …/revisions` asks for.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Create {
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
pub(super) struct InitSpec {
    #[serde(default)]
    description: String,
}

/// A new workspace of an existing package from its published revision
/// `revision` (the latest when left out).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CopySpec {
    revision: Option<u64>,
}

/// An upgrade: to published revision `revision` of the package's upstream
/// (the latest when left out).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpgradeTo {
    pub(super) revision: Option<u64>,
}

/// The upstream of a clone: a registered repository's published revision,
/// or any Git URL, ref and directory.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CloneFrom {
    repository: Option<String>,
    package_name: Option<String>,
    revision: Option<u64>,
    git: Option<GitSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GitSource {
    repo: String,
    #[serde(rename = "ref")]
    reference: String,
    directory: String,
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

/// 409 listing what could not be merged, resource and field.
pub(super) fn conflict_response(
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

pub(super) fn source_repository(state: &State, from: &CloneFrom) -> Option<Arc<Repository>> {
    from.repository
        .as_deref()
        .and_then(|r| state.registry.get(r))
        .cloned()
}

/// Where the clone comes from, with its commit resolved (and, for a Git
/// URL, the scratch repository its objects were fetched into; for a
/// registered repository, the object name of the cloned revision).
pub(super) async fn resolve(
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
