//! Clients that cannot read a shallow server's protocol v0 advertisement.
//!
//! The published view is a shallow repository where a proposal tip hides
//! draft history (docs/published-view.md). git's `upload-pack` then lists
//! `shallow <oid>` lines after the refs of its v0 advertisement. git reads
//! them; libgit2 (1.9, which speaks only v0) fails the whole fetch on them
//! with "invalid packet line". For such clients — and only them — the view
//!
//! - leaves the `shallow` lines out of the advertisement, and
//! - asks `upload-pack` for unbounded depth when the client asks for none,
//!   so the pack stops at the view's shallow boundary instead of git failing
//!   on parents the view does not hold.
//!
//! A depth fetch (what deployers do) then gets a proper shallow clone; a
//! full clone gets every published object, and its history walk ends at the
//! proposal tips whose draft parents the view never held.

use http::HeaderMap;

use super::pktline;

/// The `deepen` a full clone is given: git's "infinite" depth.
const UNBOUNDED: &str = "deepen 2147483647";

/// Whether the client announced itself as one that fails on `shallow`
/// lines in a v0 advertisement.
pub fn needs_help(headers: &HeaderMap, view: &std::path::Path) -> bool {
    let libgit2 = headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|agent| agent.contains("libgit2"));
    libgit2 && view.join("shallow").is_file()
}

/// The advertisement without its `shallow` lines. Anything that does not
/// frame as pkt-lines is returned unchanged (git's own error reaches the
/// client as it would).
pub fn without_shallow_lines(advertisement: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(advertisement.len());
    let mut offset = 0;
    while offset < advertisement.len() {
        let Some(length) = frame_length(&advertisement[offset..]) else {
            out.extend_from_slice(&advertisement[offset..]);
            break;
        };
        let line = &advertisement[offset..offset + length];
        if !line
            .get(4..)
            .is_some_and(|data| data.starts_with(b"shallow "))
        {
            out.extend_from_slice(line);
        }
        offset += length;
    }
    out
}

/// A v0 fetch request with an unbounded `deepen` added before its first
/// flush when it has no `deepen` of its own.
pub fn with_unbounded_depth(request: &[u8]) -> Option<Vec<u8>> {
    let deepens = pktline::data_lines(request)
        .into_iter()
        .any(|line| line.starts_with(b"deepen"));
    if deepens {
        return None;
    }
    let mut offset = 0;
    while offset < request.len() {
        let length = frame_length(&request[offset..])?;
        if &request[offset..offset + 4] == b"0000" {
            let mut out = Vec::with_capacity(request.len() + UNBOUNDED.len() + 5);
            out.extend_from_slice(&request[..offset]);
            out.extend_from_slice(pktline::line(&format!("{UNBOUNDED}\n")).as_bytes());
            out.extend_from_slice(&request[offset..]);
            return Some(out);
        }
        offset += length;
    }
    None
}

/// The length of the pkt-line at the start of `data` (4 for the special
/// packets), or `None` when it is not one.
fn frame_length(data: &[u8]) -> Option<usize> {
    let prefix = std::str::from_utf8(data.get(..4)?).ok()?;
    let length = usize::from_str_radix(prefix, 16).ok()?;
    let length = if length < 4 { 4 } else { length };
    (length <= data.len()).then_some(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shallow_lines_are_left_out_and_nothing_else() {
        let a = "a".repeat(40);
        let advertisement = format!(
            "{}{}{}0000",
            pktline::line(&format!("{a} HEAD\0multi_ack shallow\n")),
            pktline::line(&format!("{a} refs/heads/main\n")),
            pktline::line(&format!("shallow {a}\n")),
        );
        let expected = format!(
            "{}{}0000",
            pktline::line(&format!("{a} HEAD\0multi_ack shallow\n")),
            pktline::line(&format!("{a} refs/heads/main\n")),
        );
        assert_eq!(
            without_shallow_lines(advertisement.as_bytes()),
            expected.as_bytes()
        );
        assert_eq!(without_shallow_lines(b"0000"), b"0000");
        assert_eq!(without_shallow_lines(b"zz"), b"zz");
    }

    #[test]
    fn a_request_without_depth_gets_an_unbounded_one() {
        let a = "a".repeat(40);
        let want = pktline::line(&format!("want {a} side-band-64k\n"));
        let request = format!("{want}00000009done\n");
        let expected = format!(
            "{want}{}00000009done\n",
            pktline::line("deepen 2147483647\n")
        );
        assert_eq!(
            with_unbounded_depth(request.as_bytes()).as_deref(),
            Some(expected.as_bytes())
        );
        let deep = format!("{want}{}00000009done\n", pktline::line("deepen 1\n"));
        assert_eq!(with_unbounded_depth(deep.as_bytes()), None);
        assert_eq!(with_unbounded_depth(b"0009done\n"), None);
    }
}
