//! Compressed answers: ref advertisements and `ls-refs` answers in the
//! encoding the client asks for with `Accept-Encoding` (issue 14).
//!
//! What may be compressed is marked by the handler that makes the answer
//! ([`compressible`]): a ref advertisement (`GET …/info/refs`, both services,
//! protocol v0 and v2) and a protocol v2 `ls-refs` answer. A fetch's answer
//! is pack data, compressed already, and is never marked; nor is an error.
//! The answer is then, in [`finish`]:
//!
//! - sent as it is to a client that does not ask for gzip or zstd (libgit2
//!   sends no `Accept-Encoding`; Python's `http.client` under dulwich sends
//!   `identity`), and when it is shorter than [`THRESHOLD`] bytes;
//! - otherwise compressed as it streams out of git (the first [`THRESHOLD`]
//!   bytes are held to decide, never the whole answer), zstd before gzip
//!   when both are accepted at the same weight: git's curl sends
//!   `Accept-Encoding: deflate, gzip, br, zstd` (every encoding its libcurl
//!   was built with) and decodes whichever comes back; JGit and
//!   isomorphic-git's HTTP clients ask for gzip.
//!
//! Every marked answer carries `Vary: Accept-Encoding`, compressed or not,
//! so a cache between client and server never hands one client's encoding
//! to another. The wire bytes are what the access log's `bytes_out` and the
//! `http_response_bytes` metric count.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use async_compression::tokio::bufread::{GzipEncoder, ZstdEncoder};
use async_compression::Level;
use bytes::{Bytes, BytesMut};
use futures_util::{stream, StreamExt};
use http::{header, HeaderMap, HeaderValue, Response};
use http_body_util::BodyExt;
use hyper::body::Frame;
use tokio::io::AsyncReadExt;
use tokio_util::io::{ReaderStream, StreamReader};

use crate::service::ResponseBody;

/// Answers shorter than this go out as they are: compressing them saves
/// a few bytes and costs an encoder. git itself compresses a request body
/// only past 1 KiB (`remote-curl.c`, `post_rpc`); a ref advertisement
/// reaches it at about 15 refs.
pub const THRESHOLD: usize = 1024;

/// How an answer is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `Content-Encoding: gzip`.
    Gzip,
    /// `Content-Encoding: zstd` (RFC 8878).
    Zstd,
}

impl Coding {
    /// Its `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Zstd => "zstd",
        }
    }
}

/// The marker a handler puts on an answer that may be compressed; with the
/// whole answer when it is one remembered for replay ([`super::answers`]).
#[derive(Debug, Clone)]
struct Compressible(Option<Bytes>);

/// Mark `response` as one [`finish`] may compress.
pub fn compressible(mut response: Response<ResponseBody>) -> Response<ResponseBody> {
    response.extensions_mut().insert(Compressible(None));
    response
}

/// Mark `response` when `listing` (an `ls-refs` answer), not otherwise.
pub fn when(listing: bool) -> impl FnOnce(Response<ResponseBody>) -> Response<ResponseBody> {
    move |response| {
        if listing {
            compressible(response)
        } else {
            response
        }
    }
}

/// Like [`when`], for an answer replayed from memory whose body is
/// `answer`: its compressed form is remembered too ([`encode_remembered`]),
/// so a poll answered from memory costs no compression either.
pub fn remembered(
    listing: bool,
    answer: Bytes,
) -> impl FnOnce(Response<ResponseBody>) -> Response<ResponseBody> {
    move |mut response| {
        if listing {
            // One too large to be remembered is not replayed either: its
            // compressed form would never be asked for again.
            let whole = (answer.len() <= super::answers::MAX_ANSWER).then_some(answer);
            response.extensions_mut().insert(Compressible(whole));
        }
        response
    }
}

/// The coding to answer with, from the request's `Accept-Encoding`
/// (RFC 9110 §12.5.3): the accepted coding with the highest weight, zstd on
/// a tie; `*` stands for any coding not named; `q=0` refuses one. `None`:
/// send the answer as it is.
pub fn negotiate(headers: &HeaderMap) -> Option<Coding> {
    let mut gzip: Option<u16> = None;
    let mut zstd: Option<u16> = None;
    let mut any: Option<u16> = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut weight = Some(1000);
            for parameter in parts {
                if let Some((key, q)) = parameter.split_once('=') {
                    if key.trim().eq_ignore_ascii_case("q") {
                        weight = parse_weight(q.trim());
                    }
                }
            }
            // A malformed weight: the item is ignored.
            let Some(weight) = weight else { continue };
            let slot = match name.as_str() {
                "gzip" | "x-gzip" => &mut gzip,
                "zstd" => &mut zstd,
                "*" => &mut any,
                _ => continue,
            };
            *slot = Some(slot.map_or(weight, |w: u16| w.max(weight)));
        }
    }
    let gzip = gzip.or(any).unwrap_or(0);
    let zstd = zstd.or(any).unwrap_or(0);
    match (gzip, zstd) {
        (0, 0) => None,
        (g, z) if z >= g => Some(Coding::Zstd),
        _ => Some(Coding::Gzip),
    }
}

/// A `qvalue` in thousandths: `0`, `0.5`, `1`, `1.000`; `None` if malformed.
fn parse_weight(q: &str) -> Option<u16> {
    let (whole, fraction) = q.split_once('.').unwrap_or((q, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Send a marked answer in `coding` when it is at least [`THRESHOLD`] bytes
/// long; anything unmarked passes untouched.
pub async fn finish(
    mut response: Response<ResponseBody>,
    coding: Option<Coding>,
) -> Response<ResponseBody> {
    let Some(Compressible(whole)) = response.extensions_mut().remove::<Compressible>() else {
        return response;
    };
    response
        .headers_mut()
        .append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    let Some(coding) = coding else {
        return response;
    };
    if !response.status().is_success() || response.headers().contains_key(header::CONTENT_ENCODING)
    {
        return response;
    }
    if let Some(whole) = whole {
        if whole.len() < THRESHOLD {
            return response;
        }
        let Some(encoded) = encode_remembered(whole, coding).await else {
            return response;
        };
        let (mut parts, _) = response.into_parts();
        parts.headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(coding.token()),
        );
        parts.headers.remove(header::CONTENT_LENGTH);
        let body = http_body_util::Full::new(encoded)
            .map_err(|never: std::convert::Infallible| match never {})
            .boxed_unsync();
        return Response::from_parts(parts, body);
    }
    let (mut parts, mut body) = response.into_parts();
    // Hold the answer's start until it is known to reach the threshold.
    let mut head = BytesMut::new();
    let mut ended = false;
    while head.len() < THRESHOLD {
        match body.frame().await {
            None => {
                ended = true;
                break;
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    head.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => {
                // What came before the error, then the error: as unmarked.
                let failed = stream::iter([Ok(Frame::data(head.freeze())), Err(e)]);
                return Response::from_parts(
                    parts,
                    http_body_util::StreamBody::new(failed).boxed_unsync(),
                );
            }
        }
    }
    if ended && head.len() < THRESHOLD {
        let whole = http_body_util::Full::new(head.freeze())
            .map_err(|never: std::convert::Infallible| match never {})
            .boxed_unsync();
        return Response::from_parts(parts, whole);
    }
    let plain = stream::once(async move { Ok::<Bytes, std::io::Error>(head.freeze()) })
        .chain(body.into_data_stream());
    let reader = StreamReader::new(plain);
    let encoded = match coding {
        Coding::Gzip => {
            ReaderStream::with_capacity(GzipEncoder::with_quality(reader, Level::Fastest), 64 << 10)
                .boxed()
        }
        Coding::Zstd => {
            ReaderStream::with_capacity(ZstdEncoder::with_quality(reader, Level::Fastest), 64 << 10)
                .boxed()
        }
    };
    parts.headers.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(coding.token()),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    let frames = encoded.map(|chunk| chunk.map(Frame::data));
    Response::from_parts(
        parts,
        http_body_util::StreamBody::new(frames).boxed_unsync(),
    )
}

/// Plain bytes of the answers whose compressed forms are remembered, at
/// most (the oldest is forgotten first, also past [`REMEMBERED_ANSWERS`]). Each answer is also held by the
/// poll answers it compresses (16 MiB per repository, `answers::MAX_BYTES`)
/// while they remember it.
const REMEMBERED_BYTES: usize = 32 << 20;
/// Answers whose compressed forms are remembered, at most.
const REMEMBERED_ANSWERS: usize = 64;

/// One remembered compressed answer. `plain` is held so its allocation
/// stays the one it is: an answer is recognised by where its bytes are (a
/// replayed answer is the same allocation every time), which is only sound
/// while nothing can free and reuse that memory.
struct Remembered {
    plain: Bytes,
    coding: Coding,
    encoded: Arc<tokio::sync::OnceCell<Option<Bytes>>>,
}

fn remembered_answers() -> &'static Mutex<VecDeque<Remembered>> {
    static MEMO: OnceLock<Mutex<VecDeque<Remembered>>> = OnceLock::new();
    MEMO.get_or_init(|| Mutex::new(VecDeque::new()))
}

/// `plain` in `coding`, computed once however many polls ask at once;
/// `None` if the encoder failed (the answer then goes out plain).
async fn encode_remembered(plain: Bytes, coding: Coding) -> Option<Bytes> {
    let cell = {
        let Ok(mut memo) = remembered_answers().lock() else {
            return encode(&plain, coding).await;
        };
        let same = |r: &Remembered| {
            r.coding == coding && r.plain.as_ptr() == plain.as_ptr() && r.plain.len() == plain.len()
        };
        match memo.iter().find(|r| same(r)) {
            Some(found) => found.encoded.clone(),
            None => {
                let cell = Arc::new(tokio::sync::OnceCell::new());
                memo.push_back(Remembered {
                    plain: plain.clone(),
                    coding,
                    encoded: cell.clone(),
                });
                let mut held: usize = memo.iter().map(|r| r.plain.len()).sum();
                while (held > REMEMBERED_BYTES || memo.len() > REMEMBERED_ANSWERS) && memo.len() > 1
                {
                    if let Some(old) = memo.pop_front() {
                        held -= old.plain.len();
                    }
                }
                cell
            }
        }
    };
    cell.get_or_init(|| encode(&plain, coding)).await.clone()
}

/// A whole answer compressed.
async fn encode(plain: &[u8], coding: Coding) -> Option<Bytes> {
    let mut out = Vec::with_capacity(plain.len() / 2);
    let done = match coding {
        Coding::Gzip => {
            GzipEncoder::with_quality(plain, Level::Fastest)
                .read_to_end(&mut out)
                .await
        }
        Coding::Zstd => {
            ZstdEncoder::with_quality(plain, Level::Fastest)
                .read_to_end(&mut out)
                .await
        }
    };
    done.ok().map(|_| Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Option<Coding> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).expect("header"),
        );
        negotiate(&headers)
    }

    #[test]
    fn the_coding_follows_accept_encoding() {
        assert_eq!(negotiate(&HeaderMap::new()), None);
        // git built with a libcurl that has zstd, and one without.
        assert_eq!(accept("deflate, gzip, br, zstd"), Some(Coding::Zstd));
        assert_eq!(accept("deflate, gzip"), Some(Coding::Gzip));
        assert_eq!(accept("gzip"), Some(Coding::Gzip));
        assert_eq!(accept("x-gzip"), Some(Coding::Gzip));
        assert_eq!(accept("identity"), None);
        assert_eq!(accept("br, deflate"), None);
        assert_eq!(accept("gzip;q=0"), None);
        assert_eq!(accept("gzip;q=1.0, zstd;q=0.5"), Some(Coding::Gzip));
        assert_eq!(accept("gzip;q=0.5, zstd;q=0.8"), Some(Coding::Zstd));
        assert_eq!(accept("zstd;q=0, *"), Some(Coding::Gzip));
        assert_eq!(accept("*;q=0"), None);
        assert_eq!(accept("*"), Some(Coding::Zstd));
        // A malformed weight ignores the item.
        assert_eq!(accept("gzip;q=2"), None);
        assert_eq!(accept("gzip;q=abc, zstd;q=0.1"), Some(Coding::Zstd));
        assert_eq!(accept("GZIP ; Q=0.9"), Some(Coding::Gzip));
    }

    fn answer(body: &[u8]) -> Response<ResponseBody> {
        // Two frames, as git's output streams.
        let (a, b) = body.split_at(body.len() / 2);
        let frames = stream::iter([
            Ok::<_, std::io::Error>(Frame::data(Bytes::copy_from_slice(a))),
            Ok(Frame::data(Bytes::copy_from_slice(b))),
        ]);
        Response::new(http_body_util::StreamBody::new(frames).boxed_unsync())
    }

    async fn body_of(response: Response<ResponseBody>) -> Vec<u8> {
        response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec()
    }

    fn refs(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| format!("{:040x} refs/tags/pkg/v{i}\n", i * 7919))
            .collect::<String>()
            .into_bytes()
    }

    #[tokio::test]
    async fn a_marked_answer_is_compressed_above_the_threshold_only() {
        use std::io::Read as _;
        let large = refs(500);
        let response = finish(compressible(answer(&large)), Some(Coding::Gzip)).await;
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(response.headers()[header::VARY], "Accept-Encoding");
        let wire = body_of(response).await;
        assert!(wire.len() < large.len() / 2, "{} bytes", wire.len());
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(wire.as_slice())
            .read_to_end(&mut decoded)
            .expect("gzip");
        assert_eq!(decoded, large);

        let response = finish(compressible(answer(&large)), Some(Coding::Zstd)).await;
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "zstd");
        let wire = body_of(response).await;
        assert!(wire.len() < large.len() / 2, "{} bytes", wire.len());

        // Below the threshold, or not asked, or not marked: as it is.
        let small = refs(3);
        assert!(small.len() < THRESHOLD);
        let response = finish(compressible(answer(&small)), Some(Coding::Gzip)).await;
        assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(response.headers()[header::VARY], "Accept-Encoding");
        assert_eq!(body_of(response).await, small);
        let response = finish(compressible(answer(&large)), None).await;
        assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(response.headers()[header::VARY], "Accept-Encoding");
        assert_eq!(body_of(response).await, large);
        let response = finish(answer(&large), Some(Coding::Gzip)).await;
        assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
        assert!(response.headers().get(header::VARY).is_none());
        assert_eq!(body_of(response).await, large);
    }

    #[tokio::test]
    async fn a_remembered_answer_is_compressed_once() {
        use std::io::Read as _;
        let large = Bytes::from(refs(500));
        let replay = |body: &Bytes| {
            let full = http_body_util::Full::new(body.clone())
                .map_err(|never: std::convert::Infallible| match never {})
                .boxed_unsync();
            remembered(true, body.clone())(Response::new(full))
        };
        let first = finish(replay(&large), Some(Coding::Gzip)).await;
        assert_eq!(first.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(first.headers()[header::VARY], "Accept-Encoding");
        let first = body_of(first).await;
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(first.as_slice())
            .read_to_end(&mut decoded)
            .expect("gzip");
        assert_eq!(decoded, large);
        let second = body_of(finish(replay(&large), Some(Coding::Gzip)).await).await;
        assert_eq!(second, first);
        // The remembered form is the same allocation each time.
        let cell = {
            let memo = remembered_answers().lock().expect("memo");
            let found = memo
                .iter()
                .find(|r| r.plain.as_ptr() == large.as_ptr() && r.coding == Coding::Gzip)
                .map(|r| r.encoded.clone());
            found.expect("remembered")
        };
        assert_eq!(
            cell.get().cloned().flatten().map(|b| b.len()),
            Some(first.len())
        );
        // Another answer with the same length is not taken for it.
        let other = Bytes::from(refs(500).into_iter().rev().collect::<Vec<u8>>());
        assert_eq!(other.len(), large.len());
        let wire = body_of(finish(replay(&other), Some(Coding::Gzip)).await).await;
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(wire.as_slice())
            .read_to_end(&mut decoded)
            .expect("gzip");
        assert_eq!(decoded, other);
        // Small and not listing: as they are.
        let small = Bytes::from(refs(3));
        let r = finish(replay(&small), Some(Coding::Zstd)).await;
        assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(body_of(r).await, small);
    }
}
