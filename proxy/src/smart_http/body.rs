//! Request bodies: decoding (`Content-Encoding: gzip`), counting and limits.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::HeaderMap;
use http_body_util::BodyStream;
use hyper::body::Incoming;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio_util::io::StreamReader;

use crate::error::HttpError;
use crate::git_process::BodyReader;
use crate::limits::BufferGrant;
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
/// A body that sends nothing for `idle` fails with [`io::ErrorKind::TimedOut`]
/// (its reader, and so git's stdin, stops).
pub fn reader(
    body: Incoming,
    encoding: Encoding,
    exchange: Arc<Exchange>,
    idle: Duration,
) -> BodyReader {
    let frames = BodyStream::new(body);
    let raw = futures_util::stream::unfold(Some(frames), move |frames| {
        let exchange = exchange.clone();
        async move {
            let mut frames = frames?;
            loop {
                match tokio::time::timeout(idle, frames.next()).await {
                    Err(_) => {
                        let e = io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "the request body sent nothing for {} s (server.body_timeout_secs)",
                                idle.as_secs()
                            ),
                        );
                        return Some((Err(e), None));
                    }
                    Ok(None) => return None,
                    Ok(Some(Err(e))) => return Some((Err(io::Error::other(e)), None)),
                    Ok(Some(Ok(frame))) => {
                        if let Ok(data) = frame.into_data() {
                            exchange.add_bytes_in(data.len() as u64);
                            return Some((Ok::<Bytes, io::Error>(data), Some(frames)));
                        }
                    }
                }
            }
        }
    });
    let raw = StreamReader::new(Box::pin(raw));
    match encoding {
        Encoding::Identity => Box::pin(raw),
        Encoding::Gzip => Box::pin(async_compression::tokio::bufread::GzipDecoder::new(raw)),
    }
}

/// Read at most `max` bytes of `reader`; whether that was the whole body.
pub async fn read_ahead(
    reader: &mut BodyReader,
    max: usize,
    encoding: Encoding,
) -> Result<(Vec<u8>, bool), HttpError> {
    let mut buf = Vec::with_capacity(max.min(16 * 1024));
    (&mut *reader)
        .take(max as u64 + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| unreadable(encoding, &e))?;
    if buf.len() > max {
        return Ok((buf, false));
    }
    Ok((buf, true))
}

/// Read the rest of the body onto `buf`, refusing it past `limit` bytes in
/// all (413) and charging what is held past the read-ahead to `grant` (503
/// when the server's budget is spent).
pub async fn read_rest(
    reader: &mut BodyReader,
    buf: &mut Vec<u8>,
    limit: u64,
    grant: &mut BufferGrant,
    encoding: Encoding,
    what: &str,
) -> Result<(), HttpError> {
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = reader
            .read(&mut chunk)
            .await
            .map_err(|e| unreadable(encoding, &e))?;
        if n == 0 {
            return Ok(());
        }
        if (buf.len() + n) as u64 > limit {
            return Err(HttpError::too_large(what, limit, "max_request_bytes"));
        }
        append(buf, &chunk[..n], grant)?;
    }
}

/// Append `data` to `buf`, charging `grant` for the memory `buf` then holds
/// (its capacity, grown by half at a time, not doubled), so the budget
/// bounds what is allocated, not only what is filled.
pub fn append(buf: &mut Vec<u8>, data: &[u8], grant: &mut BufferGrant) -> Result<(), HttpError> {
    let needed = buf.len() + data.len();
    if needed > buf.capacity() {
        let capacity = needed.max(buf.capacity() + buf.capacity() / 2);
        grant.cover(capacity)?;
        buf.reserve_exact(capacity - buf.len());
    }
    buf.extend_from_slice(data);
    Ok(())
}

/// The message for a body that could not be read.
pub fn unreadable(encoding: Encoding, error: &io::Error) -> HttpError {
    if error.kind() == io::ErrorKind::TimedOut {
        return HttpError::new(http::StatusCode::REQUEST_TIMEOUT, error.to_string());
    }
    match encoding {
        Encoding::Gzip => {
            HttpError::bad_request(format!("cannot read the request body as gzip: {error}"))
        }
        Encoding::Identity => {
            HttpError::bad_request(format!("cannot read the request body: {error}"))
        }
    }
}
