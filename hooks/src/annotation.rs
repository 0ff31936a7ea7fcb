//! Porch's `kpt:` commit annotation, written and read the way Porch does.
//!
//! Porch (`pkg/externalrepo/git/annotation.go`, `gitAnnotation` and
//! `AnnotateCommitMessage`) appends `"\n\nkpt:" + json.Marshal(annotation) + "\n"`
//! to a commit message. Go marshals a struct's fields in declaration order
//! (`package`, `workspaceName`, `revision`, `task`) and leaves out empty ones
//! (`omitempty`); `serde_json` would sort a map's keys, so the annotation is a
//! struct here too, with the same field order.

use serde::{Deserialize, Serialize};

/// One `kpt:` annotation line (Porch's `gitAnnotation`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotation {
    /// The package path (`F`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub package: String,
    /// The workspace of the package revision the commit belongs to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workspace_name: String,
    /// The revision number, as a decimal string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
    /// The task that caused the commit (Porch's `v1alpha1.Task`), kept as
    /// JSON in the key order it was built with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<serde_json::Value>,
}

impl Annotation {
    /// The `kpt:{…}` line, without a line end.
    pub fn line(&self) -> String {
        // Serialising a struct of strings and a JSON value cannot fail.
        let json = serde_json::to_string(self).unwrap_or_default();
        format!("kpt:{}", escape_html(&json))
    }

    /// Every annotation in `message`: lines that start with `kpt:` after
    /// trimming, whose rest is valid JSON (Porch's `ExtractGitAnnotations`;
    /// it reports invalid ones as errors, cadgate skips them).
    pub fn all_in(message: &str) -> Vec<Annotation> {
        message
            .lines()
            .filter_map(|l| l.trim().strip_prefix("kpt:"))
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect()
    }
}

/// Go's `json.Marshal` escapes `<`, `>` and `&` (and U+2028, U+2029) inside
/// strings; those characters can only appear inside JSON strings, so escaping
/// them in the whole text is the same.
fn escape_html(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Porch `pkg/externalrepo/git/annotation.go` (gitAnnotation, lines
    /// 31–46): fields in the order package, workspaceName, revision, task,
    /// each `omitempty`.
    #[test]
    fn keys_in_porch_struct_order_and_empty_ones_left_out() {
        let a = Annotation {
            package: "pkgs/web".into(),
            workspace_name: "ws1".into(),
            revision: "3".into(),
            task: None,
        };
        assert_eq!(
            a.line(),
            r#"kpt:{"package":"pkgs/web","workspaceName":"ws1","revision":"3"}"#
        );
        let b = Annotation {
            package: "web".into(),
            revision: "2".into(),
            ..Annotation::default()
        };
        assert_eq!(b.line(), r#"kpt:{"package":"web","revision":"2"}"#);
    }

    /// Go's encoding/json escapes HTML characters by default.
    #[test]
    fn html_characters_escaped_like_go() {
        let a = Annotation {
            package: "a&b<c>".into(),
            ..Annotation::default()
        };
        assert_eq!(a.line(), r#"kpt:{"package":"a\u0026b\u003cc\u003e"}"#);
        assert_eq!(Annotation::all_in(&a.line())[0], a);
    }

    /// Porch annotation.go ExtractGitAnnotations (lines 51–68): every line,
    /// trimmed, starting with `kpt:`.
    #[test]
    fn reads_every_trimmed_kpt_line() {
        let msg = "title\n\n  kpt:{\"package\":\"a\",\"workspaceName\":\"w\"}\nkpt:not json\nkpt:{\"revision\":\"1\"}\n";
        let all = Annotation::all_in(msg);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].workspace_name, "w");
        assert_eq!(all[1].revision, "1");
    }
}
