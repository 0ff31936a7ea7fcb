//! The YAML tree the merge works on: a lossless reading of the documents'
//! data (not their comments).
//!
//! Generic YAML value types resolve scalars, so writing a document anew
//! would turn `version: 1.10` into `1.1`, `mode: 0644` into `644` or a
//! 40-digit commit id into a float. Here a scalar keeps its source text and
//! style: a plain scalar is written back exactly as it was read, a quoted
//! or block scalar is written back quoted (in its own style where it can
//! be), so the merged file means to any YAML reader, 1.1 or 1.2, what its
//! sources meant.
//!
//! Anchors, aliases, explicit tags and non-scalar mapping keys are not
//! represented: a document that uses them reads as
//! [`ParseError::Unsupported`], and the merge falls back to lines.

use std::fmt::Write as _;

use std::collections::HashSet;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// Why a YAML stream could not be read into [`Node`]s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The bytes are not UTF-8.
    #[error("it is not UTF-8 text")]
    NotUtf8,
    /// The YAML is malformed.
    #[error("{0}")]
    Syntax(String),
    /// Beyond the bounds on user YAML ([`crate::limits`]).
    #[error("{0}")]
    Limit(crate::limits::LimitError),
    /// Valid YAML using a feature the merge does not represent.
    #[error("it uses {0}, which the resource merge does not handle")]
    Unsupported(&'static str),
}

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Plain (unquoted): its meaning (string, number, boolean, null) comes
    /// from its text.
    Plain,
    /// `'single quoted'`: a string.
    SingleQuoted,
    /// `"double quoted"`: a string.
    DoubleQuoted,
    /// A `|` or `>` block: a string.
    Block,
}

/// A scalar: its value (after unescaping and folding) and how it was written.
#[derive(Debug, Clone)]
pub struct Scalar {
    /// The value.
    pub value: String,
    /// How it was written.
    pub style: Style,
}

impl Scalar {
    /// A plain scalar.
    pub fn plain(value: &str) -> Scalar {
        Scalar {
            value: value.to_string(),
            style: Style::Plain,
        }
    }

    /// Whether the scalar is a string: quoted, a block, or plain text that
    /// no YAML version reads as null, a boolean or a number.
    pub fn is_string(&self) -> bool {
        self.style != Style::Plain || plain_is_string(&self.value)
    }
}

/// Scalars are equal when they mean the same: two strings with the same
/// value, however quoted; or two non-string plain scalars with the same
/// text (`1.10` and `1.1` differ: a conservative choice).
impl PartialEq for Scalar {
    fn eq(&self, other: &Scalar) -> bool {
        self.value == other.value && self.is_string() == other.is_string()
    }
}

impl Eq for Scalar {}

/// Hashes what [`PartialEq`] compares.
impl std::hash::Hash for Scalar {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state);
        self.is_string().hash(state);
    }
}

/// A YAML node.
#[derive(Debug, Clone)]
pub enum Node {
    /// A scalar.
    Scalar(Scalar),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping with scalar keys, in document order.
    Map(Vec<(Scalar, Node)>),
}

/// Mappings compare equal whatever their key order.
impl PartialEq for Node {
    fn eq(&self, other: &Node) -> bool {
        match (self, other) {
            (Node::Scalar(a), Node::Scalar(b)) => a == b,
            (Node::Seq(a), Node::Seq(b)) => a == b,
            (Node::Map(a), Node::Map(b)) => {
                if a.len() != b.len() {
                    return false;
                }
                if a.len() <= 16 {
                    return a
                        .iter()
                        .all(|(key, value)| map_get(b, key).is_some_and(|v| v == value));
                }
                // Wide mappings compare through an index: linear, not quadratic.
                let index: std::collections::HashMap<&Scalar, &Node> =
                    b.iter().map(|(k, v)| (k, v)).collect();
                a.iter()
                    .all(|(key, value)| index.get(key).is_some_and(|v| *v == value))
            }
            _ => false,
        }
    }
}

impl Eq for Node {}

/// The value of `key` in a mapping's entries.
pub fn map_get<'a>(entries: &'a [(Scalar, Node)], key: &Scalar) -> Option<&'a Node> {
    entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

impl Node {
    /// The value of the string key `key`, when this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.is_string() && k.value == key)
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The scalar's value, when this is a scalar that is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar(s) if s.is_string() => Some(&s.value),
            _ => None,
        }
    }

    /// Set the string key `key` of a mapping to `value` (in place when
    /// present, appended otherwise), or remove it when `value` is `None`.
    /// Does nothing to other nodes.
    pub fn set(&mut self, key: &str, value: Option<Node>) {
        let Node::Map(entries) = self else {
            return;
        };
        let at = entries
            .iter()
            .position(|(k, _)| k.is_string() && k.value == key);
        match (at, value) {
            (Some(i), Some(value)) => {
                if let Some(entry) = entries.get_mut(i) {
                    entry.1 = value;
                }
            }
            (Some(i), None) => {
                entries.remove(i);
            }
            (None, Some(value)) => entries.push((Scalar::plain(key), value)),
            (None, None) => {}
        }
    }

    /// The child mapping at `key`, mutable.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match self {
            Node::Map(entries) => entries
                .iter_mut()
                .find(|(k, _)| k.is_string() && k.value == key)
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Whether plain text reads as a string under both YAML 1.1 and 1.2: not
/// null, not a boolean (including 1.1's `yes`, `on`, `y`...), not a number.
fn plain_is_string(text: &str) -> bool {
    const NON_STRINGS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "y",
        "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
        "OFF", ".inf", ".Inf", ".INF", "-.inf", "-.Inf", "-.INF", "+.inf", "+.Inf", "+.INF",
        ".nan", ".NaN", ".NAN",
    ];
    if NON_STRINGS.contains(&text) {
        return false;
    }
    // Anything that starts like a number (after a sign) is taken as one:
    // a few odd strings such as `1.25-alpine` compare as non-strings,
    // which only makes equality stricter.
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let mut chars = unsigned.chars();
    match (chars.next(), chars.next()) {
        (Some(c), _) if c.is_ascii_digit() => false,
        (Some('.'), Some(c)) if c.is_ascii_digit() => false,
        _ => true,
    }
}

/// Read a YAML stream into its non-empty documents.
pub fn parse_documents(bytes: &[u8]) -> Result<Vec<Node>, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ParseError::NotUtf8)?;
    use crate::limits::{check, LimitError, Limits};
    check(text, &Limits::RESOURCES).map_err(|e| match e {
        LimitError::TooDeep { .. } => ParseError::Unsupported("collections nested over 128 deep"),
        LimitError::Syntax(message) => ParseError::Syntax(message),
        other => ParseError::Limit(other),
    })?;
    let mut builder = Builder::default();
    for event in Parser::new_from_str(text) {
        let (event, _span) = event.map_err(|e| ParseError::Syntax(e.to_string()))?;
        builder.on_event(event)?;
    }
    Ok(builder.documents)
}

/// The deepest nesting of collections read into a tree; deeper YAML reads
/// as [`ParseError::Unsupported`] (no Kubernetes resource comes close).
const MAX_DEPTH: usize = 128;

/// A collection being read.
enum Open {
    Seq(Vec<Node>),
    Map(Vec<(Scalar, Node)>, Option<Scalar>, HashSet<Scalar>),
}

#[derive(Default)]
struct Builder {
    documents: Vec<Node>,
    stack: Vec<Open>,
}

impl Builder {
    fn on_event(&mut self, event: Event<'_>) -> Result<(), ParseError> {
        match event {
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => Ok(()),
            Event::Alias(_) => Err(ParseError::Unsupported("an alias")),
            Event::Scalar(value, style, anchor, tag) => {
                check_plain(anchor, tag.is_some())?;
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted => Style::SingleQuoted,
                    ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    ScalarStyle::Literal | ScalarStyle::Folded => Style::Block,
                };
                self.push_scalar(Scalar {
                    value: value.into_owned(),
                    style,
                })
            }
            Event::SequenceStart(anchor, tag) => {
                check_plain(anchor, tag.is_some())?;
                self.check_depth()?;
                self.stack.push(Open::Seq(Vec::new()));
                Ok(())
            }
            Event::MappingStart(anchor, tag) => {
                check_plain(anchor, tag.is_some())?;
                self.check_depth()?;
                self.stack.push(Open::Map(Vec::new(), None, HashSet::new()));
                Ok(())
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Open::Seq(items)) => self.push(Node::Seq(items)),
                _ => Err(ParseError::Syntax("unbalanced sequence".into())),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Open::Map(entries, None, _)) => self.push(Node::Map(entries)),
                _ => Err(ParseError::Syntax("unbalanced mapping".into())),
            },
        }
    }

    /// The tree's functions recurse: keep their depth bounded.
    fn check_depth(&self) -> Result<(), ParseError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(ParseError::Unsupported("collections nested over 128 deep"));
        }
        Ok(())
    }

    fn push_scalar(&mut self, scalar: Scalar) -> Result<(), ParseError> {
        if let Some(Open::Map(_, key @ None, seen)) = self.stack.last_mut() {
            if !seen.insert(scalar.clone()) {
                return Err(ParseError::Unsupported("a duplicate mapping key"));
            }
            *key = Some(scalar);
            return Ok(());
        }
        self.push(Node::Scalar(scalar))
    }

    fn push(&mut self, node: Node) -> Result<(), ParseError> {
        match self.stack.last_mut() {
            None => {
                if !is_null(&node) {
                    self.documents.push(node);
                }
                Ok(())
            }
            Some(Open::Seq(items)) => {
                items.push(node);
                Ok(())
            }
            Some(Open::Map(entries, key, _)) => match key.take() {
                Some(k) => {
                    entries.push((k, node));
                    Ok(())
                }
                None => Err(ParseError::Unsupported(
                    "a mapping key that is not a scalar",
                )),
            },
        }
    }
}

fn check_plain(anchor: usize, tagged: bool) -> Result<(), ParseError> {
    if anchor != 0 {
        return Err(ParseError::Unsupported("an anchor"));
    }
    if tagged {
        return Err(ParseError::Unsupported("an explicit tag"));
    }
    Ok(())
}

/// An empty document reads as a null plain scalar.
fn is_null(node: &Node) -> bool {
    matches!(node, Node::Scalar(s) if s.style == Style::Plain
        && matches!(s.value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
}

/// Write documents as one YAML stream in block style, sequences indented
/// under their key.
pub fn emit(documents: &[Node]) -> String {
    let mut out = String::new();
    for (i, document) in documents.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        match document {
            Node::Map(entries) if !entries.is_empty() => emit_map(&mut out, entries, 0, false),
            Node::Seq(items) if !items.is_empty() => emit_seq(&mut out, items, 0),
            other => {
                emit_inline(&mut out, other, 0);
                out.push('\n');
            }
        }
    }
    out
}

/// A mapping's entries at `indent`; with `inline_first`, the first entry
/// follows a `- ` already written.
fn emit_map(out: &mut String, entries: &[(Scalar, Node)], indent: usize, inline_first: bool) {
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 || !inline_first {
            pad(out, indent);
        }
        out.push_str(&scalar_text(key, indent, true));
        out.push(':');
        match value {
            Node::Map(child) if !child.is_empty() => {
                out.push('\n');
                emit_map(out, child, indent + 2, false);
            }
            Node::Seq(items) if !items.is_empty() => {
                out.push('\n');
                emit_seq(out, items, indent + 2);
            }
            other => {
                let text = inline_text(other, indent + 2);
                if !text.is_empty() {
                    out.push(' ');
                    out.push_str(&text);
                }
                out.push('\n');
            }
        }
    }
}

fn emit_seq(out: &mut String, items: &[Node], indent: usize) {
    for item in items {
        pad(out, indent);
        match item {
            Node::Map(entries) if !entries.is_empty() => {
                out.push_str("- ");
                emit_map(out, entries, indent + 2, true);
            }
            Node::Seq(inner) if !inner.is_empty() => {
                out.push_str("-\n");
                emit_seq(out, inner, indent + 2);
            }
            other => {
                let text = inline_text(other, indent + 2);
                out.push('-');
                if !text.is_empty() {
                    out.push(' ');
                    out.push_str(&text);
                }
                out.push('\n');
            }
        }
    }
}

fn emit_inline(out: &mut String, node: &Node, indent: usize) {
    out.push_str(&inline_text(node, indent));
}

/// A scalar or an empty collection, as it follows `key: ` or `- `.
fn inline_text(node: &Node, indent: usize) -> String {
    match node {
        Node::Scalar(s) => scalar_text(s, indent, false),
        Node::Seq(_) => "[]".to_string(),
        Node::Map(_) => "{}".to_string(),
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A scalar as written in block context; block scalars' content lines are
/// indented to `indent`.
fn scalar_text(scalar: &Scalar, indent: usize, is_key: bool) -> String {
    let value = scalar.value.as_str();
    match scalar.style {
        Style::Plain if !value.contains('\n') => value.to_string(),
        Style::Block if !is_key && literal_ok(value) => literal(value, indent),
        Style::SingleQuoted | Style::Block if single_ok(value) => {
            format!("'{}'", value.replace('\'', "''"))
        }
        _ => double_quoted(value),
    }
}

/// Whether a string can be a `|` block: several lines, printable, and no
/// leading space or blank line before the first line of text (that would
/// need an indentation indicator).
fn literal_ok(value: &str) -> bool {
    value.contains('\n')
        && value.chars().all(|c| c == '\n' || printable(c))
        && value
            .split('\n')
            .find(|line| !line.is_empty())
            .is_some_and(|first| !first.starts_with([' ', '\t']))
        && value
            .split('\n')
            .take_while(|line| line.trim().is_empty())
            .all(str::is_empty)
}

fn literal(value: &str, indent: usize) -> String {
    let body = value.trim_end_matches('\n');
    let trailing = value.len() - body.len();
    let header = match trailing {
        0 => "|-",
        1 => "|",
        _ => "|+",
    };
    let mut out = String::from(header);
    let kept = if trailing > 1 { value } else { body };
    let lines: Vec<&str> = kept.split('\n').collect();
    let last = lines.len().saturating_sub(1);
    for (i, line) in lines.iter().enumerate() {
        if trailing > 1 && i == last && line.is_empty() {
            break;
        }
        out.push('\n');
        if !line.is_empty() {
            out.extend(std::iter::repeat_n(' ', indent));
            out.push_str(line);
        }
    }
    out
}

fn single_ok(value: &str) -> bool {
    value.chars().all(printable)
}

/// Printable on one line in YAML, and not a tab.
fn printable(c: char) -> bool {
    !(c.is_control() || c == '\u{feff}' || ('\u{2028}'..='\u{2029}').contains(&c))
}

/// A double-quoted YAML scalar: valid for any string.
pub fn double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if !printable(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A node on one line, for a person: strings double-quoted, other scalars
/// as written, collections in flow style.
pub fn render(node: &Node) -> String {
    match node {
        Node::Scalar(s) if s.is_string() => double_quoted(&s.value),
        Node::Scalar(s) => s.value.clone(),
        Node::Seq(items) => {
            let items: Vec<String> = items.iter().map(render).collect();
            format!("[{}]", items.join(", "))
        }
        Node::Map(entries) => {
            let entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", render(&Node::Scalar(k.clone())), render(v)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> String {
        let documents = parse_documents(text.as_bytes()).expect("parses");
        let written = emit(&documents);
        let reread = parse_documents(written.as_bytes()).expect("the output parses");
        assert_eq!(reread, documents, "{written}");
        written
    }

    #[test]
    fn scalars_keep_their_text() {
        let text = "version: 1.10\nmode: 0644\ncommit: 1111111111111111111111111111111111111111\n\
                    flag: on\nquoted: 'on'\ndq: \"x\\ty\"\nempty:\nnull: ~\n";
        assert_eq!(round_trip(text), text);
    }

    #[test]
    fn block_and_flow_styles_become_block() {
        let text = "a: [x, 'y', {b: c}]\ns: |\n  line one\n  line two\nf: >-\n  folded\n  text\nk: {}\nl: []\n";
        assert_eq!(
            round_trip(text),
            "a:\n  - x\n  - 'y'\n  - b: c\ns: |\n  line one\n  line two\nf: 'folded text'\nk: {}\nl: []\n"
        );
    }

    #[test]
    fn literal_blocks_keep_their_chomping() {
        for value in ["a\nb", "a\nb\n", "a\nb\n\n", "\na\n  b\n"] {
            let text = format!("k: {}\n", double_quoted(value));
            let documents = parse_documents(text.as_bytes()).expect("parses");
            let block = Node::Map(vec![(
                Scalar::plain("k"),
                Node::Scalar(Scalar {
                    value: value.to_string(),
                    style: Style::Block,
                }),
            )]);
            assert_eq!(documents, vec![block.clone()]);
            let written = emit(&[block]);
            assert!(written.starts_with("k: |"), "{written}");
            let reread = parse_documents(written.as_bytes()).expect("the output parses");
            assert_eq!(reread, documents, "{written}");
        }
    }

    #[test]
    fn equality_is_by_meaning() {
        let a = parse_documents(b"a: hello\nb: '80'\nc: 1\n").expect("parses");
        let b = parse_documents(b"c: 1\nb: \"80\"\na: 'hello'\n").expect("parses");
        assert_eq!(a, b);
        let c = parse_documents(b"a: hello\nb: 80\nc: 1\n").expect("parses");
        assert_ne!(a, c);
    }

    #[test]
    fn unsupported_and_invalid_input() {
        assert_eq!(
            parse_documents(b"a: &x 1\nb: *x\n"),
            Err(ParseError::Unsupported("an anchor"))
        );
        assert_eq!(
            parse_documents(b"a: !!str 1\n"),
            Err(ParseError::Unsupported("an explicit tag"))
        );
        assert_eq!(
            parse_documents(b"a: 1\na: 2\n"),
            Err(ParseError::Unsupported("a duplicate mapping key"))
        );
        assert!(matches!(
            parse_documents(b"a: [1\n"),
            Err(ParseError::Syntax(_))
        ));
        assert_eq!(parse_documents(b"\xff"), Err(ParseError::NotUtf8));
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(
            parse_documents(deep.as_bytes()),
            Err(ParseError::Unsupported("collections nested over 128 deep"))
        );
        let mut block = String::new();
        for depth in 0..1000 {
            block.push_str(&" ".repeat(depth));
            block.push_str("k:\n");
        }
        assert_eq!(
            parse_documents(block.as_bytes()),
            Err(ParseError::Unsupported("collections nested over 128 deep"))
        );
    }

    #[test]
    fn multiple_documents_and_empty_ones() {
        let documents = parse_documents(b"---\na: 1\n---\n---\nb: 2\n").expect("parses");
        assert_eq!(documents.len(), 2);
        assert_eq!(emit(&documents), "a: 1\n---\nb: 2\n");
    }
}
