//! Remembered answers of the published view.
//!
//! Every cluster that follows a repository polls its published view with the
//! same two requests: an `ls-refs` and, when nothing was published, a `fetch`
//! whose wants it already has. While the view's refs stay the same, git's
//! answer to the same request is the same, so the first answer is kept and
//! replayed to the others: git still computes every answer cadgate gives,
//! once per refs generation. The publish transaction bumps the generation
//! (`cadgate-generation` in the view's repository, [`cadgate_hooks::published`])
//! after moving the refs, so a publish is visible to the very next poll.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;

use bytes::Bytes;

use super::pktline::data_lines;

/// Total bytes of remembered answers and their requests per repository.
/// Anyone may send requests to a view anyone may read, each with another
/// key: this is what they can make the server hold (docs/limits.md).
const MAX_BYTES: usize = 16 << 20;
/// Largest single answer remembered.
pub const MAX_ANSWER: usize = 4 << 20;

/// What a request is, for deciding whether its answer can be replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Protocol v2 `ls-refs`.
    LsRefs,
    /// Protocol v2 `fetch` whose every want is among its haves: a poll
    /// that finds nothing new (the answer holds no objects worth the name).
    NoOpFetch,
    /// Anything else: run git and stream.
    Other,
}

/// Classify a protocol v2 request body (already decoded).
pub fn kind(body: &[u8]) -> Kind {
    let lines = data_lines(body);
    let command = lines
        .iter()
        .find_map(|l| l.strip_prefix(b"command=".as_slice()));
    match command {
        Some(b"ls-refs\n") | Some(b"ls-refs") => Kind::LsRefs,
        Some(b"fetch\n") | Some(b"fetch") => {
            let oid = |prefix: &[u8], line: &[u8]| {
                line.strip_prefix(prefix)
                    .map(|rest| rest.iter().take(40).copied().collect::<Vec<u8>>())
            };
            let wants: Vec<Vec<u8>> = lines.iter().filter_map(|l| oid(b"want ", l)).collect();
            let haves: Vec<Vec<u8>> = lines.iter().filter_map(|l| oid(b"have ", l)).collect();
            let unusual = lines.iter().any(|l| {
                l.starts_with(b"want-ref ")
                    || l.starts_with(b"filter ")
                    || l.starts_with(b"packfile-uris ")
                    || l.starts_with(b"deepen-since ")
                    || l.starts_with(b"deepen-not ")
            });
            if !wants.is_empty() && !unusual && wants.iter().all(|w| haves.contains(w)) {
                Kind::NoOpFetch
            } else {
                Kind::Other
            }
        }
        _ => Kind::Other,
    }
}

/// The request as a cache key: every pkt-line but the client's `agent=`,
/// plus the protocol header.
fn key(protocol: &str, body: &[u8]) -> Vec<u8> {
    let mut key = protocol.as_bytes().to_vec();
    key.push(0);
    for line in data_lines(body) {
        if !line.starts_with(b"agent=") {
            key.extend_from_slice(line);
            key.push(0);
        }
    }
    key
}

/// The view's current refs generation, as the sync last wrote it; `None`
/// before the first sync (then nothing is remembered).
pub fn generation(published: &Path) -> Option<u64> {
    Some(cadgate_hooks::published::read_generation(published)).filter(|g| *g > 0)
}

#[derive(Debug, Default)]
struct Store {
    generation: u64,
    answers: HashMap<Vec<u8>, Bytes>,
    order: VecDeque<Vec<u8>>,
    bytes: usize,
}

/// Remembered answers of one repository's published view.
#[derive(Debug, Default)]
pub struct Answers {
    store: Mutex<Store>,
}

impl Answers {
    /// The remembered answer to `body`, if the refs are still at `generation`.
    pub fn get(&self, generation: u64, protocol: &str, body: &[u8]) -> Option<Bytes> {
        let store = self.store.lock().ok()?;
        if store.generation != generation {
            return None;
        }
        store.answers.get(&key(protocol, body)).cloned()
    }

    /// Remember `answer` to `body` at `generation`. A newer generation
    /// forgets the older one's answers; an answer of an older generation is
    /// dropped; the oldest answers go first when full.
    pub fn put(&self, generation: u64, protocol: &str, body: &[u8], answer: Bytes) {
        if answer.len() > MAX_ANSWER {
            return;
        }
        let Ok(mut store) = self.store.lock() else {
            return;
        };
        if generation < store.generation {
            return;
        }
        if generation > store.generation {
            *store = Store {
                generation,
                ..Store::default()
            };
        }
        let key = key(protocol, body);
        if store.answers.contains_key(&key) {
            return;
        }
        let size = key.len() + answer.len();
        while store.bytes + size > MAX_BYTES {
            let Some(oldest) = store.order.pop_front() else {
                break;
            };
            if let Some(gone) = store.answers.remove(&oldest) {
                store.bytes -= oldest.len() + gone.len();
            }
        }
        store.bytes += size;
        store.order.push_back(key.clone());
        store.answers.insert(key, answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(lines: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for line in lines {
            match *line {
                "0000" | "0001" => out.extend_from_slice(line.as_bytes()),
                text => out.extend_from_slice(crate::smart_http::pktline::line(text).as_bytes()),
            }
        }
        out
    }

    #[test]
    fn recognises_polls() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let ls = pkt(&[
            "command=ls-refs\n",
            "agent=git/2.47\n",
            "0001",
            "peel\n",
            "ref-prefix refs/heads/main\n",
            "0000",
        ]);
        assert_eq!(kind(&ls), Kind::LsRefs);
        let noop = pkt(&[
            "command=fetch\n",
            "0001",
            "thin-pack\n",
            &format!("shallow {a}\n"),
            "deepen 1\n",
            &format!("want {a}\n"),
            &format!("have {a}\n"),
            "0000",
        ]);
        assert_eq!(kind(&noop), Kind::NoOpFetch);
        let new = pkt(&[
            "command=fetch\n",
            "0001",
            &format!("want {b}\n"),
            &format!("have {a}\n"),
            "0000",
        ]);
        assert_eq!(kind(&new), Kind::Other);
        let clone = pkt(&[
            "command=fetch\n",
            "0001",
            &format!("want {a}\n"),
            "done\n",
            "0000",
        ]);
        assert_eq!(kind(&clone), Kind::Other);
        let filtered = pkt(&[
            "command=fetch\n",
            "0001",
            "filter blob:none\n",
            &format!("want {a}\n"),
            &format!("have {a}\n"),
            "0000",
        ]);
        assert_eq!(kind(&filtered), Kind::Other);
    }

    #[test]
    fn answers_are_per_generation_and_ignore_the_agent() {
        let answers = Answers::default();
        let one = pkt(&[
            "command=ls-refs\n",
            "agent=git/2.39\n",
            "0001",
            "peel\n",
            "0000",
        ]);
        let two = pkt(&[
            "command=ls-refs\n",
            "agent=git/2.47\n",
            "0001",
            "peel\n",
            "0000",
        ]);
        answers.put(1, "version=2", &one, Bytes::from_static(b"refs"));
        assert_eq!(
            answers.get(1, "version=2", &two),
            Some(Bytes::from_static(b"refs"))
        );
        assert_eq!(answers.get(1, "version=0", &two), None);
        assert_eq!(answers.get(2, "version=2", &two), None);
        answers.put(2, "version=2", &two, Bytes::from_static(b"new"));
        assert_eq!(answers.get(1, "version=2", &one), None);
        assert_eq!(
            answers.get(2, "version=2", &one),
            Some(Bytes::from_static(b"new"))
        );
        // A late answer of an older generation does not displace the newer.
        answers.put(1, "version=2", &one, Bytes::from_static(b"old"));
        assert_eq!(
            answers.get(2, "version=2", &one),
            Some(Bytes::from_static(b"new"))
        );
    }
}
