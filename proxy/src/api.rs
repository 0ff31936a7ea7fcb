//! The JSON API (contract §11): repositories and their package revisions,
//! computed from refs and trees at the moment of the call — no second store,
//! so a push is visible in the very next call.
//!
//! - `GET /api/v1/repositories`: the repositories the caller may read.
//! - `GET /api/v1/repositories/{repo}`: one of them.
//! - `GET /api/v1/repositories/{repo}/revisions`: its package revisions,
//!   filtered by `package`, `lifecycle`, `workspace` and `latest`, paged by
//!   `limit` and `continue`.
//! - `GET /api/v1/repositories/{repo}/revisions/{name}`: one revision.
//!
//! Every answer carries an `ETag` (a digest of the body); a request whose
//! `If-None-Match` names it gets `304 Not Modified`. Errors are JSON
//! `{"error": "...", "code": "..."}`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use cadgate_config::Role;
use cadgate_hooks::kptfile::UpstreamLock;
use cadgate_hooks::listing::{self, Lifecycle, PackageRevision};
use cadgate_hooks::refs::{Layout, PackagePath};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::auth::{self, Principal};
use crate::error::HttpError;
use crate::repositories::Repository;
use crate::service::{ResponseBody, State};

/// The largest `limit` a page may ask for. Without `limit` the whole
/// listing comes in one answer.
pub const MAX_PAGE: usize = 10_000;

/// Serve `/api/<path>`.
pub async fn serve(
    state: &State,
    request: Request<Incoming>,
    path: &str,
) -> Result<Response<ResponseBody>, HttpError> {
    let json = |e: HttpError, code| e.json(code);
    if request.method() == Method::POST {
        let principal = auth::authenticate(&state.config, request.headers())
            .map_err(|e| json(e, "unauthorized"))?
            .ok_or_else(|| {
                json(
                    HttpError::unauthorized("the API needs a user name and token (HTTP Basic)"),
                    "unauthorized",
                )
            })?;
        let segments = segments(path)?;
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        return match segments.as_slice() {
            ["v1", "repositories", name, "revisions"] => {
                let repo = repository(state, &principal, name)?;
                crate::packages::create(state, repo, &principal, request).await
            }
            ["v1", "repositories", name, "revisions", revision, action] => {
                let repo = repository(state, &principal, name)?;
                crate::packages::transition(state, repo, &principal, revision, action).await
            }
            _ => Err(json(
                HttpError::method_not_allowed("GET"),
                "method_not_allowed",
            )),
        };
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Err(json(
            HttpError::method_not_allowed("GET"),
            "method_not_allowed",
        ));
    }
    let principal = auth::authenticate(&state.config, request.headers())
        .map_err(|e| json(e, "unauthorized"))?
        .ok_or_else(|| {
            json(
                HttpError::unauthorized(
                    "the API needs a user name and token (HTTP Basic), as git does",
                ),
                "unauthorized",
            )
        })?;
    let query = Query::parse(request.uri().query())?;
    let segments = segments(path)?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let body = match segments.as_slice() {
        ["v1", "repositories"] => {
            query.only(&[])?;
            let mut items: Vec<_> = state
                .registry
                .iter()
                .filter(|repo| readable(state, &principal, &repo.config.name).is_ok())
                .map(|repo| repository_json(repo))
                .collect();
            items.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            serde_json::json!({ "items": items })
        }
        ["v1", "behind"] => {
            query.only(&["repository"])?;
            behind(state, &principal, query.get("repository")).await?
        }
        ["v1", "repositories", name] => {
            query.only(&[])?;
            repository_json(repository(state, &principal, name)?)
        }
        ["v1", "repositories", name, "revisions"] => {
            let repo = repository(state, &principal, name)?;
            let filter = Filter::from_query(&query)?;
            return revisions_page(state, &principal, repo, &filter, request.headers()).await;
        }
        ["v1", "repositories", name, "revisions", revision] => {
            query.only(&[])?;
            let repo = repository(state, &principal, name)?;
            let (listed, _) = list_shown(repo, None).await?;
            let layout = Layout::new(&repo.config.branch, &repo.config.directory);
            let found = find_revision(name, &layout, &listed, revision)?;
            let keys = upstream_keys(state, std::slice::from_ref(found));
            let (latest, _) = upstream_latest(state, &principal, &keys).await?;
            serde_json::to_value(
                RevisionJson::new(name, &layout, found)
                    .with_upstream(upstream_status(state, found, &latest)),
            )
            .map_err(|e| HttpError::internal(e.to_string()).json("internal"))?
        }
        _ => {
            return Err(json(
                HttpError::not_found(format!("no API endpoint /api/{path}")),
                "not_found",
            ))
        }
    };
    let text = body.to_string() + "\n";
    let etag = digest(&[text.as_bytes()]);
    Ok(respond(request.headers(), etag, text.into_bytes()))
}

/// The path's segments, percent-decoded: a repository name may hold `/`
/// (written `%2F` in the path).
fn segments(path: &str) -> Result<Vec<String>, HttpError> {
    path.trim_end_matches('/')
        .split('/')
        .map(|segment| {
            percent_encoding::percent_decode_str(segment)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| {
                    HttpError::bad_request("the path is not UTF-8 once percent-decoded")
                        .json("bad_request")
                })
        })
        .collect()
}

/// The repository `name`, if registered and readable by `principal`. An
/// unreadable repository is reported like a missing one only when the
/// caller has no role at all on it; otherwise 403 says which role is needed.
pub(crate) fn repository<'s>(
    state: &'s State,
    principal: &Principal,
    name: &str,
) -> Result<&'s Arc<Repository>, HttpError> {
    let repo = state
        .registry
        .get(name)
        .ok_or_else(|| auth::unknown_repository(name).json("not_found"))?;
    readable(state, principal, name)?;
    Ok(repo)
}

fn readable(state: &State, principal: &Principal, name: &str) -> Result<Role, HttpError> {
    auth::authorize(
        &state.config,
        principal,
        name,
        Role::Reader,
        "reading its package revisions",
    )
    .map_err(HttpError::json_by_status)
}

fn repository_json(repo: &Repository) -> serde_json::Value {
    let config = &repo.config;
    serde_json::json!({
        "name": config.name,
        "branch": config.branch,
        "directory": config.directory,
        "deployment": config.deployment,
        "url": format!("/{}.git", config.name),
        "publishedUrl": format!("/published/{}.git", config.name),
        "upstream": repo.upstream.as_ref().map(|u| u.url()),
    })
}

/// One package revision as the API shows it (Porch's field names).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RevisionJson<'a> {
    name: String,
    repository: &'a str,
    package_name: &'a str,
    workspace_name: &'a str,
    /// −1 for a placeholder, as Porch lists it.
    revision: i64,
    lifecycle: &'static str,
    /// Porch's placeholder revision of a package on the branch.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    placeholder: bool,
    latest: bool,
    commit: &'a str,
    published_by: Option<&'a str>,
    published_at: Option<String>,
    upstream_lock: Option<&'a UpstreamLock>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream: Option<UpstreamStatus>,
}

/// Where a revision's `upstreamLock` points when that is a registered
/// repository's published view, and whether a newer revision is there.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UpstreamStatus {
    repository: String,
    package_name: String,
    revision: u64,
    latest_revision: u64,
    behind: bool,
}

/// The registered repository a Kptfile's upstream URL names (by its
/// published view's path, `/published/<name>.git`), the package directory
/// there, and the revision N of a `directory/vN` ref.
pub(crate) fn registered_upstream<'s>(
    state: &'s State,
    lock: &UpstreamLock,
) -> Option<(&'s Arc<Repository>, String, Option<u64>)> {
    let git = lock.git.as_ref()?;
    let wanted = git.repo.trim_end_matches('/');
    let repo = state.registry.iter().find(|r| {
        let name = &r.config.name;
        // What clone writes now (Porch's form: the registered URL), and
        // what it wrote before (`…/published/R.git`); with no `public_url`
        // the host is whatever the request named, so only the path counts.
        let path = url_path(wanted);
        r.config
            .upstream
            .as_deref()
            .map(|u| u.trim_end_matches('/'))
            == Some(wanted)
            || path == format!("/{name}.git")
            || path == format!("/published/{name}.git")
            || state
                .config
                .server
                .public_url
                .as_deref()
                .is_some_and(|base| {
                    let base = base.trim_end_matches('/');
                    wanted == format!("{base}/{name}.git")
                        || wanted == format!("{base}/published/{name}.git")
                })
    })?;
    let directory = git.directory.trim_matches('/').to_string();
    let revision = cadgate_hooks::refs::tag_revision(&git.reference, &directory);
    Some((repo, directory, revision))
}

/// The URL a clone records for registered repository `repo`
/// (`upstreamLock.git.repo`), as Porch records the URL of the Repository
/// it cloned from (`pkg/externalrepo/git/package.go` `GetLock`: `Repo` is
/// the repository's URL, `Directory` the package path): in forward
/// mode its upstream, else this server's authoring URL `/R.git` under
/// `[server] public_url` or, without one, `request_base`.
pub(crate) fn registered_url(state: &State, repo: &Repository, request_base: &str) -> String {
    if let Some(upstream) = repo.config.upstream.as_deref() {
        return upstream.trim_end_matches('/').to_string();
    }
    let base = state
        .config
        .server
        .public_url
        .as_deref()
        .unwrap_or(request_base)
        .trim_end_matches('/');
    format!("{base}/{}.git", repo.config.name)
}

/// The path of a URL `scheme://host/path` (`""` when it has none).
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("", |i| &rest[i..])
}

/// The registered upstream packages (repository, package) that
/// `revisions` pin, each once, sorted.
fn upstream_keys(state: &State, revisions: &[PackageRevision]) -> Vec<(String, String)> {
    let keys: std::collections::BTreeSet<(String, String)> = revisions
        .iter()
        .filter_map(|r| r.upstream_lock.as_ref())
        .filter_map(|lock| registered_upstream(state, lock))
        .map(|(repo, directory, _)| (repo.config.name.clone(), directory))
        .collect();
    keys.into_iter().collect()
}

/// The latest published revision of each upstream package of `keys` the
/// caller may read, with a digest of the refs those answers come from (for
/// the ETag).
async fn upstream_latest(
    state: &State,
    principal: &Principal,
    keys: &[(String, String)],
) -> Result<(std::collections::BTreeMap<(String, String), u64>, String), HttpError> {
    let mut wanted = Vec::new();
    for (name, directory) in keys {
        if let Some(repo) = state.registry.get(name) {
            if readable(state, principal, name).is_ok() {
                wanted.push(((name.clone(), directory.clone()), repo.clone()));
            }
        }
    }
    // One refresh per upstream repository, however many of its packages
    // are pinned.
    let mut refreshed = std::collections::HashSet::new();
    for ((name, _), repo) in &wanted {
        if refreshed.insert(name.clone()) {
            refresh(repo).await;
        }
    }
    let mut latest = std::collections::BTreeMap::new();
    let mut states = Vec::new();
    for ((name, directory), repo) in wanted {
        let layout = Layout::new(&repo.config.branch, &repo.config.directory);
        let Some(package) = layout.package(&directory) else {
            continue;
        };
        let (refs, refs_state) = read_refs_as_they_are(&repo, Some(package.clone())).await?;
        let listed = list_refs(&repo, refs, Some(package), false).await?;
        states.push(refs_state);
        let newest = listed.iter().map(|r| r.revision).max().unwrap_or(0);
        latest.insert((name, directory), newest);
    }
    Ok((latest, states.join(",")))
}

/// A revision's [`UpstreamStatus`], given [`upstream_latest`]'s answers.
fn upstream_status(
    state: &State,
    r: &PackageRevision,
    latest: &std::collections::BTreeMap<(String, String), u64>,
) -> Option<UpstreamStatus> {
    let (repo, directory, revision) = registered_upstream(state, r.upstream_lock.as_ref()?)?;
    let newest = *latest.get(&(repo.config.name.clone(), directory.clone()))?;
    let revision = revision.unwrap_or(0);
    let layout = Layout::new(&repo.config.branch, &repo.config.directory);
    let package_name = layout
        .package(&directory)
        .map(|p| layout.package_name(&p).to_string())
        .unwrap_or(directory);
    Some(UpstreamStatus {
        repository: repo.config.name.clone(),
        package_name,
        revision,
        latest_revision: newest,
        behind: newest > revision,
    })
}

impl<'a> RevisionJson<'a> {
    pub(crate) fn with_upstream(mut self, upstream: Option<UpstreamStatus>) -> Self {
        self.upstream = upstream;
        self
    }

    /// `r` of `repository` (laid out as `layout`): `packageName` is the
    /// package's path below the repository's directory, as Porch names it
    /// (porch pkg/externalrepo/git/package.go line 113, `ToPkgPathname`).
    pub(crate) fn new(repository: &'a str, layout: &Layout, r: &'a PackageRevision) -> Self {
        let package = layout.package_name(&r.package);
        Self {
            name: revision_name(repository, package, &r.workspace),
            repository,
            package_name: package,
            workspace_name: &r.workspace,
            revision: if r.placeholder {
                -1
            } else {
                i64::try_from(r.revision).unwrap_or(i64::MAX)
            },
            placeholder: r.placeholder,
            lifecycle: r.lifecycle.as_str(),
            latest: r.latest,
            commit: &r.commit,
            published_by: r.published_by.as_deref(),
            published_at: r.published_at.and_then(|t| {
                jiff::Timestamp::from_second(t)
                    .ok()
                    .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            }),
            upstream_lock: r.upstream_lock.as_ref(),
            upstream: None,
        }
    }
}

/// Bumped when the JSON of a revision changes shape, so ETags change too.
const REPRESENTATION: &[u8] = b"cadgate-api-v1.2";

/// The package revisions of `repo` (only `package`'s when given), and a
/// digest of the refs they come from: the listing is a function of those
/// refs (objects never change), so equal digests mean equal listings.
pub(crate) async fn list(
    repo: &Arc<Repository>,
    package: Option<PackagePath>,
) -> Result<(Vec<PackageRevision>, String), HttpError> {
    let (refs, refs_state) = read_refs(repo, package.clone()).await?;
    Ok((list_refs(repo, refs, package, false).await?, refs_state))
}

/// [`list`] as the API shows it: with Porch's placeholder revisions of the
/// packages on the branch ([`listing::placeholders`]).
pub(crate) async fn list_shown(
    repo: &Arc<Repository>,
    package: Option<PackagePath>,
) -> Result<(Vec<PackageRevision>, String), HttpError> {
    let (refs, refs_state) = read_refs(repo, package.clone()).await?;
    Ok((list_refs(repo, refs, package, true).await?, refs_state))
}

/// The refs a listing of `repo` (only `package`'s when given) reads, and a
/// digest of them: the listing is a function of those refs (objects never
/// change), so equal digests mean equal listings.
///
/// In forward mode the mirror is brought in step first, so a listing never
/// shows an older state than the upstream has.
async fn read_refs(
    repo: &Arc<Repository>,
    package: Option<PackagePath>,
) -> Result<(Vec<(String, String)>, String), HttpError> {
    refresh(repo).await;
    read_refs_as_they_are(repo, package).await
}

/// Forward mode: compare the mirror with the upstream, fetching when they
/// differ; a listing of an unreachable upstream shows the mirror.
async fn refresh(repo: &Repository) {
    if let Err(e) = repo.refresh().await {
        tracing::warn!(repository = %repo.config.name, error = %e, "listing the mirror as it is: the upstream did not answer");
    }
}

/// [`read_refs`] without the refresh, for a repository refreshed already.
async fn read_refs_as_they_are(
    repo: &Arc<Repository>,
    package: Option<PackagePath>,
) -> Result<(Vec<(String, String)>, String), HttpError> {
    let repo = repo.clone();
    blocking(move || {
        let git = cadgate_hooks::git::Repo::open(&repo.path)?;
        let layout = Layout::new(&repo.config.branch, &repo.config.directory);
        let patterns = listing::listing_patterns_with_branch(&layout, package.as_ref());
        let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
        let refs = git.ref_targets(&patterns)?;
        let mut hasher = Sha256::new();
        hasher.update(REPRESENTATION);
        hasher.update(repo.config.branch.as_bytes());
        hasher.update([0]);
        hasher.update(repo.config.directory.as_bytes());
        for (name, target) in &refs {
            hasher.update([0]);
            hasher.update(name.as_bytes());
            hasher.update([0]);
            hasher.update(target.as_bytes());
        }
        Ok((refs, hex::encode(&hasher.finalize()[..16])))
    })
    .await
}

/// The package revisions `refs` of `repo` name (only `package`'s when
/// given), with the placeholders of the packages on the branch when
/// `placeholders` (what the API shows; never what it numbers or picks from).
async fn list_refs(
    repo: &Arc<Repository>,
    refs: Vec<(String, String)>,
    package: Option<PackagePath>,
    placeholders: bool,
) -> Result<Vec<PackageRevision>, HttpError> {
    let repo = repo.clone();
    blocking(move || {
        let git = cadgate_hooks::git::Repo::open(&repo.path)?;
        let layout = Layout::new(&repo.config.branch, &repo.config.directory);
        let mut listed = listing::list_refs(&git, &layout, &refs, &repo.listing_memo)?;
        if placeholders {
            let mut extra = listing::placeholders(&git, &layout, &refs, &repo.listing_memo)?;
            extra.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
            listed = merge_sorted(listed, extra);
        }
        if let Some(package) = &package {
            listed.retain(|r| r.package == *package);
        }
        Ok(listed)
    })
    .await
}

/// Two listings sorted by [`PackageRevision::sort_key`] as one, in one
/// pass (the full listing can hold a hundred thousand revisions).
fn merge_sorted(a: Vec<PackageRevision>, b: Vec<PackageRevision>) -> Vec<PackageRevision> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let mut b = b.into_iter().peekable();
    for r in a {
        while let Some(next) = b.next_if(|x| x.sort_key() < r.sort_key()) {
            out.push(next);
        }
        out.push(r);
    }
    out.extend(b);
    out
}

/// Run repository reading off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, cadgate_hooks::git::GitError> + Send + 'static,
) -> Result<T, HttpError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| HttpError::internal(format!("the listing failed: {e}")).json("internal"))?
        .map_err(|e| {
            tracing::error!(error = %e, "cannot list package revisions");
            HttpError::internal("cannot read the repository; the server log says why")
                .json("internal")
        })
}

/// Answers of `…/revisions` remembered by what they were made from: the
/// refs' digest, the filter and the caller (who may read different
/// upstreams), plus the upstream packages' state, checked again on every
/// use. A repository polled while nothing changes is answered without
/// listing it again; any push changes the digest. One answer per filter and
/// caller (the latest), at most 8 and 96 MiB in all.
#[derive(Debug, Default)]
pub struct Answers {
    remembered: std::sync::Mutex<std::collections::VecDeque<Answer>>,
}

#[derive(Debug, Clone)]
struct Answer {
    /// The filter and the caller: one answer is kept per slot, the latest.
    slot: String,
    /// The refs' digest it was made from.
    refs_state: String,
    upstream: Vec<(String, String)>,
    upstream_state: String,
    etag: String,
    body: Bytes,
}

impl Answers {
    const ENTRIES: usize = 8;
    const BYTES: usize = 96 << 20;

    fn get(&self, slot: &str, refs_state: &str) -> Option<Answer> {
        let remembered = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        remembered
            .iter()
            .find(|a| a.slot == slot && a.refs_state == refs_state)
            .cloned()
    }

    fn put(&self, answer: Answer) {
        if answer.body.len() > Self::BYTES {
            return;
        }
        let mut remembered = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        // An answer for older refs can never be served again.
        remembered.retain(|a| a.slot != answer.slot);
        remembered.push_front(answer);
        while remembered.len() > Self::ENTRIES
            || remembered.iter().map(|a| a.body.len()).sum::<usize>() > Self::BYTES
        {
            remembered.pop_back();
        }
    }
}

/// `GET …/revisions`: one page of the filtered listing. While the refs (and
/// the pinned upstreams) are unchanged, the remembered answer is served
/// without listing again, or 304 when the client has it.
async fn revisions_page(
    state: &State,
    principal: &Principal,
    repo: &Arc<Repository>,
    filter: &Filter,
    request: &HeaderMap,
) -> Result<Response<ResponseBody>, HttpError> {
    let layout = Layout::new(&repo.config.branch, &repo.config.directory);
    let package = match &filter.package {
        None => None,
        Some(p) => match layout.package_named(p) {
            Some(package) => Some(package),
            // Outside the repository's directory: no revisions there.
            None => {
                return Ok(respond(
                    request,
                    digest(&[b"empty"]),
                    b"{\"items\":[]}\n".to_vec(),
                ))
            }
        },
    };
    let (refs, refs_state) = read_refs(repo, package.clone()).await?;
    let slot = format!("{}\u{0}{}", filter.canonical(), principal.name);
    if let Some(hit) = repo.api_answers.get(&slot, &refs_state) {
        let (_, upstream_state) = upstream_latest(state, principal, &hit.upstream).await?;
        if upstream_state == hit.upstream_state {
            return Ok(respond(request, hit.etag, hit.body));
        }
    }
    let listed = list_refs(repo, refs, package, true).await?;
    // Whether a revision is behind its upstream depends on that upstream's
    // refs too: they go into the ETag.
    let upstream = upstream_keys(state, &listed);
    let (latest, upstream_state) = upstream_latest(state, principal, &upstream).await?;
    let etag = digest(&[
        refs_state.as_bytes(),
        upstream_state.as_bytes(),
        filter.canonical().as_bytes(),
    ]);
    let name = repo.config.name.as_str();
    let mut matching = listed.iter().filter(|r| filter.admits(r)).filter(|r| {
        filter
            .after
            .as_deref()
            .is_none_or(|after| sort_key(r).as_str() > after)
    });
    let mut body = Vec::with_capacity(400 * listed.len().min(filter.limit) + 64);
    body.extend_from_slice(b"{\"items\":[");
    let mut last = None;
    for (i, r) in matching.by_ref().take(filter.limit).enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let json =
            RevisionJson::new(name, &layout, r).with_upstream(upstream_status(state, r, &latest));
        serde_json::to_writer(&mut body, &json)
            .map_err(|e| HttpError::internal(e.to_string()).json("internal"))?;
        last = Some(r);
    }
    body.push(b']');
    if let (Some(last), true) = (last, matching.next().is_some()) {
        body.extend_from_slice(b",\"continue\":\"");
        body.extend_from_slice(encode_token(&sort_key(last)).as_bytes());
        body.push(b'"');
    }
    body.extend_from_slice(b"}\n");
    let body = Bytes::from(body);
    repo.api_answers.put(Answer {
        slot,
        refs_state: refs_state.clone(),
        upstream,
        upstream_state,
        etag: etag.clone(),
        body: body.clone(),
    });
    Ok(respond(request, etag, body))
}

/// `GET /api/v1/behind`: the latest published revision of every package
/// (in the readable repositories, or in `only`) whose registered upstream
/// has published a newer revision than the one its Kptfile pins.
async fn behind(
    state: &State,
    principal: &Principal,
    only: Option<&str>,
) -> Result<serde_json::Value, HttpError> {
    let mut repositories: Vec<&Arc<Repository>> = match only {
        Some(name) => vec![repository(state, principal, name)?],
        None => state
            .registry
            .iter()
            .filter(|r| readable(state, principal, &r.config.name).is_ok())
            .collect(),
    };
    repositories.sort_by(|a, b| a.config.name.cmp(&b.config.name));
    let mut items = Vec::new();
    for repo in repositories {
        let (listed, _) = list(repo, None).await?;
        let current: Vec<PackageRevision> = listed.into_iter().filter(|r| r.latest).collect();
        let (latest, _) =
            upstream_latest(state, principal, &upstream_keys(state, &current)).await?;
        for r in &current {
            if let Some(status) = upstream_status(state, r, &latest).filter(|s| s.behind) {
                let layout = Layout::new(&repo.config.branch, &repo.config.directory);
                let json =
                    RevisionJson::new(&repo.config.name, &layout, r).with_upstream(Some(status));
                items.push(
                    serde_json::to_value(json)
                        .map_err(|e| HttpError::internal(e.to_string()).json("internal"))?,
                );
            }
        }
    }
    Ok(serde_json::json!({ "items": items }))
}

/// The revision of `listed` whose API name is `name`: 404 when none is,
/// 409 naming them when several are (packages `x.y` and `x/y` of one
/// repository share their names): a name never acts on whichever is listed
/// first.
pub(crate) fn find_revision<'a>(
    repository: &str,
    layout: &Layout,
    listed: &'a [PackageRevision],
    name: &str,
) -> Result<&'a PackageRevision, HttpError> {
    let mut found = listed.iter().filter(|r| {
        revision_name(repository, layout.package_name(&r.package), &r.workspace) == name
    });
    let first = found.next().ok_or_else(|| {
        HttpError::not_found(format!(
            "repository '{repository}' has no package revision '{name}'"
        ))
        .json("not_found")
    })?;
    let others: Vec<&PackageRevision> = found.collect();
    if others.is_empty() {
        return Ok(first);
    }
    let all: Vec<String> = std::iter::once(first)
        .chain(others)
        .map(|r| {
            format!(
                "package {} workspace {} ({})",
                r.package,
                r.workspace,
                r.lifecycle.as_str()
            )
        })
        .collect();
    Err(HttpError::new(
        StatusCode::CONFLICT,
        format!(
            "'{name}' is ambiguous: it names {}; act on them with git (their refs differ), or rename one",
            all.join(" and ")
        ),
    )
    .json("ambiguous"))
}

/// `repo.P-with-dots.ws` (contract §11), `P` being the package's path below
/// the repository's directory, as Porch names objects
/// (porch pkg/util/util.go `ComposePkgRevObjName`, lines 160–167, given
/// `PackageKey.Path` and `.Package` without the repository's directory:
/// pkg/externalrepo/git/package_tree.go line 160).
pub fn revision_name(repository: &str, package: &str, workspace: &str) -> String {
    format!("{repository}.{}.{workspace}", package.replace('/', "."))
}

/// The query string, decoded. A key given twice is refused.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Result<Self, HttpError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for (i, (key, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(k, _)| k == key) {
                return Err(bad_filter(format!("the parameter '{key}' is given twice")));
            }
        }
        Ok(Self(pairs))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Refuse parameters other than `known` (a typo must not silently
    /// widen a listing).
    fn only(&self, known: &[&str]) -> Result<(), HttpError> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some((key, _)) if known.is_empty() => Err(bad_filter(format!(
                "unknown parameter '{key}'; this endpoint takes none"
            ))),
            Some((key, _)) => Err(bad_filter(format!(
                "unknown parameter '{key}'; known: {}",
                known.join(", ")
            ))),
        }
    }
}

fn bad_filter(message: String) -> HttpError {
    HttpError::bad_request(message).json("bad_filter")
}

/// What `/revisions` was asked for.
struct Filter {
    package: Option<String>,
    workspace: Option<String>,
    lifecycle: Option<Lifecycle>,
    latest: Option<bool>,
    limit: usize,
    after: Option<String>,
}

impl Filter {
    fn from_query(query: &Query) -> Result<Self, HttpError> {
        query.only(&[
            "package",
            "workspace",
            "lifecycle",
            "latest",
            "limit",
            "continue",
        ])?;
        let lifecycle = match query.get("lifecycle") {
            None => None,
            Some(text) => Some(
                [
                    Lifecycle::Draft,
                    Lifecycle::Proposed,
                    Lifecycle::Published,
                    Lifecycle::DeletionProposed,
                ]
                .into_iter()
                .find(|l| l.as_str() == text)
                .ok_or_else(|| {
                    bad_filter(format!(
                        "lifecycle '{text}' is not one of Draft, Proposed, Published, DeletionProposed"
                    ))
                })?,
            ),
        };
        let latest = match query.get("latest") {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(bad_filter(format!("latest '{other}' is not true or false")))
            }
        };
        let limit = match query.get("limit") {
            None => usize::MAX,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
                _ => {
                    return Err(bad_filter(format!(
                        "limit '{text}' is not a number from 1 to {MAX_PAGE}"
                    )))
                }
            },
        };
        let after = match query.get("continue") {
            None => None,
            Some(token) => Some(decode_token(token).ok_or_else(|| {
                bad_filter(
                    "the continue token is not one this server gave; start again without it".into(),
                )
            })?),
        };
        Ok(Self {
            package: query
                .get("package")
                .map(|p| p.trim_matches('/').to_string()),
            workspace: query.get("workspace").map(str::to_string),
            lifecycle,
            latest,
            limit,
            after,
        })
    }

    /// Whether `r` passes the filter; `package` is applied when listing
    /// (only that package's refs are read).
    fn admits(&self, r: &PackageRevision) -> bool {
        self.workspace.as_deref().is_none_or(|w| r.workspace == w)
            && self.lifecycle.is_none_or(|l| r.lifecycle == l)
            && self.latest.is_none_or(|latest| r.latest == latest)
    }

    /// The filter as one string, for the ETag.
    fn canonical(&self) -> String {
        format!(
            "{:?}\u{0}{:?}\u{0}{:?}\u{0}{:?}\u{0}{}\u{0}{:?}",
            self.package, self.workspace, self.lifecycle, self.latest, self.limit, self.after
        )
    }
}

/// The key a page continues after: the listing's sort order, so a page
/// boundary survives revisions appearing or going between calls.
fn sort_key(r: &PackageRevision) -> String {
    let (package, revision, lifecycle, workspace) = r.sort_key();
    format!(
        "{package}\u{0}{revision:020}\u{0}{}\u{0}{workspace}",
        lifecycle as u8
    )
}

fn encode_token(key: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

fn decode_token(token: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    String::from_utf8(bytes)
        .ok()
        .filter(|k| k.contains('\u{0}'))
}

/// A strong ETag over `parts`.
pub(crate) fn digest(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
        hasher.update([0]);
    }
    format!("\"{}\"", hex::encode(&hasher.finalize()[..16]))
}

/// Does the request's `If-None-Match` name `etag`?
fn fresh(request: &HeaderMap, etag: &str) -> bool {
    request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

/// 200 with the JSON `body` and its ETag, or 304 when the client has it.
pub(crate) fn respond(
    request: &HeaderMap,
    etag: String,
    body: impl Into<Bytes>,
) -> Response<ResponseBody> {
    let (status, payload) = if fresh(request, &etag) {
        (StatusCode::NOT_MODIFIED, Bytes::new())
    } else {
        (StatusCode::OK, body.into())
    };
    let mut response = Response::new(
        Full::new(payload)
            .map_err(|never: Infallible| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_porch() {
        assert_eq!(
            revision_name("blueprints", "catalog/apps/web", "ws-1"),
            "blueprints.catalog.apps.web.ws-1"
        );
    }

    #[test]
    fn continue_tokens_round_trip_and_foreign_ones_are_refused() {
        let key = "apps/web\u{0}00000000000000000003\u{0}2\u{0}v3";
        assert_eq!(decode_token(&encode_token(key)).as_deref(), Some(key));
        assert_eq!(decode_token("not base64!"), None);
        assert_eq!(decode_token(&encode_token("no separator")), None);
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused() {
        let query = Query::parse(Some("pakage=x")).expect("parse");
        let err = Filter::from_query(&query).err().expect("refused");
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(
            err.message.contains("unknown parameter 'pakage'"),
            "{}",
            err.message
        );
        assert!(Query::parse(Some("limit=1&limit=2")).is_err());
        for bad in [
            "lifecycle=published",
            "latest=yes",
            "limit=0",
            "limit=10001",
            "continue=x",
        ] {
            let query = Query::parse(Some(bad)).expect("parse");
            assert!(Filter::from_query(&query).is_err(), "{bad}");
        }
    }
}
