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
use cadgate_hooks::clone::{draft_commit, package_files, CloneError, Origin};
use cadgate_hooks::git::{Repo, Signature};
use cadgate_hooks::refs::Layout;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Deserialize;

use crate::api::{self, RevisionJson};
use crate::auth::{self, Principal};
use crate::error::HttpError;
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
    clone: CloneFrom,
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
    let package = layout
        .package(create.package_name.trim_matches('/'))
        .ok_or_else(|| {
            invalid(format!(
                "packageName '{}' is not a package path below the repository's directory '{}'",
                create.package_name, repo.config.directory
            ))
        })?;
    let ws = create.workspace_name.clone();
    let origin = resolve(state, repo, principal, &headers, &create.clone).await?;
    let source_dir = origin.directory.clone();
    let author = Signature {
        name: principal.name.clone(),
        email: format!("{}@cadgate", principal.name),
    };
    let (target, source_repo) = (repo.clone(), source_repository(state, &create.clone));
    let commit = tokio::task::spawn_blocking(move || {
        let git = Repo::open(&target.path)?;
        let files = match source_repo {
            Some(source) => package_files(&Repo::open(&source.path)?, &origin.commit, &source_dir)?,
            None => package_files(&git, &origin.commit, &source_dir)?,
        };
        draft_commit(&git, &layout, &package, files, &origin, &author)
    })
    .await
    .map_err(|e| HttpError::internal(e.to_string()).json("internal"))?
    .map_err(|e| match e {
        CloneError::NotAPackage(m) => invalid(m),
        CloneError::Exists(m) => HttpError::new(StatusCode::CONFLICT, m).json("conflict"),
        CloneError::Kptfile(_) => invalid(e.to_string()),
        CloneError::Git(e) => {
            tracing::error!(error = %e, "cannot write the clone");
            HttpError::internal("cannot write the clone; the server log says why").json("internal")
        }
    })?;
    let refname = format!(
        "refs/heads/drafts/{}/{ws}",
        create.package_name.trim_matches('/')
    );
    let zero = "0".repeat(40);
    let reports = crate::smart_http::push_as(
        state,
        repo,
        &principal.name,
        role,
        &[(zero, commit, refname.clone())],
    )
    .await?;
    if let Some(reason) = reports.iter().find_map(|r| r.refused.clone()) {
        return Err(
            HttpError::new(StatusCode::CONFLICT, format!("{refname}: {reason}")).json("refused"),
        );
    }
    let (listed, _) = api::list(repo, layout_package(repo, &create.package_name)).await?;
    let made = listed
        .iter()
        .find(|r| r.workspace == ws && r.revision == 0)
        .ok_or_else(|| {
            HttpError::internal("the draft was pushed but is not listed").json("internal")
        })?;
    let body = serde_json::to_string(&RevisionJson::new(&name, made))
        .map_err(|e| HttpError::internal(e.to_string()).json("internal"))?
        + "\n";
    let etag = api::digest(&[body.as_bytes()]);
    let mut response = api::respond(&HeaderMap::new(), etag, body.into_bytes());
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

fn layout_package(repo: &Repository, package: &str) -> Option<cadgate_hooks::refs::PackagePath> {
    Layout::new(&repo.config.branch, &repo.config.directory).package(package.trim_matches('/'))
}

fn source_repository(state: &State, from: &CloneFrom) -> Option<Arc<Repository>> {
    from.repository
        .as_deref()
        .and_then(|r| state.registry.get(r))
        .cloned()
}

/// Where the clone comes from, with its commit resolved (and, for a Git
/// URL, its objects fetched into `target`).
async fn resolve(
    state: &State,
    target: &Arc<Repository>,
    principal: &Principal,
    headers: &HeaderMap,
    from: &CloneFrom,
) -> Result<Origin, HttpError> {
    match (&from.repository, &from.git) {
        (Some(source), None) => {
            let package = from
                .package_name
                .as_deref()
                .ok_or_else(|| invalid("clone.packageName is needed with clone.repository"))?
                .trim_matches('/')
                .to_string();
            let repo = api::repository(state, principal, source)?;
            let (listed, _) = api::list(repo, layout_package(repo, &package)).await?;
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
            Ok(Origin {
                repo: format!("{}/published/{source}.git", base_url(headers)),
                directory: package.clone(),
                reference: format!("{package}/v{}", chosen.revision),
                commit: chosen.commit.clone(),
            })
        }
        (None, Some(git)) => fetch_git(target, git).await,
        _ => Err(invalid(
            "clone needs either repository (with packageName and optional revision) or git (repo, ref, directory)",
        )),
    }
}

/// The URL this server is reached at, as the request names it.
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

/// Fetch `git.ref` from `git.repo` into the target repository (objects
/// only: the temporary ref is removed again) and resolve its commit.
async fn fetch_git(target: &Arc<Repository>, git: &GitSource) -> Result<Origin, HttpError> {
    if !(git.repo.starts_with("https://") || git.repo.starts_with("http://")) {
        return Err(invalid("clone.git.repo must be an http:// or https:// URL"));
    }
    if git.reference.is_empty() || git.reference.starts_with('-') || git.reference.contains("..") {
        return Err(invalid("clone.git.ref is not a ref name"));
    }
    let temporary = format!("refs/cadgate/clone/{}", std::process::id());
    let path = target.path.clone();
    let (url, reference) = (git.repo.clone(), git.reference.clone());
    let fetched = tokio::process::Command::new("git")
        .arg("--git-dir")
        .arg(&path)
        .args([
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--depth",
            "1",
            &url,
        ])
        .arg(format!("+{reference}:{temporary}"))
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .await
        .map_err(|e| HttpError::internal(e.to_string()).json("internal"))?;
    let commit = tokio::process::Command::new("git")
        .arg("--git-dir")
        .arg(&path)
        .args([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{temporary}^{{commit}}"),
        ])
        .output()
        .await
        .map_err(|e| HttpError::internal(e.to_string()).json("internal"))?;
    let _ = tokio::process::Command::new("git")
        .arg("--git-dir")
        .arg(&path)
        .args(["update-ref", "-d", &temporary])
        .output()
        .await;
    if !fetched.status.success() || !commit.status.success() {
        return Err(invalid(format!(
            "cannot fetch {reference} from {url}: {}",
            String::from_utf8_lossy(&fetched.stderr)
                .lines()
                .next()
                .unwrap_or("no such ref")
        )));
    }
    Ok(Origin {
        // Credentials in the URL never go into the Kptfile.
        repo: without_userinfo(&url),
        directory: git.directory.trim_matches('/').to_string(),
        reference,
        commit: String::from_utf8_lossy(&commit.stdout).trim().to_string(),
    })
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

/// `url` without a `user:password@` part.
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_never_reach_the_kptfile() {
        assert_eq!(
            super::without_userinfo("https://u:secret@host:8080/x/y.git"),
            "https://host:8080/x/y.git"
        );
        assert_eq!(
            super::without_userinfo("https://host/x.git"),
            "https://host/x.git"
        );
    }
}
