//! The Porch ref layout (contract §5): which ref names mean what.
//!
//! `D` is the repository's package directory, `F = D/P` a package's full
//! path, `ws` a workspace and `B` the registered branch:
//!
//! | lifecycle | ref |
//! |---|---|
//! | Draft | `refs/heads/drafts/F/ws` |
//! | Proposed | `refs/heads/proposed/F/ws` |
//! | Published N | `refs/tags/F/vN` |
//! | DeletionProposed N | `refs/heads/deletionProposed/F/vN` (the tag stays) |
//! | placeholder `B` DeletionProposed | `refs/heads/deletionProposed/F/B` |
//!
//! Parsing is total: every ref name maps to a [`RefKind`], and names that do
//! not fit the layout (foreign tags like `v1.2.3`, other branches) are
//! [`RefKind::Foreign`], never an error, so hand-made refs never break
//! discovery.

use std::fmt;

/// The ref namespace of drafts.
pub const DRAFTS: &str = "refs/heads/drafts/";
/// The ref namespace of proposals.
pub const PROPOSED: &str = "refs/heads/proposed/";
/// The ref namespace of deletion proposals.
pub const DELETION_PROPOSED: &str = "refs/heads/deletionProposed/";
/// The ref namespace of published revisions.
pub const TAGS: &str = "refs/tags/";
/// Where cadgate keeps its audit notes.
pub const NOTES: &str = "refs/notes/cadgate";

/// What the layout knows about a repository: its registered branch and its
/// package directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    branch: String,
    directory: String,
}

/// A package's full path `F` (the directory `D` included), e.g. `catalog/gcp/bucket`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackagePath(String);

/// What a ref name means in the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefKind {
    /// `refs/heads/B`.
    Branch,
    /// `refs/heads/drafts/F/ws`.
    Draft {
        /// The package.
        package: PackagePath,
        /// The workspace.
        workspace: String,
    },
    /// `refs/heads/proposed/F/ws`.
    Proposed {
        /// The package.
        package: PackagePath,
        /// The workspace.
        workspace: String,
    },
    /// `refs/tags/F/vN`.
    Published {
        /// The package.
        package: PackagePath,
        /// The revision, ≥ 1.
        revision: u64,
    },
    /// `refs/heads/deletionProposed/F/vN`.
    DeletionProposed {
        /// The package.
        package: PackagePath,
        /// The revision, ≥ 1.
        revision: u64,
    },
    /// `refs/heads/deletionProposed/F/B`: Porch's proposal to delete its
    /// placeholder revision of `F` (revision −1, workspace `B`: the package
    /// as the branch holds it), i.e. to remove `F` from the branch
    /// (porch pkg/externalrepo/git/ref.go `createDeletionProposedName`, the
    /// `Revision <= 0` case, lines 129–135).
    PlaceholderDeletionProposed {
        /// The package.
        package: PackagePath,
    },
    /// `refs/notes/cadgate`.
    Notes,
    /// Anything else: other branches, foreign tags, refs outside the directory.
    Foreign,
}

impl Layout {
    /// The layout of a repository with registered branch `branch` and package
    /// directory `directory` (leading and trailing `/` ignored).
    pub fn new(branch: &str, directory: &str) -> Self {
        Self {
            branch: branch.to_string(),
            directory: directory.trim_matches('/').to_string(),
        }
    }

    /// The registered branch `B`.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The full name of the registered branch, `refs/heads/B`.
    pub fn branch_ref(&self) -> String {
        format!("refs/heads/{}", self.branch)
    }

    /// The package directory `D` ("" for the repository root).
    pub fn directory(&self) -> &str {
        &self.directory
    }

    /// Classify a full ref name.
    pub fn classify(&self, name: &str) -> RefKind {
        if name == self.branch_ref() {
            return RefKind::Branch;
        }
        if name == NOTES {
            return RefKind::Notes;
        }
        if let Some(rest) = name.strip_prefix(DRAFTS) {
            if let Some((package, workspace)) = self.split_workspace(rest) {
                return RefKind::Draft { package, workspace };
            }
        } else if let Some(rest) = name.strip_prefix(PROPOSED) {
            if let Some((package, workspace)) = self.split_workspace(rest) {
                return RefKind::Proposed { package, workspace };
            }
        } else if let Some(rest) = name.strip_prefix(DELETION_PROPOSED) {
            if let Some((package, revision)) = self.split_revision(rest) {
                return RefKind::DeletionProposed { package, revision };
            }
            // A branch named like a revision (`v3`) names the revision: the
            // two markers are the same ref in Porch too.
            if let Some(package) = rest
                .strip_suffix(&self.branch)
                .and_then(|p| p.strip_suffix('/'))
                .and_then(|p| self.package(p))
            {
                return RefKind::PlaceholderDeletionProposed { package };
            }
        } else if let Some(rest) = name.strip_prefix(TAGS) {
            if let Some((package, revision)) = self.split_revision(rest) {
                return RefKind::Published { package, revision };
            }
        }
        RefKind::Foreign
    }

    /// `F/ws` → (F, ws) when F is a package path inside D and ws a workspace.
    fn split_workspace(&self, rest: &str) -> Option<(PackagePath, String)> {
        let (package, workspace) = rest.rsplit_once('/')?;
        if !is_workspace(workspace) {
            return None;
        }
        Some((self.package(package)?, workspace.to_string()))
    }

    /// `F/vN` → (F, N) when F is a package path inside D and N ≥ 1.
    fn split_revision(&self, rest: &str) -> Option<(PackagePath, u64)> {
        let (package, version) = rest.rsplit_once('/')?;
        Some((self.package(package)?, parse_revision(version)?))
    }

    /// `F` as a package path when it lies inside D (and is not D itself).
    pub fn package(&self, full_path: &str) -> Option<PackagePath> {
        if !is_package_path(full_path) {
            return None;
        }
        if !self.directory.is_empty() {
            let below = full_path.strip_prefix(&self.directory)?;
            if !below.starts_with('/') {
                return None;
            }
        }
        Some(PackagePath(full_path.to_string()))
    }

    /// The draft ref of `package` in `workspace`.
    pub fn draft_ref(&self, package: &PackagePath, workspace: &str) -> String {
        format!("{DRAFTS}{package}/{workspace}")
    }

    /// The proposal ref of `package` in `workspace`.
    pub fn proposed_ref(&self, package: &PackagePath, workspace: &str) -> String {
        format!("{PROPOSED}{package}/{workspace}")
    }

    /// The tag of revision `revision` of `package`.
    pub fn tag_ref(&self, package: &PackagePath, revision: u64) -> String {
        format!("{TAGS}{package}/v{revision}")
    }

    /// The deletion-proposal ref of revision `revision` of `package`.
    pub fn deletion_proposed_ref(&self, package: &PackagePath, revision: u64) -> String {
        format!("{DELETION_PROPOSED}{package}/v{revision}")
    }

    /// The proposal to delete `package`'s placeholder revision (to remove it
    /// from the branch): `refs/heads/deletionProposed/F/B`.
    pub fn placeholder_deletion_ref(&self, package: &PackagePath) -> String {
        format!("{DELETION_PROPOSED}{package}/{}", self.branch)
    }

    /// The full path `F` of the package the API names `name` (its
    /// `packageName`, the path below D, as Porch's `PackageKey.ToPkgPathname`
    /// in pkg/repository/repository.go lines 158–164), when `name` is one.
    pub fn package_named(&self, name: &str) -> Option<PackagePath> {
        let name = name.trim_matches('/');
        if self.directory.is_empty() {
            self.package(name)
        } else if name.is_empty() {
            None
        } else {
            self.package(&format!("{}/{name}", self.directory))
        }
    }

    /// The package's path below D (the API's `packageName`).
    pub fn package_name<'a>(&self, package: &'a PackagePath) -> &'a str {
        if self.directory.is_empty() {
            package.as_str()
        } else {
            package
                .as_str()
                .strip_prefix(&self.directory)
                .map(|s| s.trim_start_matches('/'))
                .unwrap_or(package.as_str())
        }
    }
}

impl PackagePath {
    /// The full path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last path segment: what the Kptfile's `metadata.name` must be.
    pub fn leaf(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// Whether `other` lies strictly inside this package.
    pub fn contains(&self, other: &PackagePath) -> bool {
        other
            .0
            .strip_prefix(&self.0)
            .is_some_and(|rest| rest.starts_with('/'))
    }
}

impl fmt::Display for PackagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The revision a tag's last segment names, read as Porch reads it
/// (`pkg/repository/util.go` `Revision2Int`: trim one leading `v`, then Go's
/// `strconv.Atoi`, which takes an optional sign and decimal digits, leading
/// zeros included, and fails past 64 bits): `7` → 7, `v01` → 1, `v+3` → 3.
/// Porch reads anything else as −1 (not a revision); cadgate also counts 0
/// and negative numbers as no revision, since cadgate's revisions start at 1.
/// Every place that reads or allocates a revision number goes through here,
/// so a hand-made `F/7` makes the next revision 8.
pub fn parse_revision(version: &str) -> Option<u64> {
    let number = version.strip_prefix('v').unwrap_or(version);
    let digits = number.strip_prefix('+').unwrap_or(number);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: i64 = digits.parse().ok()?;
    u64::try_from(value).ok().filter(|&n| n >= 1)
}

/// The revision a tag names for `package` (`package/v3`, `package/7`, read
/// as [`parse_revision`]); `None` for a tag of another package or no number.
pub fn tag_revision(tag: &str, package: &str) -> Option<u64> {
    tag.strip_prefix(package)?
        .strip_prefix('/')
        .and_then(parse_revision)
}

/// A workspace as the layout reads it from refs: see
/// [`cadgate_config::names::is_existing_workspace`] (one segment, no
/// leading `.` or `-`). New workspaces follow the stricter
/// [`cadgate_config::names::validate_workspace`] (an RFC 1123 label).
pub fn is_workspace(name: &str) -> bool {
    cadgate_config::names::is_existing_workspace(name)
}

/// A package path as the layout reads it from refs: see
/// [`cadgate_config::names::is_existing_package_path`] (no segment empty or
/// starting with `.` or `-`). New packages follow the stricter
/// [`cadgate_config::names::validate_new_package_path`].
pub fn is_package_path(path: &str) -> bool {
    cadgate_config::names::is_existing_package_path(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(s: &str) -> PackagePath {
        PackagePath(s.to_string())
    }

    #[test]
    fn classifies_the_layout_at_the_root() {
        let layout = Layout::new("main", "");
        assert_eq!(layout.classify("refs/heads/main"), RefKind::Branch);
        assert_eq!(
            layout.classify("refs/heads/drafts/catalog/gcp/bucket/v2"),
            RefKind::Draft {
                package: pkg("catalog/gcp/bucket"),
                workspace: "v2".into()
            }
        );
        assert_eq!(
            layout.classify("refs/heads/proposed/basens/ws-1"),
            RefKind::Proposed {
                package: pkg("basens"),
                workspace: "ws-1".into()
            }
        );
        assert_eq!(
            layout.classify("refs/tags/catalog/namespace/basens/v3"),
            RefKind::Published {
                package: pkg("catalog/namespace/basens"),
                revision: 3
            }
        );
        assert_eq!(
            layout.classify("refs/heads/deletionProposed/basens/v1"),
            RefKind::DeletionProposed {
                package: pkg("basens"),
                revision: 1
            }
        );
        assert_eq!(layout.classify(NOTES), RefKind::Notes);
        assert_eq!(
            layout.classify("refs/heads/deletionProposed/catalog/basens/main"),
            RefKind::PlaceholderDeletionProposed {
                package: pkg("catalog/basens")
            }
        );
    }

    /// Porch's placeholder deletion marker is `deletionProposed/F/<branch>`
    /// (ref.go lines 129–135), for any registered branch name.
    #[test]
    fn placeholder_deletion_markers_name_the_branch() {
        let layout = Layout::new("release/one", "d");
        let p = pkg("d/a");
        let marker = layout.placeholder_deletion_ref(&p);
        assert_eq!(marker, "refs/heads/deletionProposed/d/a/release/one");
        assert_eq!(
            layout.classify(&marker),
            RefKind::PlaceholderDeletionProposed { package: p }
        );
        assert_eq!(
            layout.classify("refs/heads/deletionProposed/d/a/main"),
            RefKind::Foreign
        );
        assert_eq!(
            layout.classify("refs/heads/deletionProposed/release/one"),
            RefKind::Foreign
        );
        assert_eq!(layout.package_named("a/b"), Some(pkg("d/a/b")));
        assert_eq!(layout.package_named(""), None);
        assert_eq!(Layout::new("main", "").package_named("a"), Some(pkg("a")));
    }

    #[test]
    fn foreign_refs_are_ignored_not_errors() {
        let layout = Layout::new("main", "");
        for name in [
            "refs/tags/v1.2.3",
            "refs/tags/release",
            "refs/tags/pkg/v2.0.0",
            "refs/tags/pkg/v0",
            "refs/tags/pkg/0",
            "refs/tags/pkg/-1",
            "refs/tags/pkg/V1",
            "refs/tags/pkg/v1v",
            "refs/tags/pkg/v",
            "refs/tags/pkg/v99999999999999999999",
            "refs/heads/feature",
            "refs/heads/drafts/nows",
            "refs/heads/drafts/pkg/-upper",
            "refs/heads/drafts/pkg/x.lock",
            "refs/heads/drafts/../x/ws",
            "refs/heads/drafts/.hidden/ws",
            "refs/heads/drafts//ws",
            "refs/heads/drafts/-x/w1",
            "refs/tags/a/-x/v1",
            "refs/pull/1/head",
            "HEAD",
        ] {
            assert_eq!(layout.classify(name), RefKind::Foreign, "{name}");
        }
    }

    /// Porch `pkg/repository/util.go` `Revision2Int` (and its test
    /// `TestRevision2Int` in `util_test.go`): trim one `v`, then `strconv.Atoi`.
    #[test]
    fn a_tag_names_a_revision_of_its_own_package_only() {
        assert_eq!(tag_revision("apps/web/v3", "apps/web"), Some(3));
        assert_eq!(tag_revision("apps/web/7", "apps/web"), Some(7));
        assert_eq!(tag_revision("apps/web2/v3", "apps/web"), None);
        assert_eq!(tag_revision("apps/web/sub/v3", "apps/web"), None);
        assert_eq!(tag_revision("apps/web/latest", "apps/web"), None);
    }

    #[test]
    fn tags_are_numbered_as_porch_reads_them() {
        for (version, expected) in [
            ("v1", Some(1)),
            ("7", Some(7)),
            ("v01", Some(1)),
            ("007", Some(7)),
            ("v+3", Some(3)),
            ("v123", Some(123)),
            ("V123", None),
            ("v123v", None),
            ("-1", None),
            ("v0", None),
            ("vv1", None),
            ("v1.0", None),
            ("", None),
        ] {
            assert_eq!(parse_revision(version), expected, "{version}");
        }
        let layout = Layout::new("main", "");
        assert_eq!(
            layout.classify("refs/tags/pkg/7"),
            RefKind::Published {
                package: pkg("pkg"),
                revision: 7
            }
        );
    }

    #[test]
    fn a_directory_scopes_packages() {
        let layout = Layout::new("main", "/blueprints/");
        assert_eq!(layout.directory(), "blueprints");
        assert_eq!(
            layout.classify("refs/tags/blueprints/bp1/v2"),
            RefKind::Published {
                package: pkg("blueprints/bp1"),
                revision: 2
            }
        );
        assert_eq!(
            layout.classify("refs/tags/blueprints2/bp1/v2"),
            RefKind::Foreign
        );
        assert_eq!(layout.classify("refs/tags/other/bp1/v2"), RefKind::Foreign);
        assert_eq!(layout.classify("refs/tags/blueprints/v2"), RefKind::Foreign);
        assert_eq!(layout.package_name(&pkg("blueprints/a/b")), "a/b");
    }

    #[test]
    fn builds_what_it_parses() {
        let layout = Layout::new("main", "d");
        let p = pkg("d/a/b");
        for name in [
            layout.draft_ref(&p, "ws"),
            layout.proposed_ref(&p, "ws"),
            layout.tag_ref(&p, 7),
            layout.deletion_proposed_ref(&p, 7),
        ] {
            assert_ne!(layout.classify(&name), RefKind::Foreign, "{name}");
        }
        assert_eq!(p.leaf(), "b");
        assert!(pkg("a").contains(&pkg("a/b")));
        assert!(!pkg("a").contains(&pkg("ab")));
        assert!(!pkg("a").contains(&pkg("a")));
    }

    #[test]
    fn existing_workspaces_are_read_loosely() {
        for ok in [
            "v1",
            "my-ws-2",
            "A",
            "Old_WS",
            "a-",
            "v1.0",
            &"a".repeat(64),
        ] {
            assert!(is_workspace(ok), "{ok}");
        }
        for bad in ["", "-a", ".a", "a.lock", "a b", "a~1"] {
            assert!(!is_workspace(bad), "{bad}");
        }
        let layout = Layout::new("main", "");
        assert_eq!(
            layout.classify("refs/heads/drafts/web/Old_WS"),
            RefKind::Draft {
                package: pkg("web"),
                workspace: "Old_WS".into()
            }
        );
        assert_eq!(
            layout.classify("refs/heads/drafts/web/-x"),
            RefKind::Foreign
        );
    }
}
