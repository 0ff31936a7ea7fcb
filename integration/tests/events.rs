//! Lifecycle events end to end: real pushes through a running cadgate, read
//! back by a real `GET /api/v1/events` connection (server-sent events) and by
//! a webhook receiver started here, which checks each delivery's HMAC.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cadgate_integration::scenarios::{self, cadgate_config, CadgateServer, Lab, Transport, ROOT};
use cadgate_integration::{basic, Server, TestUser};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

const SECRET: &str = "webhook-test-secret";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    path: String,
    event: String,
    id: String,
    signature_ok: bool,
    body: Value,
}

/// A webhook receiver: a plain HTTP/1.1 server on a loopback port that
/// records every POST (keep-alive connections included) and answers 200.
struct Receiver {
    addr: String,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    fn start() -> Self {
        Self::on(TcpListener::bind("127.0.0.1:0").expect("bind the receiver"))
    }

    fn on(listener: TcpListener) -> Self {
        let addr = listener.local_addr().expect("address").to_string();
        let deliveries: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let sink = deliveries.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let sink = sink.clone();
                std::thread::spawn(move || serve_connection(stream, &sink));
            }
        });
        Self { addr, deliveries }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn deliveries(&self, path: &str) -> Vec<Delivery> {
        self.deliveries
            .lock()
            .expect("lock")
            .iter()
            .filter(|d| d.path == path)
            .cloned()
            .collect()
    }

    /// Wait until `path` got `count` deliveries.
    fn wait_for(&self, path: &str, count: usize, within: Duration) -> Vec<Delivery> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.deliveries(path);
            if got.len() >= count || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn serve_connection(stream: TcpStream, sink: &Mutex<Vec<Delivery>>) {
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let length: usize = header("content-length").parse().unwrap_or(0);
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("hmac key");
        mac.update(&body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let delivery = Delivery {
            path,
            event: header("x-cadgate-event"),
            id: header("x-cadgate-delivery"),
            signature_ok: header("x-cadgate-signature-256") == expected,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        };
        sink.lock().expect("lock").push(delivery);
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

/// One server-sent event.
#[derive(Debug, Clone)]
struct SseEvent {
    id: String,
    event: String,
    data: Value,
}

/// A client of `GET /api/v1/events` on a real connection, read by a thread.
struct SseClient {
    events: Arc<Mutex<Vec<SseEvent>>>,
    stream: TcpStream,
}

impl SseClient {
    /// Connect and wait until the stream is open (status and first comment).
    fn connect(server: &Server, path: &str, headers: &[(&str, &str)]) -> Self {
        let mut stream = TcpStream::connect(server.addr()).expect("connect");
        let mut head = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n", server.addr());
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("Accept: text/event-stream\r\n\r\n");
        stream.write_all(head.as_bytes()).expect("send");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut status = String::new();
        reader.read_line(&mut status).expect("status line");
        assert!(status.contains(" 200 "), "event stream answered {status}");
        let mut chunked = false;
        let mut content_type = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header");
            let line = line.trim_end().to_ascii_lowercase();
            if line.is_empty() {
                break;
            }
            if line.starts_with("transfer-encoding:") && line.contains("chunked") {
                chunked = true;
            }
            if let Some(v) = line.strip_prefix("content-type:") {
                content_type = v.trim().to_string();
            }
        }
        assert_eq!(content_type, "text/event-stream");
        assert!(chunked, "an HTTP/1.1 event stream is chunked");
        let events: Arc<Mutex<Vec<SseEvent>>> = Arc::default();
        let (opened, is_open) = std::sync::mpsc::channel();
        let sink = events.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            loop {
                // One chunk: its size line, the data, CRLF.
                let mut size = String::new();
                if reader.read_line(&mut size).unwrap_or(0) == 0 {
                    return;
                }
                let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
                    return;
                };
                if size == 0 {
                    return;
                }
                let mut data = vec![0u8; size + 2];
                if reader.read_exact(&mut data).is_err() {
                    return;
                }
                text.push_str(&String::from_utf8_lossy(&data[..size]));
                while let Some(end) = text.find("\n\n") {
                    let block: String = text.drain(..end + 2).collect();
                    let mut event = SseEvent {
                        id: String::new(),
                        event: String::new(),
                        data: Value::Null,
                    };
                    let mut comment = false;
                    for line in block.lines() {
                        if line.starts_with(':') {
                            comment = true;
                        } else if let Some(v) = line.strip_prefix("id: ") {
                            event.id = v.to_string();
                        } else if let Some(v) = line.strip_prefix("event: ") {
                            event.event = v.to_string();
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            event.data = serde_json::from_str(v).unwrap_or(Value::Null);
                        }
                    }
                    if comment {
                        let _ = opened.send(());
                    } else {
                        sink.lock().expect("lock").push(event);
                    }
                }
            }
        });
        is_open
            .recv_timeout(Duration::from_secs(10))
            .expect("the stream's opening comment");
        Self { events, stream }
    }

    fn wait_for(&self, count: usize, within: Duration) -> Vec<SseEvent> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.events.lock().expect("lock").clone();
            if got.len() >= count || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SseClient {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// The flow every test drives: (type, user, revision).
const FLOW: &[(&str, &str, u64)] = &[
    ("created", "alice", 0),
    ("updated", "alice", 0),
    ("proposed", "alice", 0),
    ("rejected", "bob", 0),
    ("proposed", "alice", 0),
    ("published", "bob", 1),
    ("deletion-proposed", "alice", 1),
    ("deleted", "bob", 1),
];

/// draft → update → propose → reject → propose → publish (v1) → propose
/// deletion → delete, with real pushes; the commits each event must name.
fn drive_lifecycle(lab: &Lab, f: &str) -> Vec<String> {
    let first = lab.draft("alice", f, "ws", "n: 1\n");
    let second = lab.draft("alice", f, "ws", "n: 2\n");
    let proposed = lab.propose("alice", f, "ws");
    assert_eq!(proposed, second);
    lab.client("bob");
    lab.accept(
        "bob",
        &[&format!("{second}:refs/heads/drafts/{f}/ws")],
        "rejected the proposal",
    );
    lab.propose("alice", f, "ws");
    assert_eq!(lab.publish("bob", f, "ws"), 1);
    let v1 = lab
        .server_ref(&format!("refs/tags/{f}/v1"))
        .expect("the v1 tag");
    lab.propose_deletion("alice", f, 1);
    lab.client("bob");
    lab.accept(
        "bob",
        &[&format!(":refs/tags/{f}/v1")],
        &format!("deleted {f} v1"),
    );
    vec![
        first,
        second.clone(),
        second.clone(),
        second.clone(),
        second,
        v1.clone(),
        v1.clone(),
        v1,
    ]
}

/// Check one event body against the flow's step `i`.
fn check_event(body: &Value, i: usize, repository: &str, f: &str, commits: &[String]) {
    let (kind, user, revision) = FLOW[i];
    let context = format!("event {i}: {body}");
    assert_eq!(body["seq"], i as u64 + 1, "{context}");
    assert_eq!(body["type"], kind, "{context}");
    assert_eq!(body["repository"], repository, "{context}");
    assert_eq!(body["package"], f, "{context}");
    assert_eq!(body["workspace"], "ws", "{context}");
    assert_eq!(body["revision"], revision, "{context}");
    assert_eq!(body["user"], user, "{context}");
    assert_eq!(body["commit"], commits[i].as_str(), "{context}");
    assert!(body["time"].as_u64().is_some_and(|t| t > 0), "{context}");
}

fn webhook_config(receiver_url: &str, secret_file: &Path, extra: &str) -> String {
    format!(
        "[[webhook]]\nurl = \"{receiver_url}\"\nsecret = \"file:{}\"\n{extra}\n",
        secret_file.display()
    )
}

fn secret_file(dir: &Path) -> PathBuf {
    let file = dir.join("webhook-secret");
    std::fs::write(&file, format!("{SECRET}\n")).expect("write the secret");
    file
}

#[test]
fn sse_and_webhooks_see_every_lifecycle_event_once_in_order() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let secret = secret_file(scratch.path());
    let receiver = Receiver::start();
    let config = format!(
        "{}{}{}",
        cadgate_config(),
        webhook_config(&receiver.url("/all"), &secret, ""),
        webhook_config(
            &receiver.url("/published"),
            &secret,
            "events = [\"published\", \"deleted\"]\nrepositories = [\"root\"]"
        ),
    );
    let data = scratch.path().join("data");
    let hosted = CadgateServer {
        server: Server::start_with_data(&config, &data),
    };
    let alice = TestUser::new("alice");
    let rita = TestUser::new("rita");
    let sse = SseClient::connect(
        &hosted.server,
        "/api/v1/events?repository=root",
        &[("Authorization", &basic(&rita))],
    );
    // Unfiltered: every repository the user may read.
    let sse_all = SseClient::connect(
        &hosted.server,
        "/api/v1/events",
        &[("Authorization", &basic(&alice))],
    );
    let lab = Lab::new(&hosted, ROOT, "evflow");
    let f = lab.f();
    let started = Instant::now();
    let commits = drive_lifecycle(&lab, &f);
    let pushes = started.elapsed();

    let within = Duration::from_secs(30);
    for stream in [&sse, &sse_all] {
        let events = stream.wait_for(FLOW.len(), within);
        assert_eq!(events.len(), FLOW.len(), "SSE events: {events:#?}");
        for (i, event) in events.iter().enumerate() {
            assert_eq!(event.id, format!("root:{}", i + 1));
            assert_eq!(event.event, FLOW[i].0);
            check_event(&event.data, i, "root", &f, &commits);
        }
    }
    let all = receiver.wait_for("/all", FLOW.len(), within);
    assert_eq!(all.len(), FLOW.len(), "webhook deliveries: {all:#?}");
    for (i, delivery) in all.iter().enumerate() {
        assert!(delivery.signature_ok, "bad signature on {delivery:?}");
        assert_eq!(delivery.event, FLOW[i].0);
        assert_eq!(delivery.id, format!("root:{}", i + 1));
        check_event(&delivery.body, i, "root", &f, &commits);
    }
    let published = receiver.wait_for("/published", 2, within);
    let kinds: Vec<&str> = published.iter().map(|d| d.event.as_str()).collect();
    assert_eq!(kinds, ["published", "deleted"]);
    assert_eq!(published[0].id, "root:6");
    assert_eq!(published[1].body["revision"], 1);

    // Nothing more arrives: exactly once.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(sse.wait_for(0, Duration::ZERO).len(), FLOW.len());
    assert_eq!(sse_all.wait_for(0, Duration::ZERO).len(), FLOW.len());
    assert_eq!(receiver.deliveries("/all").len(), FLOW.len());
    assert_eq!(receiver.deliveries("/published").len(), 2);

    // How soon a push's event reaches the stream and the webhook.
    let before = Instant::now();
    lab.draft("alice", &f, "late", "n: 3\n");
    let push_done = before.elapsed();
    let streamed = sse.wait_for(FLOW.len() + 1, within);
    let sse_latency = before.elapsed();
    assert_eq!(streamed.len(), FLOW.len() + 1);
    assert_eq!(streamed[FLOW.len()].event, "created");
    let delivered = receiver.wait_for("/all", FLOW.len() + 1, within);
    let webhook_latency = before.elapsed();
    assert_eq!(delivered.len(), FLOW.len() + 1);
    assert_eq!(delivered[FLOW.len()].body["workspace"], "late");
    let total = FLOW.len() + 1;

    // Resuming: Last-Event-ID continues after that event; since=0 replays all.
    let resumed = SseClient::connect(
        &hosted.server,
        "/api/v1/events?repository=root",
        &[
            ("Authorization", &basic(&rita)),
            ("Last-Event-ID", "root:5"),
        ],
    );
    let ids: Vec<String> = resumed
        .wait_for(4, within)
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, ["root:6", "root:7", "root:8", "root:9"]);
    let replay = SseClient::connect(
        &hosted.server,
        "/api/v1/events?repository=root&since=0",
        &[("Authorization", &basic(&rita))],
    );
    assert_eq!(replay.wait_for(total, within).len(), total);

    // The log on disk is what was streamed.
    let log = std::fs::read_to_string(hosted.repository_dir("root").join("cadgate-events.log"))
        .expect("the event log");
    assert_eq!(log.lines().count(), total);
    eprintln!(
        "events: {} pushes in {pushes:?}; one more (commit, fetch, push) returned after {push_done:?}, its event was on the SSE stream by {sse_latency:?} and at the webhook by {webhook_latency:?}",
        FLOW.len(),
    );
    // Open event streams do not hold up a graceful stop.
    let mut server = hosted.server;
    server.terminate();
    assert_eq!(server.wait(Duration::from_secs(20)), Some(0));
    drop((sse, sse_all, resumed, replay));
}

#[test]
fn a_receiver_that_was_down_gets_every_event_in_order_and_restarts_resume() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let secret = secret_file(scratch.path());
    // A free port with nobody listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}/down");
    let config = format!("{}{}", cadgate_config(), webhook_config(&url, &secret, ""));
    let data = scratch.path().join("data");
    let hosted = CadgateServer {
        server: Server::start_with_data(&config, &data),
    };
    let lab = Lab::new(&hosted, ROOT, "evdown");
    let f = lab.f();
    let commits = drive_lifecycle(&lab, &f);
    // Refused deliveries were retried (the server says so in its log).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !hosted.server.stderr().contains("webhook delivery failed") {
        assert!(Instant::now() < deadline, "no failed delivery logged");
        std::thread::sleep(Duration::from_millis(50));
    }
    let receiver = Receiver::on(TcpListener::bind(("127.0.0.1", port)).expect("rebind"));
    let started = Instant::now();
    // Backoff is capped at 60 s; after ~10 s of pushes it is at most 16 s.
    let got = receiver.wait_for("/down", FLOW.len(), Duration::from_secs(90));
    let recovery = started.elapsed();
    assert_eq!(got.len(), FLOW.len(), "deliveries: {got:#?}");
    for (i, delivery) in got.iter().enumerate() {
        assert!(delivery.signature_ok);
        assert_eq!(delivery.event, FLOW[i].0);
        check_event(&delivery.body, i, "root", &f, &commits);
    }
    eprintln!("events: the recovered receiver had every event {recovery:?} after it came up");

    // A restart resumes from the saved cursor: only new events are sent.
    let mut server = hosted.server;
    server.terminate();
    assert_eq!(server.wait(Duration::from_secs(20)), Some(0));
    drop(server);
    let hosted = CadgateServer {
        server: Server::start_with_data(&config, &data),
    };
    let lab = Lab::new(&hosted, ROOT, "evdown");
    lab.draft("alice", &f, "again", "n: 9\n");
    let got = receiver.wait_for("/down", FLOW.len() + 1, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1500));
    let got_after = receiver.deliveries("/down");
    assert_eq!(got_after.len(), FLOW.len() + 1, "deliveries: {got:#?}");
    let last = &got_after[FLOW.len()];
    assert_eq!(last.event, "created");
    assert_eq!(last.body["seq"], FLOW.len() as u64 + 1);
    assert_eq!(last.body["workspace"], "again");
}

#[test]
fn the_event_stream_refuses_bad_requests_with_json_errors() {
    let outsider = TestUser::new("outsider");
    let host = scenarios::CadgateServer::start(&outsider.config(&["reader"], &["nested"]));
    let server = &host.server;
    let rita = TestUser::new("rita");
    let auth = basic(&rita);
    let json = |status: u16, path: &str, headers: &[(&str, &str)], code: &str| {
        let response = server.request("GET", path, headers, b"");
        assert_eq!(response.status, status, "{path}: {}", response.text());
        assert_eq!(response.header("content-type"), Some("application/json"));
        let body: Value = serde_json::from_slice(&response.body).expect("a JSON error");
        assert_eq!(body["code"], code, "{body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
        response
    };
    let anonymous = json(401, "/api/v1/events", &[], "unauthorized");
    assert!(anonymous.header("www-authenticate").is_some());
    json(
        401,
        "/api/v1/events",
        &[("Authorization", "Basic cml0YTp3cm9uZw==")],
        "unauthorized",
    );
    json(
        404,
        "/api/v1/events?repository=nope",
        &[("Authorization", &auth)],
        "not_found",
    );
    json(
        400,
        "/api/v1/events?since=yesterday",
        &[("Authorization", &auth)],
        "bad_request",
    );
    json(
        400,
        "/api/v1/events?colour=red",
        &[("Authorization", &auth)],
        "bad_request",
    );
    let post = server.request("POST", "/api/v1/events", &[("Authorization", &auth)], b"");
    assert_eq!(post.status, 405);
    // A repository the user has no role on answers like a missing one
    // (issue 12, finding 9).
    let outsider_auth = basic(&outsider);
    json(
        404,
        "/api/v1/events?repository=root",
        &[("Authorization", &outsider_auth)],
        "not_found",
    );
    // An unfiltered stream carries only the repositories the user may read.
    let theirs = SseClient::connect(
        server,
        "/api/v1/events",
        &[("Authorization", &outsider_auth)],
    );
    let everyone = SseClient::connect(server, "/api/v1/events", &[("Authorization", &auth)]);
    let lab = Lab::new(&host, ROOT, "evhidden");
    lab.draft("alice", &lab.f(), "ws", "n: 1\n");
    assert_eq!(everyone.wait_for(1, Duration::from_secs(30)).len(), 1);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(theirs.wait_for(0, Duration::ZERO).is_empty());
}

#[test]
fn check_config_reports_bad_webhooks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("hooks.toml");
    std::fs::write(
        &file,
        "[[repository]]\nname = \"a\"\n\n[[webhook]]\nurl = \"http://127.0.0.1:9/x\"\nevents = [\"published\", \"exploded\"]\nrepositories = [\"b\"]\nsecret = \"hunter2\"\ncolour = \"red\"\n\n[[webhook]]\nurl = \"ftp://example\"\n",
    )
    .expect("write");
    let out = std::process::Command::new(cadgate_integration::cadgate_bin())
        .args(["check-config", file.to_str().expect("utf-8")])
        .output()
        .expect("run check-config");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "hooks.toml:6",
        "unknown event type \"exploded\"",
        "hooks.toml:7",
        "no [[repository]] is named \"b\"",
        "hooks.toml:8",
        "env:VARIABLE",
        "hooks.toml:9",
        "webhook[0].colour",
        "hooks.toml:12",
        "not an http:// or https:// URL",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in:\n{stderr}");
    }
    assert!(
        !stderr.contains("hunter2"),
        "the secret was echoed:\n{stderr}"
    );
}

/// The lines of a repository's event log, parsed.
fn log_events(repository_dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(repository_dir.join("cadgate-events.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn the_whole_scenario_list_reaches_sse_and_webhooks_exactly_once_in_order() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let secret = secret_file(scratch.path());
    let receiver = Receiver::start();
    let config = format!(
        "{}{}",
        cadgate_config(),
        webhook_config(&receiver.url("/all"), &secret, "")
    );
    let data = scratch.path().join("data");
    let hosted = CadgateServer {
        server: Server::start_with_data(&config, &data),
    };
    let sse = SseClient::connect(
        &hosted.server,
        "/api/v1/events",
        &[("Authorization", &basic(&TestUser::new("rita")))],
    );
    for layout in scenarios::LAYOUTS {
        scenarios::run_all(&hosted, layout);
    }
    let mut expected: Vec<(String, Value)> = Vec::new();
    for layout in scenarios::LAYOUTS {
        let events = log_events(&hosted.repository_dir(layout.repository));
        assert!(
            !events.is_empty(),
            "{}: no events logged",
            layout.repository
        );
        for (i, event) in events.iter().enumerate() {
            assert_eq!(
                event["seq"].as_u64(),
                Some(i as u64 + 1),
                "{}: seq has a gap",
                layout.repository
            );
            expected.push((format!("{}:{}", layout.repository, i + 1), event.clone()));
        }
    }
    let total = expected.len();
    let delivered = receiver.wait_for("/all", total, Duration::from_secs(60));
    let streamed = sse.wait_for(total, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let delivered_now = receiver.deliveries("/all");
    assert_eq!(
        delivered_now.len(),
        total,
        "the webhook got {} deliveries for {total} events",
        delivered_now.len()
    );
    assert_eq!(
        sse.wait_for(total + 1, Duration::from_millis(10)).len(),
        total,
        "the stream repeated events"
    );
    for repository in scenarios::LAYOUTS.map(|l| l.repository) {
        let want: Vec<&(String, Value)> = expected
            .iter()
            .filter(|(id, _)| id.starts_with(&format!("{repository}:")))
            .collect();
        let got: Vec<&Delivery> = delivered
            .iter()
            .filter(|d| d.id.starts_with(&format!("{repository}:")))
            .collect();
        assert_eq!(got.len(), want.len(), "{repository}");
        for (d, (id, event)) in got.iter().zip(&want) {
            assert_eq!(&d.id, id, "{repository}: webhook order");
            assert_eq!(&d.body, event, "{repository}: webhook body");
            assert!(d.signature_ok, "{repository}: bad signature on {id}");
        }
        let got: Vec<&SseEvent> = streamed
            .iter()
            .filter(|e| e.id.starts_with(&format!("{repository}:")))
            .collect();
        assert_eq!(got.len(), want.len(), "{repository}");
        for (e, (id, event)) in got.iter().zip(&want) {
            assert_eq!(&e.id, id, "{repository}: stream order");
            assert_eq!(&e.data, event, "{repository}: stream data");
        }
    }
}

/// Run `openssl` in `dir`, requiring success.
fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An HTTPS webhook receiver (Python's http.server behind TLS) with a
/// certificate for 127.0.0.1 from a test CA; it appends one JSON line per
/// POST to a file.
struct TlsReceiver {
    child: std::process::Child,
    port: u16,
    log: PathBuf,
    ca: PathBuf,
}

impl TlsReceiver {
    fn start(dir: &Path) -> Self {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=cadgate test CA",
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        );
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "leaf.pem",
                "-days",
                "2",
                "-extfile",
                "leaf.ext",
            ],
        );
        let script = r#"
import http.server, json, ssl, sys
class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(sys.argv[1], "a") as log:
            log.write(json.dumps({"path": self.path, "id": self.headers.get("X-Cadgate-Delivery"), "body": json.loads(body)}) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[2], sys.argv[3])
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;
        let log = dir.join("received.jsonl");
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(&log)
            .arg(dir.join("leaf.pem"))
            .arg(dir.join("leaf.key"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the receiver's port");
        let port = line.trim().parse().expect("a port");
        Self {
            child,
            port,
            log,
            ca: dir.join("ca.pem"),
        }
    }

    fn received(&self, path: &str) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["path"] == path)
            .collect()
    }
}

impl Drop for TlsReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn https_webhooks_reach_a_receiver_whose_ca_is_configured_and_no_other() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let receiver = TlsReceiver::start(scratch.path());
    let secret = secret_file(scratch.path());
    let base = format!("https://127.0.0.1:{}", receiver.port);
    let config = format!(
        "{}{}{}",
        cadgate_config(),
        webhook_config(
            &format!("{base}/trusted"),
            &secret,
            &format!("ca_file = \"{}\"", receiver.ca.display())
        ),
        webhook_config(&format!("{base}/untrusted"), &secret, ""),
    );
    let data = scratch.path().join("data");
    let hosted = CadgateServer {
        server: Server::start_with_data(&config, &data),
    };
    let lab = Lab::new(&hosted, ROOT, "tls");
    let f = lab.f();
    lab.draft("alice", &f, "ws", "n: 1\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.received("/trusted").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let trusted = receiver.received("/trusted");
    assert_eq!(trusted.len(), 1, "{trusted:?}");
    assert_eq!(trusted[0]["id"], "root:1");
    assert_eq!(trusted[0]["body"]["type"], "created");
    assert_eq!(trusted[0]["body"]["package"], f.as_str());
    // A certificate from an unknown CA is not trusted: nothing arrives there
    // (the delivery is retried, not skipped).
    std::thread::sleep(Duration::from_millis(1500));
    assert!(receiver.received("/untrusted").is_empty());
}
