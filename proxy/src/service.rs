//! The per-request pipeline: observe → route → (auth, handler) → response.
//!
//! Every response, success or error, passes through [`handle`], so every
//! request gets exactly one access-log line and one set of metric updates.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use cadgate_config::Config;
use http::{header, HeaderValue, Method, Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::error::HttpError;
use crate::git_process::GitRunner;
use crate::observe::{Exchange, Metrics, Observed};
use crate::repositories::Registry;
use crate::routes::{self, Route};
use crate::smart_http;

/// The body of every response.
pub type ResponseBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// Everything a request may need, shared by all connections.
pub struct State {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The registered repositories.
    pub registry: Registry,
    /// The pool of git children.
    pub runner: GitRunner,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// The hooks every push runs through.
    pub enforcement: crate::enforcement::Enforcement,
    /// Lifecycle event readers' wake-ups.
    pub events: Arc<crate::events::Hub>,
    /// What one client or the anonymous class may take.
    pub limits: crate::limits::ClientLimits,
}

/// Serve one request. Never fails: errors become HTTP responses.
pub async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Observed<ResponseBody>>, Infallible> {
    let exchange = Exchange::new(request.method(), request.uri().path(), peer);
    let response = match dispatch(&state, request, &exchange).await {
        Ok(response) => response,
        Err(error) => error_response(&error),
    };
    let status = response.status().as_u16();
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(
        parts,
        Observed::new(body, exchange, state.metrics.clone(), status),
    ))
}

async fn dispatch(
    state: &State,
    request: Request<Incoming>,
    exchange: &Arc<Exchange>,
) -> Result<Response<ResponseBody>, HttpError> {
    match routes::route(request.uri().path()) {
        Route::Health => {
            exchange.set_service("healthz");
            only_get(request.method())?;
            Ok(text(http::StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into()))
        }
        Route::Metrics => {
            exchange.set_service("metrics");
            only_get(request.method())?;
            Ok(text(
                http::StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                state.metrics.render(),
            ))
        }
        Route::Api(path) if path == "v1/events" => {
            exchange.set_service("api");
            crate::events::serve(state, &request, exchange).await
        }
        Route::Api(path) => {
            exchange.set_service("api");
            crate::api::serve(state, request, &path).await
        }
        Route::Unknown => Err(HttpError::not_found(
            "nothing here; repository URLs look like /<repository>.git or /published/<repository>.git",
        )),
        Route::Git {
            view,
            repository,
            endpoint,
        } => {
            // Ref advertisements and `ls-refs` answers in the client's
            // Accept-Encoding (smart_http::compress).
            let coding = smart_http::compress::negotiate(request.headers());
            let response =
                smart_http::serve(state, request, exchange, view, &repository, endpoint).await?;
            Ok(smart_http::compress::finish(response, coding).await)
        }
    }
}

fn only_get(method: &Method) -> Result<(), HttpError> {
    if method == Method::GET || method == Method::HEAD {
        Ok(())
    } else {
        Err(HttpError::method_not_allowed("GET"))
    }
}

/// A complete response with a text body.
fn text(
    status: http::StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<ResponseBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    smart_http::no_cache(response.headers_mut());
    response
}

fn full(body: String) -> ResponseBody {
    Full::new(Bytes::from(body))
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

/// The response for an error: text (git shows it to the user) or JSON (API).
pub fn error_response(error: &HttpError) -> Response<ResponseBody> {
    let mut response = match error.json_code {
        Some(code) => text(
            error.status,
            "application/json",
            serde_json::json!({ "error": error.message, "code": code }).to_string(),
        ),
        None => text(
            error.status,
            "text/plain; charset=utf-8",
            format!("{}\n", error.message),
        ),
    };
    let headers = response.headers_mut();
    if error.challenge {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"cadgate\""),
        );
    }
    if let Some(seconds) = error.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(allow) = error.allow {
        headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}
