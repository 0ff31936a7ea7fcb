//! HTTP-level failures: one type that knows its status, its message for the
//! client, and the headers git needs to react correctly (a credential prompt on
//! 401, a retry hint on 503, the allowed methods on 405).

use http::StatusCode;

/// A request that cannot be served, with the message the client will read.
///
/// Messages are written for the person at the terminal: git prints the body
/// of a failed `info/refs` request as `remote:` lines, so they say what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {message}")]
pub struct HttpError {
    /// The HTTP status.
    pub status: StatusCode,
    /// One line of text for the client.
    pub message: String,
    /// Add `WWW-Authenticate: Basic realm="cadgate"` (every 401 needs it).
    pub challenge: bool,
    /// Add `Retry-After` with this many seconds.
    pub retry_after: Option<u64>,
    /// Add `Allow` (every 405 needs it).
    pub allow: Option<&'static str>,
    /// Answer as JSON `{"error": …, "code": …}` (the API's error form).
    pub json_code: Option<&'static str>,
}

impl HttpError {
    /// An error with `status` and `message` and no extra headers.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            challenge: false,
            retry_after: None,
            allow: None,
            json_code: None,
        }
    }

    /// 400: the request body or a header is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401 with the Basic challenge that makes git ask its credential helper.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            challenge: true,
            ..Self::new(StatusCode::UNAUTHORIZED, message)
        }
    }

    /// 403: authenticated, but not allowed.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404: no such repository or endpoint.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 405 with the methods the endpoint accepts.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method not allowed here; use {allow}"),
            )
        }
    }

    /// 413: the body is larger than the configured limit.
    pub fn too_large(what: &str, limit: u64, key: &str) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{what} is larger than {limit} bytes (server.{key}); ask the operator to raise it"
            ),
        )
    }

    /// 415: a content type or encoding git would never send here.
    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
    }

    /// 500: something failed on the server side; the details are in the log.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// 503 with a retry hint: the server is busy, the request may be repeated.
    pub fn busy(message: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }

    /// Answer as a JSON error with the code its status implies
    /// (`unauthorized`, `forbidden`, `not_found`, …).
    pub fn json_by_status(self) -> Self {
        let code = match self.status {
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::SERVICE_UNAVAILABLE => "busy",
            _ => "internal",
        };
        self.json(code)
    }

    /// Answer as a JSON error with this machine-readable code.
    pub fn json(mut self, code: &'static str) -> Self {
        self.json_code = Some(code);
        self
    }
}
