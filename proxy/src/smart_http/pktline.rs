//! Framing checks on request bodies, so a malformed body is answered with a
//! clear 400 instead of reaching git. Decoding uses gix-packetline.

use gix_packetline::decode::{self, Stream};
use gix_packetline::PacketLineRef;

/// Where a scan over pkt-lines stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// A flush packet ends at this offset: everything before it is well framed.
    FlushAt(usize),
    /// Every byte so far is well framed, but no flush has been seen yet.
    NeedMore,
}

/// `text` framed as one pkt-line (length prefix included).
pub fn line(text: &str) -> String {
    format!("{:04x}{text}", text.len() + 4)
}

/// Scan pkt-lines from the start of `data` up to the first flush packet.
pub fn scan_to_flush(data: &[u8]) -> Result<Scan, String> {
    let mut offset = 0;
    loop {
        match decode::streaming(&data[offset..]).map_err(|e| describe(offset, &e.to_string()))? {
            Stream::Complete {
                line,
                bytes_consumed,
            } => {
                offset += bytes_consumed;
                if line == PacketLineRef::Flush {
                    return Ok(Scan::FlushAt(offset));
                }
            }
            Stream::Incomplete { .. } => return Ok(Scan::NeedMore),
        }
    }
}

/// Check that `data` is, completely, a sequence of well-formed pkt-lines.
pub fn check_complete(data: &[u8]) -> Result<(), String> {
    if data.is_empty() {
        return Err("the request body is empty; a Git request is a sequence of pkt-lines".into());
    }
    let mut offset = 0;
    while offset < data.len() {
        match decode::streaming(&data[offset..]).map_err(|e| describe(offset, &e.to_string()))? {
            Stream::Complete { bytes_consumed, .. } => offset += bytes_consumed,
            Stream::Incomplete { bytes_needed } => {
                return Err(format!(
                    "the request body ends inside a pkt-line at byte {offset} ({bytes_needed} more bytes expected)"
                ))
            }
        }
    }
    Ok(())
}

/// The payloads of the data pkt-lines of `data`, in order (flush, delimiter
/// and response-end packets skipped). Lines that are not well framed end
/// the scan.
pub fn data_lines(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        let Ok(Stream::Complete {
            line,
            bytes_consumed,
        }) = decode::streaming(&data[offset..])
        else {
            break;
        };
        offset += bytes_consumed;
        if let PacketLineRef::Data(bytes) = line {
            out.push(bytes);
        }
    }
    out
}

/// The object ids of the `want` lines of a fetch request (protocol v0 or
/// v2), in order.
pub fn wants(data: &[u8]) -> Vec<String> {
    data_lines(data)
        .into_iter()
        .filter_map(|line| line.strip_prefix(b"want "))
        .map(|rest| &rest[..rest.len().min(40)])
        .filter(|oid| oid.len() == 40 && oid.iter().all(u8::is_ascii_hexdigit))
        .map(|oid| String::from_utf8_lossy(oid).to_ascii_lowercase())
        .collect()
}

fn describe(offset: usize, error: &str) -> String {
    format!("malformed pkt-line at byte {offset}: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_flush_after_commands() {
        let body = b"0009abcd\n0000PACK....";
        assert_eq!(scan_to_flush(body), Ok(Scan::FlushAt(13)));
        assert_eq!(scan_to_flush(b"0009ab"), Ok(Scan::NeedMore));
        assert_eq!(scan_to_flush(b"0000"), Ok(Scan::FlushAt(4)));
        assert!(scan_to_flush(b"zzzzhello").is_err());
    }

    #[test]
    fn wants_of_v0_and_v2_requests() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let v0 = format!(
            "{:04x}want {a} multi_ack side-band-64k\n{:04x}want {b}\n00000009done\n",
            a.len() + 34,
            b.len() + 10
        );
        assert_eq!(wants(v0.as_bytes()), vec![a.clone(), b.clone()]);
        let v2 = format!("0012command=fetch\n0001{:04x}want {a}\n0000", a.len() + 10);
        assert_eq!(wants(v2.as_bytes()), vec![a]);
        assert!(wants(b"0009done\n").is_empty());
    }

    #[test]
    fn complete_bodies() {
        assert!(check_complete(b"0009done\n").is_ok());
        assert!(check_complete(b"0014command=ls-refs\n00010000").is_ok());
        assert!(check_complete(b"0000").is_ok());
        assert!(check_complete(b"").is_err());
        assert!(check_complete(b"0009do").is_err());
        assert!(check_complete(b"GET / HTTP/1.1").is_err());
        assert!(check_complete(b"0003").is_err());
    }
}

/// Property tests: the reader takes hostile bytes (issue 12, fuzzing).
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// One piece of a hostile body: mostly pkt-line shaped, so the scan
    /// gets past the first length prefix.
    fn piece() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            // A well-framed data line with arbitrary payload bytes.
            vec(any::<u8>(), 1..200).prop_map(|payload| {
                let mut out = format!("{:04x}", payload.len() + 4).into_bytes();
                out.extend_from_slice(&payload);
                out
            }),
            // A want line, well-formed or not.
            "want [0-9a-fA-F]{0,45}( [a-z-]{0,20})?\n?".prop_map(|l| line(&l).into_bytes()),
            Just(b"0000".to_vec()),
            Just(b"0001".to_vec()),
            Just(b"0002".to_vec()),
            // Any length prefix (too short, too long, not hex).
            "[0-9a-fA-Fxz ]{4}".prop_map(String::into_bytes),
            vec(any::<u8>(), 0..16),
        ]
    }

    fn check(data: &[u8]) -> Result<(), TestCaseError> {
        let _ = scan_to_flush(data);
        let _ = check_complete(data);
        // What is read borrows from the input: no more lines than
        // length prefixes fit in it, no more payload than it holds.
        let lines = data_lines(data);
        prop_assert!(lines.len() <= data.len() / 4);
        prop_assert!(lines.iter().map(|l| l.len()).sum::<usize>() <= data.len());
        let wants = wants(data);
        prop_assert!(wants.len() <= lines.len());
        prop_assert!(wants
            .iter()
            .all(|w| w.len() == 40 && w.bytes().all(|b| b.is_ascii_hexdigit())));
        let _ = super::super::answers::kind(data);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..4096)) {
            check(&data)?;
        }

        #[test]
        fn pkt_line_shaped_bytes_never_panic(pieces in vec(piece(), 0..40)) {
            check(&pieces.concat())?;
        }

        #[test]
        fn framed_lines_read_back(lines in vec("[ -~]{1,200}", 0..30)) {
            let mut body: String = lines.iter().map(|l| line(l)).collect();
            body.push_str("0000");
            prop_assert_eq!(scan_to_flush(body.as_bytes()), Ok(Scan::FlushAt(body.len())));
            prop_assert!(check_complete(body.as_bytes()).is_ok());
            let back: Vec<&[u8]> = data_lines(body.as_bytes());
            let sent: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
            prop_assert_eq!(back, sent);
        }
    }
}
