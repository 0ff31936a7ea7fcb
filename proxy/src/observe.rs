//! Observability: Prometheus metrics and one access-log line per request.
//!
//! The log line and the request metrics are emitted when the response body has
//! been sent completely (or the client went away), so byte counts and
//! durations cover the whole exchange, not just the headers.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of the per-request metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: String,
    status: String,
}

/// Labels of the per-service metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<ServiceLabels, Histogram>,
    response_bytes: Family<ServiceLabels, Counter>,
    request_bytes: Family<ServiceLabels, Counter>,
    /// git child processes running now.
    pub git_processes: Gauge,
    /// Requests refused with 503 because no git process slot was free.
    pub git_slot_rejections: Counter,
}

impl Metrics {
    /// Create and register every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cadgate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by service and status",
            requests.clone(),
        );
        let duration = Family::<ServiceLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                60.0,
            ])
        });
        registry.register(
            "http_request_duration_seconds",
            "Time from request to the last byte of the response, by service",
            duration.clone(),
        );
        let response_bytes = Family::<ServiceLabels, Counter>::default();
        registry.register(
            "http_response_bytes",
            "Response body bytes sent, by service",
            response_bytes.clone(),
        );
        let request_bytes = Family::<ServiceLabels, Counter>::default();
        registry.register(
            "http_request_bytes",
            "Request body bytes received (before decompression), by service",
            request_bytes.clone(),
        );
        let git_processes = Gauge::default();
        registry.register(
            "git_processes",
            "git child processes running",
            git_processes.clone(),
        );
        let git_slot_rejections = Counter::default();
        registry.register(
            "git_slot_rejections",
            "Requests refused with 503 because every git process slot stayed busy",
            git_slot_rejections.clone(),
        );
        Self {
            registry,
            requests,
            duration,
            response_bytes,
            request_bytes,
            git_processes,
            git_slot_rejections,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// What is known about one request while it is being served; filled in by the
/// layers that learn it (routing knows the service, auth knows the user).
pub struct Exchange {
    start: Instant,
    method: String,
    path: String,
    peer: String,
    ip: std::net::IpAddr,
    details: Mutex<Details>,
    bytes_in: AtomicU64,
}

#[derive(Default)]
struct Details {
    service: &'static str,
    repository: Option<String>,
    user: Option<String>,
    replayed: bool,
}

impl Exchange {
    /// Start observing a request.
    pub fn new(method: &http::Method, path: &str, peer: std::net::SocketAddr) -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            method: method.to_string(),
            path: path.to_string(),
            peer: peer.to_string(),
            ip: peer.ip(),
            details: Mutex::new(Details {
                service: "other",
                ..Details::default()
            }),
            bytes_in: AtomicU64::new(0),
        })
    }

    fn with_details(&self, f: impl FnOnce(&mut Details)) {
        if let Ok(mut d) = self.details.lock() {
            f(&mut d);
        }
    }

    /// The client's address.
    pub fn peer_ip(&self) -> std::net::IpAddr {
        self.ip
    }

    /// Name the service for metrics and logs (`git-upload-pack`, `healthz`, …).
    pub fn set_service(&self, service: &'static str) {
        self.with_details(|d| d.service = service);
    }

    /// Name the repository.
    pub fn set_repository(&self, repository: &str) {
        self.with_details(|d| d.repository = Some(repository.to_string()));
    }

    /// Name the authenticated user.
    pub fn set_user(&self, user: &str) {
        self.with_details(|d| d.user = Some(user.to_string()));
    }

    /// Mark the answer as replayed from memory (no git process ran).
    pub fn set_replayed(&self) {
        self.with_details(|d| d.replayed = true);
    }

    /// Count request body bytes as they arrive.
    pub fn add_bytes_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    fn finish(&self, metrics: &Metrics, status: u16, bytes_out: u64, complete: bool) {
        let elapsed = self.start.elapsed();
        let (service, repository, user, replayed) = match self.details.lock() {
            Ok(d) => (d.service, d.repository.clone(), d.user.clone(), d.replayed),
            Err(_) => ("other", None, None, false),
        };
        let bytes_in = self.bytes_in.load(Ordering::Relaxed);
        let service_labels = ServiceLabels {
            service: service.to_string(),
        };
        metrics
            .requests
            .get_or_create(&RequestLabels {
                service: service.to_string(),
                status: status.to_string(),
            })
            .inc();
        metrics
            .duration
            .get_or_create(&service_labels)
            .observe(elapsed.as_secs_f64());
        metrics
            .response_bytes
            .get_or_create(&service_labels)
            .inc_by(bytes_out);
        metrics
            .request_bytes
            .get_or_create(&service_labels)
            .inc_by(bytes_in);
        tracing::info!(
            target: "cadgate::access",
            method = %self.method,
            path = %self.path,
            peer = %self.peer,
            service,
            repository = repository.as_deref().unwrap_or("-"),
            user = user.as_deref().unwrap_or("-"),
            status,
            bytes_in,
            bytes_out,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            complete,
            replayed,
            "request"
        );
    }
}

/// A response body that reports the exchange when it ends or is dropped.
pub struct Observed<B: Body> {
    inner: B,
    exchange: Option<Arc<Exchange>>,
    metrics: Arc<Metrics>,
    status: u16,
    bytes_out: u64,
}

impl<B: Body> Observed<B> {
    /// Wrap `inner`, the body of a response with `status`.
    pub fn new(inner: B, exchange: Arc<Exchange>, metrics: Arc<Metrics>, status: u16) -> Self {
        Self {
            inner,
            exchange: Some(exchange),
            metrics,
            status,
            bytes_out: 0,
        }
    }

    fn finish(&mut self, complete: bool) {
        if let Some(exchange) = self.exchange.take() {
            exchange.finish(&self.metrics, self.status, self.bytes_out, complete);
        }
    }
}

impl<B> Body for Observed<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes_out += data.len() as u64;
                }
                // hyper stops polling once the body says it has ended.
                if self.inner.is_end_stream() {
                    self.finish(true);
                }
            }
            Poll::Ready(Some(Err(_))) => self.finish(false),
            Poll::Ready(None) => self.finish(true),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: Body> Drop for Observed<B> {
    fn drop(&mut self) {
        // Dropped before its end unless the body had ended (or was empty and
        // never polled): the client went away mid-response.
        let complete = self.inner.is_end_stream();
        self.finish(complete);
    }
}
