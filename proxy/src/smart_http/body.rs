//! Request bodies: decoding (`Content-Encoding: gzip`), counting and limits.

use std::io;

use bytes::Bytes;
use futures_util::StreamExt;
use http::HeaderMap;
use http_body_util::BodyStream;
use hyper::body::Incoming;
use std::sync::Arc;
use tokio_util::io::StreamReader;

use crate::error::HttpError;
use crate::git_process::BodyReader;
use crate::observe::Exchange;

/// How the body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// As is.
    Identity,
    /// gzip (git compresses fetch requests over ~1 KiB).
    Gzip,
}

impl Encoding {
    /// Read `Content-Encoding`; anything git would not send is a 415.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, HttpError> {
        match headers.get(http::header::CONTENT_ENCODING) {
            None => Ok(Encoding::Identity),
            Some(v) => match v.to_str().map(|s| s.trim().to_ascii_lowercase()) {
                Ok(s) if s == "gzip" || s == "x-gzip" => Ok(Encoding::Gzip),
                Ok(s) if s == "identity" || s.is_empty() => Ok(Encoding::Identity),
                _ => Err(HttpError::unsupported_media(format!(
                    "Content-Encoding {v:?} is not supported; send gzip or nothing"
                ))),
            },
        }
    }
}

/// Refuse up front a body whose declared length is over `limit`.
pub fn check_declared_length(
    headers: &HeaderMap,
    limit: u64,
    what: &str,
    key: &str,
) -> Result<(), HttpError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit => Err(HttpError::too_large(what, limit, key)),
        _ => Ok(()),
    }
}

/// The body as a decoded byte stream; raw bytes are counted on `exchange`.
pub fn reader(body: Incoming, encoding: Encoding, exchange: Arc<Exchange>) -> BodyReader {
    let raw = BodyStream::new(body).filter_map(move |frame| {
        let exchange = exchange.clone();
        async move {
            match frame {
                Ok(frame) => frame.into_data().ok().map(|data: Bytes| {
                    exchange.add_bytes_in(data.len() as u64);
                    Ok(data)
                }),
                Err(e) => Some(Err(io::Error::other(e))),
            }
        }
    });
    let raw = StreamReader::new(Box::pin(raw));
    match encoding {
        Encoding::Identity => Box::pin(raw),
        Encoding::Gzip => Box::pin(async_compression::tokio::bufread::GzipDecoder::new(raw)),
    }
}

/// The message for a body that could not be read.
pub fn unreadable(encoding: Encoding, error: &io::Error) -> HttpError {
    match encoding {
        Encoding::Gzip => {
            HttpError::bad_request(format!("cannot read the request body as gzip: {error}"))
        }
        Encoding::Identity => {
            HttpError::bad_request(format!("cannot read the request body: {error}"))
        }
    }
}
