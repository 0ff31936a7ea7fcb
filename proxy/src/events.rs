//! Lifecycle events out of the server: `GET /api/v1/events` (server-sent
//! events) and the configured `[[webhook]]`s.
//!
//! The hooks append one JSON line per lifecycle event to each repository's
//! `cadgate-events.log` under the lifecycle lock ([`cadgate_hooks::events`]);
//! this module only reads those files. It learns of new lines promptly from
//! the pushes it serves ([`Hub::notify`], called when a receive-pack response
//! has been sent) and polls every second as a fallback for pushes it did not
//! serve (hook mode on another Git host, other replicas).
//!
//! SSE: `id: <repository>:<seq>`, `event: <type>`, `data: <json>`; a comment
//! keep-alive every 15 s. `Last-Event-ID` resumes after that event;
//! `?since=N` starts after seq N of each repository (`since=0`: from the
//! beginning); with neither, the stream starts now.
//!
//! Webhooks: one delivery task per webhook, events in order one at a time,
//! retried with exponential backoff (1 s doubling to 60 s) until the receiver
//! answers 2xx, never skipped; the cursor (last delivered seq per repository)
//! is kept under `<data_dir>/webhooks/<id>/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cadgate_config::{Config, Role, WebhookConfig};
use cadgate_hooks::events::{log_path, read_at_most, read_from, Event};
use hmac::{Hmac, Mac};
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};

use crate::auth;
use crate::error::HttpError;
use crate::observe::Exchange;
use crate::service::{ResponseBody, State};

/// How often the logs are read when nothing said they changed.
const POLL: Duration = Duration::from_secs(1);
/// How often an idle SSE stream gets a comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The first retry delay of a failed webhook delivery.
const BACKOFF_START: Duration = Duration::from_secs(1);
/// The longest retry delay.
const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// How long one webhook request may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a log is read at once.
const READ_CHUNK: u64 = 1 << 20;

/// Where event readers learn that a log may have grown, and that the server
/// is stopping.
pub struct Hub {
    /// Repository name → its event log.
    logs: HashMap<String, PathBuf>,
    /// Bumped after every push this server served.
    changed: watch::Sender<u64>,
    /// Set when the server stops: streams end, deliveries stop.
    closing: watch::Sender<bool>,
}

impl Hub {
    /// The hub for the repositories at `(name, git_dir)`.
    pub fn new<'a>(repositories: impl IntoIterator<Item = (&'a str, &'a Path)>) -> Self {
        Self {
            logs: repositories
                .into_iter()
                .map(|(name, dir)| (name.to_string(), log_path(dir)))
                .collect(),
            changed: watch::channel(0).0,
            closing: watch::channel(false).0,
        }
    }

    /// A push finished: readers look at the logs now.
    pub fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The server is stopping: end every stream and delivery.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    fn log(&self, repository: &str) -> Option<&PathBuf> {
        self.logs.get(repository)
    }
}

/// Wrap a receive-pack response so that the hub is notified once it has been
/// sent (or dropped): by then the hook has written the push's events.
pub fn notify_when_done(
    response: Response<ResponseBody>,
    hub: &Arc<Hub>,
) -> Response<ResponseBody> {
    struct Done(Arc<Hub>);
    impl Drop for Done {
        fn drop(&mut self) {
            self.0.notify();
        }
    }
    let done = Done(hub.clone());
    response.map(move |body| {
        body.map_frame(move |frame| {
            let _keep = &done;
            frame
        })
        .boxed_unsync()
    })
}

/// One repository's position in its log.
struct Cursor {
    repository: String,
    path: PathBuf,
    /// Byte offset of the next unread line.
    offset: u64,
    /// Events with a seq up to this one were seen already.
    after: u64,
    /// The last read stopped before the end of the log.
    behind: bool,
}

impl Cursor {
    /// Start after seq `after` (scanning from the beginning of the log).
    fn after(repository: &str, path: &Path, after: u64) -> Self {
        Self {
            repository: repository.to_string(),
            path: path.to_path_buf(),
            offset: 0,
            after,
            behind: false,
        }
    }

    /// Start at the log's current end.
    fn now(repository: &str, path: &Path) -> std::io::Result<Self> {
        let mut cursor = Self::after(repository, path, 0);
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        // Begin a little before the end to land on a line boundary; what is
        // read there is only used to find the last seq.
        cursor.offset = len.saturating_sub(64 * 1024);
        let (events, offset) = read_from(path, cursor.offset)?;
        cursor.offset = offset;
        cursor.after = events.last().map_or(0, |e| e.seq);
        Ok(cursor)
    }

    /// The events appended since the last call, up to about a megabyte of
    /// log at a time; `self.behind` tells whether more is waiting.
    fn read(&mut self) -> std::io::Result<Vec<Event>> {
        let (events, offset) = read_at_most(&self.path, self.offset, READ_CHUNK)?;
        // The read stopped at the limit rather than at the end of the log.
        self.behind = offset > self.offset
            && std::fs::metadata(&self.path).is_ok_and(|m| m.len() > self.offset + READ_CHUNK);
        if offset < self.offset {
            // The log was replaced by a shorter one: read it again from the start.
            self.offset = 0;
            return Ok(Vec::new());
        }
        self.offset = offset;
        let after = self.after;
        let fresh: Vec<Event> = events.into_iter().filter(|e| e.seq > after).collect();
        if let Some(last) = fresh.last() {
            self.after = last.seq;
        }
        Ok(fresh)
    }
}

/// `GET /api/v1/events[?repository=R][&since=N]`.
pub async fn serve(
    state: &State,
    request: &Request<Incoming>,
    exchange: &Arc<Exchange>,
) -> Result<Response<ResponseBody>, HttpError> {
    if request.method() != http::Method::GET {
        return Err(HttpError::method_not_allowed("GET").json("method_not_allowed"));
    }
    let json = |e: HttpError| {
        let code = match e.status {
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            _ => "bad_request",
        };
        e.json(code)
    };
    let principal = auth::authenticate(&state.config, request.headers())
        .map_err(json)?
        .ok_or_else(|| {
            json(HttpError::unauthorized(
                "the event stream needs a user name and token (HTTP Basic)",
            ))
        })?;
    exchange.set_user(&principal.name);
    let query = Query::parse(request.uri().query().unwrap_or(""))
        .map_err(|m| json(HttpError::bad_request(m)))?;
    let repositories: Vec<String> = match &query.repository {
        Some(name) => {
            if state.events.log(name).is_none() {
                return Err(json(auth::unknown_repository(name)));
            }
            exchange.set_repository(name);
            auth::authorize(
                &state.config,
                &principal,
                name,
                Role::Reader,
                "reading its events",
            )
            .map_err(json)?;
            vec![name.clone()]
        }
        None => state
            .config
            .repositories
            .iter()
            .map(|r| r.name.clone())
            .filter(|name| {
                auth::authorize(&state.config, &principal, name, Role::Reader, "").is_ok()
            })
            .collect(),
    };
    // An id naming a repository the user cannot read (or none at all) is
    // treated as unknown: it must not tell whether that event exists or
    // when it happened.
    let resume = last_event_id(request.headers()).filter(|(repo, _)| {
        state.events.log(repo).is_some()
            && auth::authorize(&state.config, &principal, repo, Role::Reader, "").is_ok()
    });
    let mut cursors = Vec::new();
    for name in &repositories {
        let Some(path) = state.events.log(name) else {
            continue;
        };
        let cursor = match (&resume, query.since) {
            (Some((repo, seq)), _) if repo == name => Cursor::after(name, path, *seq),
            (Some((repo, seq)), _) => {
                // Another repository's id: resume this one from the time of
                // that event (an event of the same second may repeat).
                // An id this server does not know resumes from now.
                let first = state
                    .events
                    .log(repo)
                    .and_then(|p| event_time(p, *seq))
                    .and_then(|time| first_seq_at(path, time));
                match first {
                    Some(first) => Cursor::after(name, path, first.saturating_sub(1)),
                    None => Cursor::now(name, path).map_err(|e| {
                        HttpError::internal(format!("cannot read the event log: {e}"))
                            .json("internal")
                    })?,
                }
            }
            (None, Some(since)) => Cursor::after(name, path, since),
            (None, None) => Cursor::now(name, path).map_err(|e| {
                HttpError::internal(format!("cannot read the event log: {e}")).json("internal")
            })?,
        };
        cursors.push(cursor);
    }
    let (sender, receiver) = mpsc::channel::<Bytes>(16);
    let changed = state.events.changed.subscribe();
    let closing = state.events.closing.subscribe();
    tokio::spawn(stream_events(cursors, sender, changed, closing));
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, std::io::Error>(Frame::data(chunk)), receiver))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// Feed one SSE client until it goes away or the server stops.
async fn stream_events(
    mut cursors: Vec<Cursor>,
    sender: mpsc::Sender<Bytes>,
    mut changed: watch::Receiver<u64>,
    mut closing: watch::Receiver<bool>,
) {
    // A first comment so the client sees the stream is open.
    if sender
        .send(Bytes::from_static(b": cadgate events\n\n"))
        .await
        .is_err()
    {
        return;
    }
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut idle_since = tokio::time::Instant::now();
    loop {
        for cursor in &mut cursors {
            let events = match cursor.read() {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(repository = %cursor.repository, error = %e, "cannot read the event log");
                    continue;
                }
            };
            for event in events {
                if sender.send(sse_frame(&event)).await.is_err() {
                    return;
                }
                idle_since = tokio::time::Instant::now();
            }
        }
        if cursors.iter().any(|c| c.behind) {
            continue;
        }
        if idle_since.elapsed() >= KEEP_ALIVE {
            if sender
                .send(Bytes::from_static(b": keep-alive\n\n"))
                .await
                .is_err()
            {
                return;
            }
            idle_since = tokio::time::Instant::now();
        }
        if *closing.borrow() {
            return;
        }
        tokio::select! {
            _ = poll.tick() => {}
            r = changed.changed() => if r.is_err() { return },
            _ = closing.changed() => return,
            () = sender.closed() => return,
        }
    }
}

/// One event as an SSE frame.
fn sse_frame(event: &Event) -> Bytes {
    let data = serde_json::to_string(event).unwrap_or_default();
    Bytes::from(format!(
        "id: {}:{}\nevent: {}\ndata: {data}\n\n",
        event.repository, event.seq, event.kind
    ))
}

/// `Last-Event-ID: <repository>:<seq>`.
fn last_event_id(headers: &HeaderMap) -> Option<(String, u64)> {
    let value = headers.get("last-event-id")?.to_str().ok()?.trim();
    let (repository, seq) = value.rsplit_once(':')?;
    Some((repository.to_string(), seq.parse().ok()?))
}

/// The first event of the log at `path` that `wanted` picks, read a piece
/// at a time.
fn find_event(path: &Path, wanted: impl Fn(&Event) -> bool) -> Option<Event> {
    let mut offset = 0;
    loop {
        let (events, next) = read_at_most(path, offset, READ_CHUNK).ok()?;
        if let Some(event) = events.into_iter().find(|e| wanted(e)) {
            return Some(event);
        }
        if next <= offset {
            return None;
        }
        offset = next;
    }
}

/// The time of event `seq` in the log at `path`.
fn event_time(path: &Path, seq: u64) -> Option<u64> {
    find_event(path, |e| e.seq == seq).map(|e| e.time)
}

/// The seq of the first event at or after `time`.
fn first_seq_at(path: &Path, time: u64) -> Option<u64> {
    find_event(path, |e| e.time >= time).map(|e| e.seq)
}

/// The events endpoint's query string.
#[derive(Debug, Default, PartialEq, Eq)]
struct Query {
    repository: Option<String>,
    since: Option<u64>,
}

impl Query {
    fn parse(query: &str) -> Result<Self, String> {
        let mut out = Query::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value).ok_or_else(|| {
                format!("the query parameter {key} is not valid percent-encoded UTF-8")
            })?;
            match key {
                "repository" => out.repository = Some(value),
                "since" => {
                    out.since = Some(value.parse().map_err(|_| {
                        format!("since={value:?} is not a whole number (an event seq; 0 = from the beginning)")
                    })?)
                }
                other => {
                    return Err(format!(
                        "unknown query parameter {other:?}; use repository= and since="
                    ))
                }
            }
        }
        Ok(out)
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Why webhooks could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The secret is not where the config says.
    #[error(
        "webhook {url}: its secret cannot be read ({detail}); set it or fix [[webhook]] secret"
    )]
    Secret {
        /// The webhook's URL.
        url: String,
        /// What is wrong (never the secret).
        detail: String,
    },
    /// Its TLS settings cannot be used.
    #[error("webhook {url}: {detail}; fix [[webhook]] ca_file")]
    Tls {
        /// The webhook's URL.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// The cursor directory cannot be used.
    #[error("cannot use {}: {source}", path.display())]
    Cursor {
        /// The directory or file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A webhook ready to deliver.
pub struct Webhook {
    config: WebhookConfig,
    client: Client,
    secret: Option<Vec<u8>>,
    /// `<data_dir>/webhooks/<id>/`.
    dir: PathBuf,
    /// Where each repository starts: the last delivered seq.
    cursors: Vec<(String, PathBuf, u64)>,
}

/// Prepare the configured webhooks: read their secrets and cursors. A
/// webhook seen for the first time starts at the current end of each log.
pub fn prepare(config: &Config, hub: &Hub) -> Result<Vec<Webhook>, WebhookError> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for webhook in &config.webhooks {
        let secret = webhook
            .read_secret()
            .map_err(|detail| WebhookError::Secret {
                url: webhook.url.clone(),
                detail,
            })?
            .map(String::into_bytes);
        let mut id = hex::encode(&Sha256::digest(webhook.url.as_bytes())[..8]);
        let n = seen.entry(id.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            id = format!("{id}-{n}");
        }
        let dir = config.server.data_dir.join("webhooks").join(&id);
        std::fs::create_dir_all(&dir).map_err(|source| WebhookError::Cursor {
            path: dir.clone(),
            source,
        })?;
        let _ = std::fs::write(dir.join("url"), format!("{}\n", webhook.url));
        let mut cursors = Vec::new();
        for repository in &config.repositories {
            if !webhook.wants_repository(&repository.name) {
                continue;
            }
            let Some(log) = hub.log(&repository.name) else {
                continue;
            };
            let file = dir.join(cursor_file(&repository.name));
            let seq = match std::fs::read_to_string(&file) {
                Ok(text) => text.trim().parse().unwrap_or(0),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let start = Cursor::now(&repository.name, log)
                        .map(|c| c.after)
                        .unwrap_or(0);
                    write_cursor(&file, start).map_err(|source| WebhookError::Cursor {
                        path: file.clone(),
                        source,
                    })?;
                    start
                }
                Err(source) => return Err(WebhookError::Cursor { path: file, source }),
            };
            cursors.push((repository.name.clone(), log.clone(), seq));
        }
        let client = client_for(webhook).map_err(|detail| WebhookError::Tls {
            url: webhook.url.clone(),
            detail,
        })?;
        out.push(Webhook {
            config: webhook.clone(),
            client,
            secret,
            dir,
            cursors,
        });
    }
    Ok(out)
}

/// A repository name as a file name: `/` and `%` escaped.
fn cursor_file(repository: &str) -> String {
    format!("{}.seq", repository.replace('%', "%25").replace('/', "%2F"))
}

fn write_cursor(file: &Path, seq: u64) -> std::io::Result<()> {
    let temporary = file.with_extension("seq.tmp");
    std::fs::write(&temporary, format!("{seq}\n"))?;
    std::fs::rename(&temporary, file)
}

/// Start one delivery task per webhook.
pub fn start_deliveries(webhooks: Vec<Webhook>, hub: &Hub) -> Vec<tokio::task::JoinHandle<()>> {
    webhooks
        .into_iter()
        .map(|webhook| {
            let changed = hub.changed.subscribe();
            let closing = hub.closing.subscribe();
            tokio::spawn(deliver_all(webhook, changed, closing))
        })
        .collect()
}

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// The HTTP(S) client of one webhook: the public web roots, plus the
/// certificates of its `ca_file`.
fn client_for(webhook: &WebhookConfig) -> Result<Client, String> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(file) = &webhook.ca_file {
        let shown = file.display();
        let mut added = 0;
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(file)
            .map_err(|e| format!("cannot read ca_file {shown}: {e}"))?
        {
            let cert = cert.map_err(|e| format!("ca_file {shown}: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("ca_file {shown}: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("ca_file {shown} holds no PEM certificate"));
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector),
    )
}

/// Deliver one webhook's events forever, in order.
async fn deliver_all(
    webhook: Webhook,
    mut changed: watch::Receiver<u64>,
    mut closing: watch::Receiver<bool>,
) {
    let client = webhook.client.clone();
    let mut cursors: Vec<(Cursor, PathBuf)> = webhook
        .cursors
        .iter()
        .map(|(name, log, seq)| {
            (
                Cursor::after(name, log, *seq),
                webhook.dir.join(cursor_file(name)),
            )
        })
        .collect();
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        for (cursor, file) in &mut cursors {
            let events = match cursor.read() {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(repository = %cursor.repository, error = %e, "cannot read the event log");
                    continue;
                }
            };
            for event in events {
                if webhook.config.wants_event(&event.kind) {
                    if !deliver(&client, &webhook, &event, &mut closing).await {
                        return;
                    }
                    if let Err(e) = write_cursor(file, event.seq) {
                        tracing::warn!(url = %webhook.config.url, error = %e, "cannot save the webhook's cursor; after a restart this event is delivered again");
                    }
                }
            }
        }
        if *closing.borrow() {
            return;
        }
        if cursors.iter().any(|(c, _)| c.behind) {
            continue;
        }
        tokio::select! {
            _ = poll.tick() => {}
            r = changed.changed() => if r.is_err() { return },
            _ = closing.changed() => return,
        }
    }
}

/// POST one event until the receiver answers 2xx. False: the server stops.
async fn deliver(
    client: &Client,
    webhook: &Webhook,
    event: &Event,
    closing: &mut watch::Receiver<bool>,
) -> bool {
    let body = Bytes::from(serde_json::to_vec(event).unwrap_or_default());
    let signature = webhook.secret.as_deref().map(|secret| sign(secret, &body));
    let delivery = format!("{}:{}", event.repository, event.seq);
    let mut delay = BACKOFF_START;
    loop {
        let mut builder = Request::post(webhook.config.url.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                concat!("cadgate/", env!("CARGO_PKG_VERSION")),
            )
            .header("x-cadgate-event", event.kind.as_str())
            .header("x-cadgate-delivery", delivery.as_str());
        if let Some(signature) = &signature {
            builder = builder.header("x-cadgate-signature-256", signature.as_str());
        }
        let failure = match builder.body(Full::new(body.clone())) {
            Err(e) => format!("cannot build the request: {e}"),
            Ok(request) => {
                match tokio::time::timeout(DELIVERY_TIMEOUT, client.request(request)).await {
                    Err(_) => "no answer in time".to_string(),
                    Ok(Err(e)) => format!("{e}"),
                    Ok(Ok(response)) => {
                        let status = response.status();
                        // Read the answer so the connection can be reused.
                        let _ =
                            tokio::time::timeout(DELIVERY_TIMEOUT, response.into_body().collect())
                                .await;
                        if status.is_success() {
                            tracing::debug!(url = %webhook.config.url, %delivery, "webhook delivered");
                            return true;
                        }
                        format!("answered {status}")
                    }
                }
            }
        };
        tracing::warn!(url = %webhook.config.url, %delivery, error = %failure, retry_in = delay.as_secs(), "webhook delivery failed; retrying");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = closing.changed() => return false,
        }
        if *closing.borrow() {
            return false;
        }
        delay = (delay * 2).min(BACKOFF_CAP);
    }
}

/// `sha256=<hex HMAC-SHA256 of body>`, GitHub's scheme.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length, so this never fails.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_github() {
        // The example of GitHub's webhook documentation.
        assert_eq!(
            sign(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn parses_the_query() {
        assert_eq!(Query::parse("").expect("empty"), Query::default());
        let q = Query::parse("repository=org%2Fblue&since=0").expect("valid");
        assert_eq!(q.repository.as_deref(), Some("org/blue"));
        assert_eq!(q.since, Some(0));
        assert!(Query::parse("since=x").is_err());
        assert!(Query::parse("colour=red").is_err());
    }

    #[test]
    fn reads_last_event_id() {
        let mut headers = HeaderMap::new();
        headers.insert("last-event-id", HeaderValue::from_static("org/blue:12"));
        assert_eq!(last_event_id(&headers), Some(("org/blue".into(), 12)));
        headers.insert("last-event-id", HeaderValue::from_static("nonsense"));
        assert_eq!(last_event_id(&headers), None);
    }
}
