//! Rewriting a Kptfile's link to its upstream (`metadata.name`, `upstream`,
//! `upstreamLock`) while keeping everything else exactly as written: what a
//! clone or an upgrade does to the package's Kptfile after the merge.

use crate::node::{emit, parse_documents, Node, Scalar, Style};

/// Where a package comes from, as kpt records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamLink<'a> {
    /// The upstream repository's URL.
    pub repo: &'a str,
    /// The package directory there, as kpt writes it (with a leading `/`).
    pub directory: &'a str,
    /// The ref (`upstream.git.ref` and `upstreamLock.git.ref`).
    pub reference: &'a str,
    /// The commit the ref resolved to (`upstreamLock.git.commit`).
    pub commit: &'a str,
}

/// `kptfile` with `metadata.name` = `name`, `upstream` = `{type: git, git:
/// {repo, directory, ref}, updateStrategy: resource-merge}` and
/// `upstreamLock` = `{type: git, git: {repo, directory, ref, commit}}`;
/// every other key, value and quoting as it was (comments are not kept).
pub fn with_upstream(kptfile: &str, name: &str, link: &UpstreamLink<'_>) -> Result<String, String> {
    let mut documents = parse_documents(kptfile.as_bytes()).map_err(|e| e.to_string())?;
    let Some(document) = documents.first_mut() else {
        return Err("the Kptfile is empty".into());
    };
    if !matches!(document, Node::Map(_)) {
        return Err("the Kptfile is not a YAML mapping".into());
    }
    if !matches!(document.get("metadata"), Some(Node::Map(_))) {
        document.set("metadata", Some(Node::Map(Vec::new())));
    }
    if let Some(metadata) = document.get_mut("metadata") {
        metadata.set("name", Some(string(name)));
    }
    let git = |with_commit: bool| {
        let mut entries = vec![
            (Scalar::plain("repo"), string(link.repo)),
            (Scalar::plain("directory"), string(link.directory)),
            (Scalar::plain("ref"), string(link.reference)),
        ];
        if with_commit {
            entries.push((Scalar::plain("commit"), string(link.commit)));
        }
        Node::Map(entries)
    };
    document.set(
        "upstream",
        Some(Node::Map(vec![
            (Scalar::plain("type"), string("git")),
            (Scalar::plain("git"), git(false)),
            (Scalar::plain("updateStrategy"), string("resource-merge")),
        ])),
    );
    document.set(
        "upstreamLock",
        Some(Node::Map(vec![
            (Scalar::plain("type"), string("git")),
            (Scalar::plain("git"), git(true)),
        ])),
    );
    Ok(emit(&documents))
}

/// A string scalar, quoted only when plain text would read as something
/// else (a commit id of digits only, `on`, `1.10`...).
fn string(value: &str) -> Node {
    let plain = Scalar::plain(value);
    let special_start = value.starts_with([
        '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@',
        '`', ' ',
    ]);
    let plain_safe = !special_start
        && !value.contains(": ")
        && !value.contains(" #")
        && !value.contains('\n')
        && !value.ends_with([':', ' ']);
    let style = if plain.is_string() && plain_safe {
        Style::Plain
    } else {
        Style::DoubleQuoted
    };
    Node::Scalar(Scalar {
        value: value.to_string(),
        style,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: UpstreamLink<'static> = UpstreamLink {
        repo: "https://git.example.com/blueprints.git",
        directory: "/web",
        reference: "web/v2",
        commit: "1234567890123456789012345678901234567890",
    };

    #[test]
    fn the_link_is_written_and_everything_else_kept() {
        let kptfile = "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: web\n  annotations:\n    mode: 'on'\ninfo:\n  description: \"1.10\"\npipeline:\n  mutators:\n  - image: gcr.io/kpt-fn/set-namespace:v0.4\n    configMap:\n      namespace: prod\nupstream:\n  type: git\n  git:\n    repo: old\n";
        let out = with_upstream(kptfile, "site", &LINK).expect("rewritten");
        assert_eq!(
            out,
            "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: site\n  annotations:\n    mode: 'on'\ninfo:\n  description: \"1.10\"\npipeline:\n  mutators:\n    - image: gcr.io/kpt-fn/set-namespace:v0.4\n      configMap:\n        namespace: prod\nupstream:\n  type: git\n  git:\n    repo: https://git.example.com/blueprints.git\n    directory: /web\n    ref: web/v2\n  updateStrategy: resource-merge\nupstreamLock:\n  type: git\n  git:\n    repo: https://git.example.com/blueprints.git\n    directory: /web\n    ref: web/v2\n    commit: \"1234567890123456789012345678901234567890\"\n"
        );
    }

    #[test]
    fn a_kptfile_that_is_not_a_mapping_is_refused() {
        assert!(with_upstream("- a\n- b\n", "x", &LINK).is_err());
        assert!(with_upstream("", "x", &LINK).is_err());
        assert!(with_upstream("a: [", "x", &LINK).is_err());
    }
}
