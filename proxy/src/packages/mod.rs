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
//!
//! - [`create`]: a new draft by init, clone, copy or upgrade;
//! - `upgrade`: which upstream revisions an upgrade merges;
//! - [`transition`]: propose, reject, approve and the deletion steps, as the
//!   ref changes a `git push` would make.

use cadgate_hooks::clone::CloneError;
use cadgate_hooks::refs::Layout;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::error::HttpError;
use crate::repositories::Repository;

mod create;
mod transition;
mod upgrade;

pub use create::create;
pub use transition::transition;

/// The largest request body the API reads.
const MAX_BODY: usize = 64 * 1024;

fn invalid(message: impl Into<String>) -> HttpError {
    HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, message).json("invalid")
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

/// The package `repo`'s API names `package_name` (its path below the
/// repository's directory).
fn layout_package(
    repo: &Repository,
    package_name: &str,
) -> Option<cadgate_hooks::refs::PackagePath> {
    Layout::new(&repo.config.branch, &repo.config.directory).package_named(package_name)
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
