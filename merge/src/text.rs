//! Line-based three-way merge of a file both sides changed that is not
//! merged as YAML (a `README.md`, a script, a template).
//!
//! The line merge itself is [`diffy`]'s diff3. Changes to different lines
//! are both kept; changes to the same or adjacent lines that differ are a
//! conflict, and the local file is kept unchanged. Files that are not UTF-8
//! text, or hold NUL bytes, are not merged line by line: both sides changing
//! one is a conflict.

use crate::Conflict;

/// The most lines of a conflicting region quoted in a conflict's detail.
const QUOTED_LINES: usize = 40;

/// Merge one text file both sides changed, appending to `conflicts` when the
/// changes overlap. Returns the merged bytes, or the local bytes on conflict.
pub fn merge_file(
    path: &str,
    base: &[u8],
    upstream: &[u8],
    local: &[u8],
    conflicts: &mut Vec<Conflict>,
) -> Vec<u8> {
    let conflict = |detail: String| Conflict {
        path: path.to_string(),
        resource: None,
        field: None,
        detail,
    };
    let (Some(b), Some(u), Some(l)) = (as_text(base), as_text(upstream), as_text(local)) else {
        conflicts.push(conflict(
            "a binary file changed both upstream and locally; the local file is kept".into(),
        ));
        return local.to_vec();
    };
    if [b, u, l]
        .iter()
        .any(|t| t.len() > MAX_LINE_MERGE_BYTES || t.lines().count() > MAX_LINE_MERGE_LINES)
    {
        conflicts.push(conflict(format!(
            "both sides changed it, and it is over {MAX_LINE_MERGE_LINES} lines or {} KiB, too large for a line merge; the local file is kept",
            MAX_LINE_MERGE_BYTES / 1024
        )));
        return local.to_vec();
    }
    match diffy::merge(b, l, u) {
        Ok(merged) => merged.into_bytes(),
        Err(marked) => {
            conflicts.push(conflict(describe(&marked)));
            local.to_vec()
        }
    }
}

/// The largest file merged line by line (a diff's time grows with the
/// product of length and differences, so hostile input is bounded).
const MAX_LINE_MERGE_BYTES: usize = 1024 * 1024;
/// The most lines of a file merged line by line.
const MAX_LINE_MERGE_LINES: usize = 20_000;

/// The file as text, when it is UTF-8 without NUL bytes.
fn as_text(bytes: &[u8]) -> Option<&str> {
    if bytes.contains(&0) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// A conflict's detail from diffy's marked-up output: how many regions
/// conflict, and the first one quoted with its sides named.
fn describe(marked: &str) -> String {
    let regions = marked
        .lines()
        .filter(|line| line.starts_with("<<<<<<< "))
        .count();
    let mut quoted = Vec::new();
    let mut inside = false;
    for line in marked.lines() {
        if !inside && line.starts_with("<<<<<<< ") {
            inside = true;
        }
        if inside {
            quoted.push(relabel(line));
            if line.starts_with(">>>>>>> ") || quoted.len() >= QUOTED_LINES {
                break;
            }
        }
    }
    let what = if regions == 1 {
        "1 region".to_string()
    } else {
        format!("{regions} regions")
    };
    format!(
        "upstream and local changed the same lines ({what}); the local file is kept. First region:\n{}",
        quoted.join("\n")
    )
}

/// diffy's marker labels (ours, original, theirs) as this merge's sides.
fn relabel(line: &str) -> String {
    match line {
        "<<<<<<< ours" => "<<<<<<< local".into(),
        "||||||| original" => "||||||| base".into(),
        ">>>>>>> theirs" => ">>>>>>> upstream".into(),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_to_different_lines_are_both_kept() {
        let mut conflicts = Vec::new();
        let merged = merge_file(
            "notes.txt",
            b"one\ntwo\nthree\nfour\nfive\n",
            b"ONE\ntwo\nthree\nfour\nfive\n",
            b"one\ntwo\nthree\nfour\nFIVE\n",
            &mut conflicts,
        );
        assert!(conflicts.is_empty(), "{conflicts:?}");
        assert_eq!(merged, b"ONE\ntwo\nthree\nfour\nFIVE\n");
    }

    #[test]
    fn overlapping_changes_keep_local_and_quote_the_region() {
        let mut conflicts = Vec::new();
        let merged = merge_file(
            "notes.txt",
            b"one\ntwo\nthree\n",
            b"one\nTWO upstream\nthree\n",
            b"one\nTWO local\nthree\n",
            &mut conflicts,
        );
        assert_eq!(merged, b"one\nTWO local\nthree\n");
        assert_eq!(conflicts.len(), 1);
        assert_eq!(
            conflicts[0].detail,
            "upstream and local changed the same lines (1 region); the local file is kept. \
             First region:\n<<<<<<< local\nTWO local\n||||||| base\ntwo\n=======\nTWO upstream\n>>>>>>> upstream"
        );
    }

    #[test]
    fn binary_files_changed_on_both_sides_conflict() {
        let mut conflicts = Vec::new();
        let merged = merge_file("logo.png", b"\0a", b"\0b", b"\0c", &mut conflicts);
        assert_eq!(merged, b"\0c");
        assert_eq!(conflicts.len(), 1);
        assert!(conflicts[0].detail.starts_with("a binary file"));
    }
}
