//! The `proc-receive` hook protocol (githooks(5)): how git hands the ref
//! updates of a push to cadgate and learns, per ref, what happened.
//!
//! ```text
//! git  → hook: version=1\0<capabilities>  flush
//! hook → git : version=1\0push-options    flush
//! git  → hook: <old> <new> <ref> …         flush   [push options … flush]
//! hook → git : ok <ref> | ng <ref> <reason> [option refname|old-oid|new-oid|forced-update …] flush
//! ```

use std::io::{self, Read, Write};

use gix_packetline::blocking_io::encode;
use gix_packetline::blocking_io::StreamingPeekableIter;
use gix_packetline::PacketLineRef;

/// One ref update as the client asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The ref's current value as the client saw it (all zeros: create).
    pub old: String,
    /// The value asked for (all zeros: delete).
    pub new: String,
    /// The full ref name.
    pub refname: String,
}

/// The all-zeros object id.
pub const ZERO_OID: &str = "0000000000000000000000000000000000000000";

impl Command {
    /// The ref is being created.
    pub fn is_create(&self) -> bool {
        self.old == ZERO_OID
    }

    /// The ref is being deleted.
    pub fn is_delete(&self) -> bool {
        self.new == ZERO_OID
    }
}

/// What git sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The client asked for an atomic push.
    pub atomic: bool,
    /// The commands, in order.
    pub commands: Vec<Command>,
    /// `git push -o` options.
    pub push_options: Vec<String>,
}

/// How one ref update ended, as reported to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; when `rewritten` is set the ref ended somewhere other than asked.
    Ok {
        /// The ref as the client named it.
        refname: String,
        /// Where it really went, when the server rewrote the update.
        rewritten: Option<Rewrite>,
    },
    /// Refused, with a reason the client prints.
    Rejected {
        /// The ref as the client named it.
        refname: String,
        /// One line: the rule and the command that would work.
        reason: String,
    },
}

/// A server-side rewrite of an update (report-status-v2 options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// The ref actually updated, when different from the one pushed.
    pub refname: Option<String>,
    /// Its old value.
    pub old_oid: String,
    /// Its new value.
    pub new_oid: String,
    /// Not a fast-forward.
    pub forced: bool,
}

/// The protocol was not followed.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// Reading or writing failed.
    #[error("proc-receive I/O: {0}")]
    Io(#[from] io::Error),
    /// Something unexpected arrived.
    #[error("proc-receive protocol: {0}")]
    Unexpected(String),
}

/// Do the version handshake on `input`/`output` and read the commands.
pub fn read_request<R: Read, W: Write>(input: R, mut output: W) -> Result<Request, ProtocolError> {
    let mut lines = StreamingPeekableIter::new(input, &[PacketLineRef::Flush], false);
    let version = read_section(&mut lines)?;
    let first = version
        .first()
        .ok_or_else(|| ProtocolError::Unexpected("no version line".into()))?;
    let (version_text, capabilities) = match first.split_once('\0') {
        Some((v, caps)) => (v, caps),
        None => (first.as_str(), ""),
    };
    if version_text.trim() != "version=1" {
        return Err(ProtocolError::Unexpected(format!(
            "unsupported {version_text:?}; cadgate speaks version=1"
        )));
    }
    let caps: Vec<&str> = capabilities.split_whitespace().collect();
    let push_options = caps.contains(&"push-options");
    let atomic = caps.contains(&"atomic");
    let mut reply = b"version=1\0".to_vec();
    if push_options {
        reply.extend_from_slice(b"push-options");
    }
    reply.push(b'\n');
    encode::data_to_write(&reply, &mut output)?;
    encode::flush_to_write(&mut output)?;
    output.flush()?;

    lines.reset();
    let mut commands = Vec::new();
    for line in read_section(&mut lines)? {
        let mut parts = line.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(old), Some(new), Some(refname)) if is_oid(old) && is_oid(new) => {
                commands.push(Command {
                    old: old.into(),
                    new: new.into(),
                    refname: refname.into(),
                })
            }
            _ => {
                return Err(ProtocolError::Unexpected(format!(
                    "bad command line {line:?}"
                )))
            }
        }
    }
    let mut options = Vec::new();
    if push_options {
        lines.reset();
        options = read_section(&mut lines)?;
    }
    Ok(Request {
        atomic,
        commands,
        push_options: options,
    })
}

/// Report every outcome and the closing flush.
pub fn write_outcomes<W: Write>(mut output: W, outcomes: &[Outcome]) -> io::Result<()> {
    for outcome in outcomes {
        match outcome {
            Outcome::Ok { refname, rewritten } => {
                encode::data_to_write(format!("ok {refname}\n").as_bytes(), &mut output)?;
                if let Some(r) = rewritten {
                    if let Some(name) = &r.refname {
                        encode::data_to_write(
                            format!("option refname {name}\n").as_bytes(),
                            &mut output,
                        )?;
                    }
                    encode::data_to_write(
                        format!("option old-oid {}\n", r.old_oid).as_bytes(),
                        &mut output,
                    )?;
                    encode::data_to_write(
                        format!("option new-oid {}\n", r.new_oid).as_bytes(),
                        &mut output,
                    )?;
                    if r.forced {
                        encode::data_to_write(b"option forced-update\n", &mut output)?;
                    }
                }
            }
            Outcome::Rejected { refname, reason } => {
                // A reason is one line of printable text (it may echo a
                // hostile ref name); git shows it in parentheses.
                let reason: String = reason
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                encode::data_to_write(format!("ng {refname} {reason}\n").as_bytes(), &mut output)?;
            }
        }
    }
    encode::flush_to_write(&mut output)?;
    output.flush()
}

fn read_section<R: Read>(
    lines: &mut StreamingPeekableIter<R>,
) -> Result<Vec<String>, ProtocolError> {
    let mut out = Vec::new();
    while let Some(line) = lines.read_line() {
        let line = line?.map_err(|e| ProtocolError::Unexpected(e.to_string()))?;
        let data = line
            .as_slice()
            .ok_or_else(|| ProtocolError::Unexpected("a special packet inside a section".into()))?;
        let text = String::from_utf8_lossy(data);
        out.push(text.trim_end_matches('\n').to_string());
    }
    Ok(out)
}

fn is_oid(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(s: &str) -> String {
        format!("{:04x}{s}", s.len() + 4)
    }

    #[test]
    fn reads_a_push_and_answers_the_handshake() {
        let a = "a".repeat(40);
        let input = format!(
            "{}0000{}{}0000{}0000",
            pkt("version=1\0push-options atomic\n"),
            pkt(&format!("{ZERO_OID} {a} refs/heads/drafts/pkg/ws\n")),
            pkt(&format!("{a} {ZERO_OID} refs/heads/proposed/pkg/ws\n")),
            pkt("ci.skip\n"),
        );
        let mut reply = Vec::new();
        let request = read_request(input.as_bytes(), &mut reply).expect("valid request");
        assert!(request.atomic);
        assert_eq!(request.commands.len(), 2);
        assert!(request.commands[0].is_create());
        assert!(request.commands[1].is_delete());
        assert_eq!(request.push_options, vec!["ci.skip".to_string()]);
        assert_eq!(
            reply,
            format!("{}0000", pkt("version=1\0push-options\n")).as_bytes()
        );
    }

    #[test]
    fn writes_outcomes_with_rewrites() {
        let mut out = Vec::new();
        write_outcomes(
            &mut out,
            &[
                Outcome::Ok {
                    refname: "refs/heads/main".into(),
                    rewritten: Some(Rewrite {
                        refname: None,
                        old_oid: "1".repeat(40),
                        new_oid: "2".repeat(40),
                        forced: false,
                    }),
                },
                Outcome::Rejected {
                    refname: "refs/tags/p/v1".into(),
                    reason: "tags are made by publishing\nonly".into(),
                },
            ],
        )
        .expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains("ok refs/heads/main\n"));
        assert!(text.contains(&format!("option new-oid {}\n", "2".repeat(40))));
        assert!(text.contains("ng refs/tags/p/v1 tags are made by publishing only\n"));
        assert!(text.ends_with("0000"));
    }

    #[test]
    fn refuses_garbage() {
        let input = format!("{}0000", pkt("version=2\n"));
        assert!(read_request(input.as_bytes(), Vec::new()).is_err());
        let input = format!("{}0000{}0000", pkt("version=1\n"), pkt("not a command\n"));
        assert!(read_request(input.as_bytes(), Vec::new()).is_err());
    }
}
