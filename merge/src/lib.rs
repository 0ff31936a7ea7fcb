//! cadgate's three-way merge of kpt packages: upgrading a downstream package
//! to a newer revision of its upstream, the way `kpt pkg update
//! --strategy=resource-merge` does.
//!
//! The one entry point is [`merge`]: given the package's files at the old
//! upstream revision (`base`), at the new upstream revision (`upstream`) and
//! downstream (`local`), it returns the merged files and every
//! [`Conflict`] it met. The merged files are always a complete package: where
//! the two sides disagree, the local side is kept and a conflict names it.
//!
//! - A file only one side changed is taken from that side byte for byte
//!   (comments, key order and layout survive); see [`merge`] for the rules
//!   on added and removed files.
//! - YAML files ([`is_yaml_path`]: `*.yaml`, `*.yml`, `Kptfile`) that both
//!   sides changed are merged resource by resource and field by field.
//! - Other files both sides changed are merged line by line.
//!
//! ## YAML files
//!
//! ### Resources
//!
//! Each side's file is read as a stream of YAML documents (empty documents
//! are skipped). Every document must be a KRM resource: a mapping with
//! string `apiVersion`, `kind` and `metadata.name`. Resources are matched
//! across base, upstream and local by API group (the part of `apiVersion`
//! before the `/`; the version is ignored so that an upstream moving a
//! resource to a newer version still matches the local copy), kind,
//! `metadata.namespace` (absent is its own value, not `default`) and
//! `metadata.name`. A `Kptfile` resource matches the other sides' Kptfile
//! whatever its name, since `kpt pkg get` renames the local one.
//!
//! Resources are matched within one file: a resource moved to another file
//! on one side is seen as removed from one file and added to another.
//!
//! A file whose documents are not all KRM resources, that holds two
//! resources of one identity, or that uses YAML the tree does not represent
//! (anchors, aliases, explicit tags, duplicate or non-scalar keys, nesting
//! over 128 deep) is merged line by line instead; one that does not parse
//! on any side is a conflict and the local file is kept.
//!
//! | base | upstream | local | result |
//! | --- | --- | --- | --- |
//! | – | U | – | U, appended after the local resources |
//! | – | – | L | L |
//! | – | U | L | merged field by field with an empty base |
//! | B | – | L | removed if L = B, else a conflict and L is kept |
//! | B | U | – | stays removed if U = B, else a conflict and it stays removed |
//! | B | U | L | merged field by field |
//!
//! ### Fields
//!
//! A field (absent counts as a value) is taken from upstream when local
//! left it as in base, and from local when upstream left it as in base or
//! both made the same change. Values compare by meaning: `'web'` equals
//! `web` and key order does not count, but `"80"` (a string) differs from
//! `80`, and `1.10` from `1.1`. Otherwise:
//!
//! - two mappings are merged key by key, in the local key order with keys
//!   only upstream has appended;
//! - two lists whose elements are all mappings with a distinct string `name`
//!   (containers, env, named ports, volumes) are merged as associative lists
//!   keyed by `name`: element by element, in the local order with elements
//!   only upstream added appended (like kyaml without an OpenAPI schema, no
//!   other key is inferred: unnamed `ports` or `volumeMounts` are atomic);
//! - anything else (scalars, other lists, a mapping against a scalar) is a
//!   conflict naming the resource and the field's dotted path, such as
//!   `spec.template.spec.containers[name=web].image` (a key holding a dot
//!   or bracket is quoted: `metadata.annotations["example.com/owner"]`),
//!   and the local value is kept.
//!
//! ### The Kptfile
//!
//! A resource of kind `Kptfile` is merged like any other, except that its
//! `upstream`, `upstreamLock` and `metadata.name` are always the local ones:
//! the caller rewrites `upstream` and `upstreamLock` after the merge.
//!
//! ### Output
//!
//! The merged documents are the local ones in local order, then those added
//! upstream in upstream order. They are written out as the first of these
//! that reads as exactly those documents:
//!
//! 1. the local file's bytes, unchanged;
//! 2. the upstream file's bytes, unchanged;
//! 3. a clean line-by-line merge of the file (changes on different lines),
//!    which keeps the comments and layout of both sides;
//! 4. the documents written anew, which loses the file's comments and blank
//!    lines. Only a file both sides changed, in ways a line merge cannot
//!    combine, comes to this. Every scalar keeps its source text and style
//!    (a plain scalar is written exactly as read, a quoted or block one stays
//!    quoted), so `version: 1.10`, `mode: 0644` or a 40-digit commit id come
//!    out as they went in and the file means to any YAML reader, 1.1 or 1.2,
//!    what its sources meant. Sequences are indented under their key.
//!
//! Mappings compare equal whatever their key order, so in cases 1 to 3 the
//! key order is the one of the file taken.
//!
//! ## Other files
//!
//! The line merge is `diffy`'s diff3. Changes to different lines are both
//! kept; changes to the same or adjacent lines that differ are a conflict
//! quoting the first conflicting region, and the local file is kept. Files
//! that are not UTF-8 text, or hold NUL bytes, are not merged line by line:
//! both sides changing one is a conflict.

#![warn(missing_docs)]

pub mod kptfile;
pub mod limits;
mod node;
mod text;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A package's files: path relative to the package root (forward slashes) to
/// the file's bytes.
pub type Files = BTreeMap<String, Vec<u8>>;

/// What [`merge`] produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Merged {
    /// The merged package. Where a conflict was met the local side is kept,
    /// so this is always a complete package, though not the intended one
    /// while [`Merged::conflicts`] is not empty.
    pub files: Files,
    /// Every disagreement between upstream and local changes, in path order.
    pub conflicts: Vec<Conflict>,
}

impl Merged {
    /// Whether the merge met no conflict.
    pub fn is_clean(&self) -> bool {
        self.conflicts.is_empty()
    }
}

/// A change upstream and a change downstream that cannot both be kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The file, relative to the package root.
    pub path: String,
    /// The resource in that file, when the conflict is inside one.
    pub resource: Option<ResourceId>,
    /// The field inside that resource, as a dotted path with list elements
    /// named by their `name` key: `spec.template.spec.containers[name=web].image`.
    pub field: Option<String>,
    /// What each side did, for a person.
    pub detail: String,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if let Some(resource) = &self.resource {
            write!(f, ": {resource}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// The identity of a KRM resource.
///
/// Resources are matched across the three revisions by API group (the
/// version is ignored, so an upstream moving a resource from `v1beta1` to
/// `v1` still matches it), kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceId {
    /// `apiVersion` as written, e.g. `apps/v1`.
    pub api_version: String,
    /// `kind`, e.g. `Deployment`.
    pub kind: String,
    /// `metadata.namespace`, when set.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl ResourceId {
    /// The API group: `apiVersion` without its version (`apps` for
    /// `apps/v1`, the empty string for the core group's `v1`).
    pub fn group(&self) -> &str {
        match self.api_version.rsplit_once('/') {
            Some((group, _version)) => group,
            None => "",
        }
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.api_version, self.kind)?;
        if let Some(namespace) = &self.namespace {
            write!(f, "{namespace}/")?;
        }
        write!(f, "{}", self.name)
    }
}

/// Whether `path` is merged as KRM YAML: `*.yaml`, `*.yml` and `Kptfile`
/// files, in any directory of the package.
pub fn is_yaml_path(path: &str) -> bool {
    let file_name = path.rsplit('/').next().unwrap_or(path);
    file_name == "Kptfile" || file_name.ends_with(".yaml") || file_name.ends_with(".yml")
}

/// Whether `path` is a Kptfile (the package's or a subpackage's).
fn is_kptfile_path(path: &str) -> bool {
    path.rsplit('/').next() == Some("Kptfile")
}

/// Three-way merge of a kpt package.
///
/// `base` is the package at the old upstream revision (the one the local
/// package was last updated to), `upstream` the package at the new upstream
/// revision, `local` the downstream package.
///
/// File by file (a file's content counts as changed when its bytes differ):
///
/// | base | upstream | local | result |
/// | --- | --- | --- | --- |
/// | – | – | L | L (added locally) |
/// | – | U | – | U (added upstream) |
/// | – | U | L | L if U = L, else merged as if the base file were empty |
/// | B | – | – | removed |
/// | B | – | L | removed if L = B, else a conflict and L is kept |
/// | B | U | – | stays removed if U = B, else a conflict and it stays removed |
/// | B | U | L | L if U = B; U if L = B; L if U = L; else merged |
///
/// A `Kptfile` that upstream changed is always merged as YAML, even when
/// local left it alone, so that it keeps the local `upstream`,
/// `upstreamLock` and `metadata.name`.
///
/// Taking one side's bytes as they are means a file only one side changed
/// keeps its comments and layout exactly. A file both sides changed is
/// merged as YAML when [`is_yaml_path`] says so, and
/// line by line otherwise. A merged YAML file keeps its comments when the
/// result equals one side's documents or a clean line merge gives the same
/// documents; otherwise it is written anew and loses them (see the crate
/// documentation, "YAML files", "Output").
pub fn merge(base: &Files, upstream: &Files, local: &Files) -> Merged {
    let paths: BTreeSet<&String> = base
        .keys()
        .chain(upstream.keys())
        .chain(local.keys())
        .collect();
    let mut merged = Merged::default();
    for path in paths {
        let b = base.get(path).map(Vec::as_slice);
        let u = upstream.get(path).map(Vec::as_slice);
        let l = local.get(path).map(Vec::as_slice);
        if let Some(bytes) = merge_one(path, b, u, l, &mut merged.conflicts) {
            merged.files.insert(path.clone(), bytes);
        }
    }
    merged
}

/// One file's outcome: its merged bytes, or `None` when it is absent.
fn merge_one(
    path: &str,
    base: Option<&[u8]>,
    upstream: Option<&[u8]>,
    local: Option<&[u8]>,
    conflicts: &mut Vec<Conflict>,
) -> Option<Vec<u8>> {
    let file_conflict = |detail: &str| Conflict {
        path: path.to_string(),
        resource: None,
        field: None,
        detail: detail.to_string(),
    };
    match (base, upstream, local) {
        (_, None, None) => None,
        (None, None, Some(l)) => Some(l.to_vec()),
        (None, Some(u), None) => Some(u.to_vec()),
        (Some(b), None, Some(l)) => {
            if l == b {
                None
            } else {
                conflicts.push(file_conflict(
                    "removed upstream but changed locally; the local file is kept",
                ));
                Some(l.to_vec())
            }
        }
        (Some(b), Some(u), None) => {
            if u != b {
                conflicts.push(file_conflict(
                    "removed locally but changed upstream; it stays removed",
                ));
            }
            None
        }
        (b, Some(u), Some(l)) => {
            if Some(u) == b || u == l {
                Some(l.to_vec())
            } else if Some(l) == b && !is_kptfile_path(path) {
                // A Kptfile still goes through the resource merge, which
                // keeps the local upstream, upstreamLock and name.
                Some(u.to_vec())
            } else {
                let b = b.unwrap_or_default();
                Some(if is_yaml_path(path) {
                    yaml::merge_file(path, b, u, l, conflicts)
                } else {
                    text::merge_file(path, b, u, l, conflicts)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_id_display_and_group() {
        let id = ResourceId {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("default".into()),
            name: "web".into(),
        };
        assert_eq!(id.to_string(), "apps/v1 Deployment default/web");
        assert_eq!(id.group(), "apps");
        let core = ResourceId {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: None,
            name: "settings".into(),
        };
        assert_eq!(core.to_string(), "v1 ConfigMap settings");
        assert_eq!(core.group(), "");
    }

    #[test]
    fn yaml_paths() {
        assert!(is_yaml_path("Kptfile"));
        assert!(is_yaml_path("sub/Kptfile"));
        assert!(is_yaml_path("deploy/deployment.yaml"));
        assert!(is_yaml_path("x.yml"));
        assert!(!is_yaml_path("README.md"));
        assert!(!is_yaml_path("Kptfile.bak"));
    }

    fn files(entries: &[(&str, &str)]) -> Files {
        entries
            .iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn file_level_table() {
        let base = files(&[
            ("gone", "x\n"),
            ("kept", "x\n"),
            ("both", "x\n"),
            ("ldel", "x\n"),
        ]);
        let upstream = files(&[("kept", "x\n"), ("new", "n\n"), ("ldel", "y\n")]);
        let local = files(&[("kept", "x\n"), ("both", "changed\n"), ("mine", "m\n")]);
        let merged = merge(&base, &upstream, &local);
        assert_eq!(
            merged.files,
            files(&[
                ("both", "changed\n"),
                ("kept", "x\n"),
                ("mine", "m\n"),
                ("new", "n\n")
            ])
        );
        let paths: Vec<&str> = merged.conflicts.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["both", "ldel"]);
        assert!(merged.conflicts[0].detail.contains("removed upstream"));
        assert!(merged.conflicts[1].detail.contains("removed locally"));
    }

    #[test]
    fn added_on_both_sides_identically_is_fine() {
        let base = Files::new();
        let upstream = files(&[("a.txt", "same\n")]);
        let local = files(&[("a.txt", "same\n")]);
        let merged = merge(&base, &upstream, &local);
        assert!(merged.is_clean());
        assert_eq!(merged.files, upstream);
    }
}
