//! The Git smart-HTTP protocol (gitprotocol-http(5)) for one repository:
//! `info/refs` advertisements and the `git-upload-pack` / `git-receive-pack`
//! RPCs. git itself moves the data: each request runs
//! `git <service> --stateless-rpc` and its output is streamed back as it is
//! produced; request bodies are streamed in, never held whole (pushes) or held
//! only up to a configured size (fetch negotiations).

pub mod answers;
mod body;
pub mod compress;
pub mod pktline;
mod push_advertisement;
mod shallow_view;

use std::ffi::OsString;
use std::sync::Arc;

use bytes::Bytes;
use cadgate_config::Role;
use futures_util::{stream, StreamExt, TryStreamExt};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use crate::auth;
use crate::error::HttpError;
use crate::git_process::{Invocation, Running, Stdin, StdinFailure};
use crate::observe::Exchange;
use crate::repositories::Repository;
use crate::routes::{GitEndpoint, GitService, View};
use crate::service::{ResponseBody, State};

use body::Encoding;
use pktline::Scan;

use crate::limits::{Caller, GitGrant, READ_AHEAD};

/// How long a request body may send nothing.
fn body_timeout(state: &State) -> std::time::Duration {
    std::time::Duration::from_secs(state.config.server.body_timeout_secs)
}

/// Serve a Git endpoint of a registered repository.
pub async fn serve(
    state: &State,
    request: Request<Incoming>,
    exchange: &Arc<Exchange>,
    view: View,
    repository: &str,
    endpoint: GitEndpoint,
) -> Result<Response<ResponseBody>, HttpError> {
    let found = state.registry.get(repository);
    // Who asks, decided before anything that could tell whether the
    // repository exists (auth::access answers both cases alike).
    let access = auth::access(
        &state.config,
        request.headers(),
        repository,
        found.is_some(),
        view == View::Published && found.is_some_and(|r| r.config.published_anonymous),
        || match view {
            View::Authoring => "this repository needs a user name and token (HTTP Basic)".into(),
            View::Published => {
                "this published view needs a user name and token (HTTP Basic)".into()
            }
        },
    )?;
    if let Some(principal) = &access.principal {
        exchange.set_user(&principal.name);
    }
    let Some(repo) = found else {
        return Err(auth::unknown_repository(repository));
    };
    exchange.set_repository(repository);
    let caller = Caller {
        ip: exchange.peer_ip(),
        anonymous: access.principal.is_none(),
    };
    if view == View::Published {
        return serve_published(state, request, exchange, repo, endpoint, caller).await;
    }
    match endpoint {
        GitEndpoint::Dumb => Err(HttpError::not_found(
            "cadgate speaks only the smart HTTP protocol; this is a dumb-HTTP path",
        )),
        GitEndpoint::InfoRefs => {
            let service = info_refs_service(request.uri().query())?;
            exchange.set_service(service.wire_name());
            if request.method() != Method::GET {
                return Err(HttpError::method_not_allowed("GET"));
            }
            let user = authorize(state, &access, repository, service)?;
            refresh(repo, service).await?;
            let mut target = Target::authoring(state, repo, service, &user, request.headers())?;
            if service == GitService::ReceivePack {
                // A pusher is not shown the published tags (the advertisement
                // only; the push itself runs without this).
                let hide = push_advertisement::hidden_tags_env(state.runner.git(), repo).await;
                target.env.extend(hide);
            }
            advertise(state, request.headers(), &target, service, caller).await
        }
        GitEndpoint::Rpc(service) => {
            exchange.set_service(service.wire_name());
            if request.method() != Method::POST {
                return Err(HttpError::method_not_allowed("POST"));
            }
            check_content_type(request.headers(), service)?;
            let user = authorize(state, &access, repository, service)?;
            match service {
                GitService::UploadPack => {
                    let target = Target::authoring(state, repo, service, &user, request.headers())?;
                    upload_pack(state, request, &target, exchange, caller).await
                }
                GitService::ReceivePack => {
                    receive_pack(state, request, repo, &user, exchange, caller).await
                }
            }
        }
    }
}

/// The role each service needs on the authoring view.
fn needed_role(service: GitService) -> (Role, &'static str) {
    match service {
        GitService::UploadPack => (Role::Reader, "fetching"),
        GitService::ReceivePack => (Role::Author, "pushing"),
    }
}

fn authorize(
    state: &State,
    access: &auth::Access,
    repository: &str,
    service: GitService,
) -> Result<Pusher, HttpError> {
    let Some(principal) = &access.principal else {
        return Err(auth::unknown_repository(repository));
    };
    let (needed, action) = needed_role(service);
    let role = auth::authorize(&state.config, principal, repository, needed, action)?;
    Ok(Pusher {
        name: principal.name.clone(),
        role,
    })
}

/// An authenticated user and their role on the repository.
struct Pusher {
    name: String,
    role: Role,
}

fn info_refs_service(query: Option<&str>) -> Result<GitService, HttpError> {
    let name = query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("service="));
    match name {
        None => Err(HttpError::not_found(
            "cadgate speaks only the smart HTTP protocol; dumb-HTTP info/refs is not served (use git 1.6.6 or newer)",
        )),
        Some(name) => GitService::from_wire(name).ok_or_else(|| {
            HttpError::forbidden(format!(
                "unsupported service {name:?}; use git-upload-pack or git-receive-pack"
            ))
        }),
    }
}

fn check_content_type(headers: &HeaderMap, service: GitService) -> Result<(), HttpError> {
    let expected = format!("application/x-{}-request", service.wire_name());
    match headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        Some(ct) if ct == expected => Ok(()),
        other => Err(HttpError::unsupported_media(format!(
            "Content-Type must be {expected}, not {}",
            other.unwrap_or("(none)")
        ))),
    }
}

/// The `Git-Protocol` header, if present and well formed (`version=2`,
/// `key=value` pairs joined by `:`). It becomes `GIT_PROTOCOL` for git.
fn git_protocol(headers: &HeaderMap) -> Result<Option<String>, HttpError> {
    let Some(value) = headers.get("git-protocol") else {
        return Ok(None);
    };
    let bad = || {
        HttpError::bad_request(
            "malformed Git-Protocol header; expected key=value pairs such as version=2",
        )
    };
    let value = value.to_str().map_err(|_| bad())?;
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    let well_formed = value.len() <= 256
        && value.split(':').all(|pair| {
            pair.split_once('=')
                .is_some_and(|(k, v)| token(k) && token(v))
        });
    if well_formed {
        Ok(Some(value.to_string()))
    } else {
        Err(bad())
    }
}

fn is_v2(protocol: &Option<String>) -> bool {
    protocol
        .as_deref()
        .is_some_and(|p| p.split(':').any(|pair| pair == "version=2"))
}

/// Where a Git request runs: the repository directory, how git is invoked
/// there, and the cached v2 capability advertisement.
struct Target<'a> {
    /// The bare repository.
    path: &'a std::path::Path,
    /// Options before the subcommand (`-c …`).
    options: Vec<OsString>,
    /// Environment for git and its hooks.
    env: Vec<(String, String)>,
    /// The cached protocol v2 capability advertisement.
    capabilities: &'a std::sync::OnceLock<Bytes>,
    /// For logs: `<repo>` or `published/<repo>`.
    label: String,
    /// Commits a `want` may not name (the published view's withdrawn ones).
    withdrawn: Option<std::collections::BTreeSet<String>>,
    /// Remembered answers to polls (the published view).
    answers: Option<&'a answers::Answers>,
}

impl<'a> Target<'a> {
    /// The authoring repository; receive-pack runs with cadgate's hooks and
    /// learns who pushes from the environment.
    fn authoring(
        state: &State,
        repo: &'a Repository,
        service: GitService,
        user: &Pusher,
        headers: &HeaderMap,
    ) -> Result<Self, HttpError> {
        let mut env = state.enforcement.environment(
            &repo.config,
            &repo.published,
            repo.upstream.as_ref(),
            &state.config.policy,
            &user.name,
            user.role,
        );
        env.push(("REMOTE_USER".to_string(), user.name.clone()));
        if service == GitService::ReceivePack {
            // The other repositories, whose packages may pin this one's
            // revisions: the file that lists them (a file, so the
            // environment stays small however many there are).
            env.push(state.enforcement.downstreams());
        }
        env.push(("CADGATE_REPOSITORY".to_string(), repo.config.name.clone()));
        if let Some(p) = git_protocol(headers)? {
            env.push(("GIT_PROTOCOL".to_string(), p));
        }
        Ok(Self {
            path: &repo.path,
            options: match service {
                GitService::ReceivePack => state.enforcement.git_options(),
                GitService::UploadPack => Vec::new(),
            },
            env,
            capabilities: &repo.v2_capabilities,
            label: repo.config.name.clone(),
            withdrawn: None,
            answers: None,
        })
    }

    /// The published view's sibling repository: fetch only.
    fn published(repo: &'a Repository, headers: &HeaderMap) -> Result<Self, HttpError> {
        let mut env = Vec::new();
        if let Some(p) = git_protocol(headers)? {
            env.push(("GIT_PROTOCOL".to_string(), p));
        }
        Ok(Self {
            path: &repo.published,
            options: Vec::new(),
            env,
            capabilities: &repo.published_v2_capabilities,
            label: format!("published/{}", repo.config.name),
            withdrawn: Some(cadgate_hooks::published::read_withdrawn(&repo.published)),
            answers: Some(&repo.published_answers),
        })
    }

    /// `git [options] <service> --stateless-rpc [extra] <repo>`.
    fn args(&self, service: GitService, extra: &[&str]) -> Vec<OsString> {
        let mut args = self.options.clone();
        args.push(service.subcommand().into());
        args.push("--stateless-rpc".into());
        args.extend(extra.iter().map(OsString::from));
        args.push(self.path.as_os_str().to_os_string());
        args
    }
}

/// Forward mode: bring the mirror in step with the upstream before a fetch
/// or push begins. A fetch is served from the mirror when the upstream does
/// not answer (and says so in the log); a push needs the upstream.
async fn refresh(repo: &Repository, service: GitService) -> Result<(), HttpError> {
    match repo.refresh().await {
        Ok(()) => Ok(()),
        Err(e) if service == GitService::UploadPack => {
            tracing::warn!(repository = %repo.config.name, error = %e, "serving the mirror as it is: the upstream did not answer");
            Ok(())
        }
        Err(e) => Err(HttpError::new(
            StatusCode::BAD_GATEWAY,
            format!("{e}; pushing needs the upstream, try again once it answers"),
        )),
    }
}

/// Serve the published view (contract §8): fetch only, from the sibling
/// repository that holds published content and nothing else.
async fn serve_published(
    state: &State,
    request: Request<Incoming>,
    exchange: &Arc<Exchange>,
    repo: &Repository,
    endpoint: GitEndpoint,
    caller: Caller,
) -> Result<Response<ResponseBody>, HttpError> {
    let name = &repo.config.name;
    let read_only = || {
        HttpError::forbidden(format!(
            "the published view of '{name}' is read-only; push to the authoring view /{name}.git"
        ))
    };
    let service = match endpoint {
        GitEndpoint::Dumb => {
            return Err(HttpError::not_found(
                "cadgate speaks only the smart HTTP protocol; this is a dumb-HTTP path",
            ))
        }
        GitEndpoint::InfoRefs => {
            let service = info_refs_service(request.uri().query())?;
            if request.method() != Method::GET {
                return Err(HttpError::method_not_allowed("GET"));
            }
            service
        }
        GitEndpoint::Rpc(service) => {
            if request.method() != Method::POST {
                return Err(HttpError::method_not_allowed("POST"));
            }
            service
        }
    };
    exchange.set_service(service.wire_name());
    if service == GitService::ReceivePack {
        return Err(read_only());
    }
    // Who may read the view was decided by auth::access in `serve`.
    let target = Target::published(repo, request.headers())?;
    match endpoint {
        GitEndpoint::InfoRefs => {
            refresh(repo, service).await?;
            advertise(state, request.headers(), &target, service, caller).await
        }
        _ => {
            check_content_type(request.headers(), service)?;
            upload_pack(state, request, &target, exchange, caller).await
        }
    }
}

/// A ref advertisement (or v2 capability advertisement), which may go out
/// compressed ([`compress`]).
async fn advertise(
    state: &State,
    headers: &HeaderMap,
    target: &Target<'_>,
    service: GitService,
    caller: Caller,
) -> Result<Response<ResponseBody>, HttpError> {
    advertise_refs(state, headers, target, service, caller)
        .await
        .map(compress::compressible)
}

async fn advertise_refs(
    state: &State,
    headers: &HeaderMap,
    target: &Target<'_>,
    service: GitService,
    caller: Caller,
) -> Result<Response<ResponseBody>, HttpError> {
    let protocol = git_protocol(headers)?;
    let content_type = format!("application/x-{}-advertisement", service.wire_name());
    // A v2 fetch's advertisement lists capabilities, not refs: serve it from
    // memory after the first time (one git process less per poll).
    let cacheable = is_v2(&protocol) && service == GitService::UploadPack;
    if cacheable {
        if let Some(capabilities) = target.capabilities.get() {
            return bytes_response(capabilities.clone(), &content_type);
        }
    }
    // Protocol v0 advertisements start with the service line and a flush;
    // v2 capability advertisements do not (as git http-backend does).
    let preamble = if is_v2(&protocol) {
        Bytes::new()
    } else {
        let service_line = pktline::line(&format!("# service={}\n", service.wire_name()));
        Bytes::from(format!("{service_line}0000"))
    };
    let grant = state.limits.git(caller).await?;
    let running = state
        .runner
        .spawn(Invocation {
            args: target.args(service, &["--advertise-refs"]),
            env: target.env.clone(),
            stdin: Stdin::Empty,
            label: format!("{} --advertise-refs {}", service.subcommand(), target.label),
        })
        .await?;
    if cacheable {
        let capabilities = collect(running).await?;
        let _ = target.capabilities.set(capabilities.clone());
        return bytes_response(capabilities, &content_type);
    }
    if published_v0_for_libgit2(target, &protocol, headers) {
        let refs = shallow_view::without_shallow_lines(&collect(running).await?);
        let mut body = preamble.to_vec();
        body.extend_from_slice(&refs);
        return bytes_response(Bytes::from(body), &content_type);
    }
    stream_response(running, preamble, &content_type, grant).await
}

/// A protocol v0 request to the published view from a client that cannot
/// read a shallow server's advertisement ([`shallow_view`]).
fn published_v0_for_libgit2(
    target: &Target<'_>,
    protocol: &Option<String>,
    headers: &HeaderMap,
) -> bool {
    target.answers.is_some() && !is_v2(protocol) && shallow_view::needs_help(headers, target.path)
}

/// All of a (small) git output, once git has exited successfully.
async fn collect(running: Running) -> Result<Bytes, HttpError> {
    let Running { mut stdout, exit } = running;
    let mut out = Vec::new();
    stdout
        .read_to_end(&mut out)
        .await
        .map_err(|e| HttpError::internal(format!("cannot read git's output: {e}")))?;
    let report = exit
        .await
        .map_err(|_| HttpError::internal("git's supervisor went away"))?;
    if !report.success {
        return Err(HttpError::internal(format!(
            "git failed: {}",
            report.headline()
        )));
    }
    Ok(Bytes::from(out))
}

/// A complete Git response.
fn bytes_response(body: Bytes, content_type: &str) -> Result<Response<ResponseBody>, HttpError> {
    let body = http_body_util::Full::new(body)
        .map_err(|never: std::convert::Infallible| match never {})
        .boxed_unsync();
    with_git_headers(Response::new(body), content_type)
}

async fn upload_pack(
    state: &State,
    request: Request<Incoming>,
    target: &Target<'_>,
    exchange: &Arc<Exchange>,
    caller: Caller,
) -> Result<Response<ResponseBody>, HttpError> {
    let limit = state.config.server.max_request_bytes;
    let protocol = git_protocol(request.headers())?.unwrap_or_default();
    let shallow_unaware = published_v0_for_libgit2(
        target,
        &(!protocol.is_empty()).then(|| protocol.clone()),
        request.headers(),
    );
    let encoding = Encoding::from_headers(request.headers())?;
    if encoding == Encoding::Identity {
        body::check_declared_length(
            request.headers(),
            limit,
            "the fetch request",
            "max_request_bytes",
        )?;
    }
    let mut reader = body::reader(
        request.into_body(),
        encoding,
        exchange.clone(),
        body_timeout(state),
    );
    // Negotiation requests are small: the first READ_AHEAD bytes are read
    // before git runs, so a malformed one gets a clear 400. A longer one
    // streams into git (authoring view), or, where every want must be
    // checked first (the published view), is held against the server's
    // budget of buffered bytes.
    let (mut buf, complete) = body::read_ahead(&mut reader, READ_AHEAD, encoding).await?;
    let mut grant = state.limits.buffer();
    if !complete {
        if buf.len() as u64 > limit {
            return Err(HttpError::too_large(
                "the fetch request",
                limit,
                "max_request_bytes",
            ));
        }
        if target.withdrawn.is_none() {
            let admitted = state.limits.git(caller).await?;
            let running = state
                .runner
                .spawn(Invocation {
                    args: target.args(GitService::UploadPack, &[]),
                    env: target.env.clone(),
                    stdin: Stdin::Stream {
                        prefix: Bytes::from(buf),
                        rest: reader,
                        limit,
                    },
                    label: format!("upload-pack {}", target.label),
                })
                .await?;
            return stream_response(
                running,
                Bytes::new(),
                "application/x-git-upload-pack-result",
                admitted,
            )
            .await;
        }
        grant.cover(buf.capacity())?;
        body::read_rest(
            &mut reader,
            &mut buf,
            limit,
            &mut grant,
            encoding,
            "the fetch request",
        )
        .await?;
    }
    pktline::check_complete(&buf).map_err(HttpError::bad_request)?;
    // An `ls-refs` answer may go out compressed; a fetch's (pack data) not.
    let listing = is_v2(&Some(protocol.clone())) && answers::kind(&buf) == answers::Kind::LsRefs;
    if let Some(withdrawn) = &target.withdrawn {
        if let Some(oid) = pktline::wants(&buf)
            .into_iter()
            .find(|oid| withdrawn.contains(oid))
        {
            return withdrawn_error(&oid);
        }
    }
    // A poll of the published view: replay git's answer to the same request
    // while the refs have not changed.
    let replay = match target.answers {
        Some(answers) if is_v2(&Some(protocol.clone())) => {
            match (answers::kind(&buf), answers::generation(target.path)) {
                (answers::Kind::Other, _) | (_, None) => None,
                (_, Some(generation)) => Some((answers, generation)),
            }
        }
        _ => None,
    };
    if let Some((answers, generation)) = replay {
        if let Some(answer) = answers.get(generation, &protocol, &buf) {
            exchange.set_replayed();
            return bytes_response(answer.clone(), "application/x-git-upload-pack-result")
                .map(compress::remembered(listing, answer));
        }
    }
    if shallow_unaware {
        if let Some(deepened) = shallow_view::with_unbounded_depth(&buf) {
            buf = deepened;
        }
    }
    let body = Bytes::from(buf);
    let admitted = state.limits.git(caller).await?;
    let running = state
        .runner
        .spawn(Invocation {
            args: target.args(GitService::UploadPack, &[]),
            env: target.env.clone(),
            stdin: Stdin::Bytes(body.clone()),
            label: format!("upload-pack {}", target.label),
        })
        .await?;
    if let Some((answers, generation)) = replay {
        let answer = collect(running).await?;
        answers.put(generation, &protocol, &body, answer.clone());
        return bytes_response(answer.clone(), "application/x-git-upload-pack-result")
            .map(compress::remembered(listing, answer));
    }
    // git has the body (its stdin pipe takes what is left): the budget is
    // free again once git has read it.
    let response = stream_response(
        running,
        Bytes::new(),
        "application/x-git-upload-pack-result",
        admitted,
    )
    .await
    .map(compress::when(listing));
    drop(grant);
    response
}

/// Refuse a fetch that wants a deleted revision, the way git refuses an
/// object it will not serve: an `ERR` packet the client prints and fails on.
fn withdrawn_error(oid: &str) -> Result<Response<ResponseBody>, HttpError> {
    let message = format!(
        "ERR upload-pack: not our ref {oid} (a deleted package revision; the published view no longer serves it)\n"
    );
    bytes_response(
        Bytes::from(pktline::line(&message)),
        "application/x-git-upload-pack-result",
    )
}

async fn receive_pack(
    state: &State,
    request: Request<Incoming>,
    repo: &Repository,
    user: &Pusher,
    exchange: &Arc<Exchange>,
    caller: Caller,
) -> Result<Response<ResponseBody>, HttpError> {
    let limit = state.config.server.max_push_bytes;
    let target = Target::authoring(
        state,
        repo,
        GitService::ReceivePack,
        user,
        request.headers(),
    )?;
    let encoding = Encoding::from_headers(request.headers())?;
    if encoding == Encoding::Identity {
        body::check_declared_length(request.headers(), limit, "the push", "max_push_bytes")?;
    }
    let mut reader = body::reader(
        request.into_body(),
        encoding,
        exchange.clone(),
        body_timeout(state),
    );
    // Past the read-ahead, what is held is charged to the server's budget.
    let mut grant = state.limits.buffer();
    // Read the command list (up to its flush) to check its framing; the pack
    // that follows streams straight into git.
    let command_limit =
        usize::try_from(state.config.server.max_request_bytes).unwrap_or(usize::MAX);
    let mut head = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 8192];
    loop {
        match pktline::scan_to_flush(&head).map_err(HttpError::bad_request)? {
            Scan::FlushAt(_) => break,
            Scan::NeedMore if head.len() > command_limit => {
                return Err(HttpError::too_large(
                    "the push's command list",
                    command_limit as u64,
                    "max_request_bytes",
                ))
            }
            Scan::NeedMore => {}
        }
        let n = reader
            .read(&mut chunk)
            .await
            .map_err(|e| body::unreadable(encoding, &e))?;
        if n == 0 {
            return Err(HttpError::bad_request(if head.is_empty() {
                "the request body is empty; a push starts with a command list".to_string()
            } else {
                "the request body ends before the command list's flush packet".to_string()
            }));
        }
        body::append(&mut head, &chunk[..n], &mut grant)?;
    }
    let admitted = state.limits.git(caller).await?;
    let running = state
        .runner
        .spawn(Invocation {
            args: target.args(GitService::ReceivePack, &[]),
            env: target.env.clone(),
            stdin: Stdin::Stream {
                prefix: Bytes::from(head),
                rest: reader,
                limit,
            },
            label: format!("receive-pack {}", target.label),
        })
        .await?;
    let response = stream_response(
        running,
        Bytes::new(),
        "application/x-git-receive-pack-result",
        admitted,
    )
    .await;
    drop(grant);
    // Event readers look at the log once the push's answer is sent.
    state.events.notify();
    response.map(|r| crate::events::notify_when_done(r, &state.events))
}

/// Answer with git's stdout, streamed as it comes.
///
/// The status is decided by the first output: a git that fails before writing
/// anything gets a real HTTP error (413 for an oversized body, 400 for an
/// unreadable one, 500 otherwise) instead of an empty 200.
///
/// `admitted` is held until the answer is sent or dropped (the client went
/// away, or stopped reading past `server.write_timeout_secs`): dropping the
/// answer closes git's stdout, which stops git.
async fn stream_response(
    running: Running,
    preamble: Bytes,
    content_type: &str,
    admitted: GitGrant,
) -> Result<Response<ResponseBody>, HttpError> {
    let Running { stdout, exit } = running;
    let mut output = ReaderStream::with_capacity(stdout, 64 * 1024);
    let first = match output.next().await {
        Some(Ok(chunk)) => chunk,
        Some(Err(e)) => {
            return Err(HttpError::internal(format!(
                "cannot read git's output: {e}"
            )))
        }
        None => {
            let report = exit
                .await
                .map_err(|_| HttpError::internal("git's supervisor went away"))?;
            match report.stdin_failure {
                Some(StdinFailure::TooLarge) => {
                    return Err(HttpError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "the push is larger than the server allows (server.max_push_bytes)",
                    ))
                }
                Some(StdinFailure::Unreadable(e)) => {
                    return Err(HttpError::bad_request(format!(
                        "cannot read the request body: {e}"
                    )))
                }
                None => {}
            }
            if report.timed_out {
                return Err(HttpError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "git ran past server.request_timeout_secs and was stopped",
                ));
            }
            if !report.success {
                return Err(HttpError::internal(format!(
                    "git failed: {}",
                    report.headline()
                )));
            }
            Bytes::new()
        }
    };
    let chunks = stream::iter([Ok(preamble), Ok(first)])
        .chain(output)
        .try_filter(|b| futures_util::future::ready(!b.is_empty()))
        .map_ok(move |chunk| {
            let _held = &admitted;
            Frame::data(chunk)
        });
    with_git_headers(
        Response::new(http_body_util::StreamBody::new(chunks).boxed_unsync()),
        content_type,
    )
}

/// Set the content type and the cache headers of a Git response.
fn with_git_headers(
    mut response: Response<ResponseBody>,
    content_type: &str,
) -> Result<Response<ResponseBody>, HttpError> {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).map_err(|_| HttpError::internal("bad content type"))?,
    );
    no_cache(headers);
    Ok(response)
}

/// The cache headers git http-backend sends on every response.
pub fn no_cache(headers: &mut HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, max-age=0, must-revalidate"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::EXPIRES,
        HeaderValue::from_static("Fri, 01 Jan 1980 00:00:00 GMT"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(protocol: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "git-protocol",
            HeaderValue::from_str(protocol).expect("header"),
        );
        h
    }

    #[test]
    fn git_protocol_header_is_validated() {
        assert_eq!(
            git_protocol(&headers("version=2"))
                .ok()
                .flatten()
                .as_deref(),
            Some("version=2")
        );
        assert!(git_protocol(&headers("version=2:object-format=sha1")).is_ok());
        assert!(git_protocol(&headers("version=2;rm -rf")).is_err());
        assert!(git_protocol(&headers("=2")).is_err());
        assert!(git_protocol(&HeaderMap::new()).ok().flatten().is_none());
        assert!(is_v2(&Some("version=2".into())));
        assert!(!is_v2(&Some("version=1".into())));
    }

    #[test]
    fn info_refs_service_parsing() {
        assert_eq!(
            info_refs_service(Some("service=git-upload-pack")).ok(),
            Some(GitService::UploadPack)
        );
        assert_eq!(
            info_refs_service(Some("a=b&service=git-receive-pack")).ok(),
            Some(GitService::ReceivePack)
        );
        assert_eq!(
            info_refs_service(None).err().map(|e| e.status),
            Some(StatusCode::NOT_FOUND)
        );
        assert_eq!(
            info_refs_service(Some("service=git-foo"))
                .err()
                .map(|e| e.status),
            Some(StatusCode::FORBIDDEN)
        );
    }
}

/// How git answered one ref of a push the server made itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefReport {
    /// The ref.
    pub refname: String,
    /// `None` when it was accepted; otherwise git's (and cadgate's) reason.
    pub refused: Option<String>,
}

/// What a push the server made itself came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerPush {
    /// Each ref's verdict.
    pub reports: Vec<RefReport>,
    /// What the hook told the pusher (the `remote:` lines of a `git push`).
    pub messages: Vec<String>,
}

/// Push `commands` (`old new ref`, objects already in the repository) as
/// `user` with `role`, through exactly the path a client's push takes:
/// `receive-pack` with cadgate's hook judging every ref (and, in forward
/// mode, forwarding what it accepts). For the API's server-made drafts.
pub async fn push_as(
    state: &State,
    repo: &Repository,
    user: &str,
    role: Role,
    commands: &[(String, String, String)],
) -> Result<ServerPush, HttpError> {
    refresh(repo, GitService::ReceivePack).await?;
    let pusher = Pusher {
        name: user.to_string(),
        role,
    };
    let target = Target::authoring(
        state,
        repo,
        GitService::ReceivePack,
        &pusher,
        &HeaderMap::new(),
    )?;
    let mut body = Vec::new();
    for (i, (old, new, refname)) in commands.iter().enumerate() {
        let line = if i == 0 {
            format!("{old} {new} {refname}\0report-status atomic side-band-64k\n")
        } else {
            format!("{old} {new} {refname}\n")
        };
        body.extend_from_slice(pktline::line(&line).as_bytes());
    }
    body.extend_from_slice(b"0000");
    // An empty pack: the objects are in the repository already.
    let header = *b"PACK\x00\x00\x00\x02\x00\x00\x00\x00";
    body.extend_from_slice(&header);
    body.extend_from_slice(&sha1_of(&header));
    let running = state
        .runner
        .spawn(Invocation {
            args: target.args(GitService::ReceivePack, &[]),
            env: target.env.clone(),
            stdin: Stdin::Bytes(Bytes::from(body)),
            label: format!("receive-pack {} (server-made)", target.label),
        })
        .await?;
    let answer = collect(running).await?;
    // The hook has run: wake the event streams and webhooks.
    state.events.notify();
    // Side band 1 carries the report (itself pkt-lines), band 2 the hook's
    // messages, band 3 a fatal error.
    let (mut report, mut said) = (Vec::new(), Vec::new());
    for packet in pktline::data_lines(&answer) {
        match packet.split_first() {
            Some((1, data)) => report.extend_from_slice(data),
            Some((2, data)) => said.extend_from_slice(data),
            Some((3, data)) => {
                return Err(HttpError::internal(format!(
                    "git failed the server-made push: {}",
                    String::from_utf8_lossy(data).trim()
                )))
            }
            _ => {}
        }
    }
    let mut out = ServerPush {
        messages: String::from_utf8_lossy(&said)
            .lines()
            .map(|l| l.trim().trim_start_matches("cadgate: ").to_string())
            .filter(|l| !l.is_empty())
            .collect(),
        ..ServerPush::default()
    };
    for line in pktline::data_lines(&report) {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end();
        if let Some(refname) = line.strip_prefix("ok ") {
            out.reports.push(RefReport {
                refname: refname.to_string(),
                refused: None,
            });
        } else if let Some(rest) = line.strip_prefix("ng ") {
            let (refname, reason) = rest.split_once(' ').unwrap_or((rest, "refused"));
            out.reports.push(RefReport {
                refname: refname.to_string(),
                refused: Some(reason.to_string()),
            });
        } else if let Some(status) = line.strip_prefix("unpack ") {
            if status != "ok" {
                return Err(HttpError::internal(format!(
                    "git could not take the objects: {status}"
                )));
            }
        }
    }
    if out.reports.is_empty() {
        return Err(HttpError::internal(
            "git gave no report for the server-made push",
        ));
    }
    Ok(out)
}

fn sha1_of(data: &[u8]) -> [u8; 20] {
    use sha1::Digest as _;
    sha1::Sha1::digest(data).into()
}
