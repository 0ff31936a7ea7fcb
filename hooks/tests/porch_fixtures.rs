//! Porch's own test repositories (../shared/fixtures/porch-repositories)
//! are listed exactly as their descriptions say.

use std::path::PathBuf;
use std::process::Command;

use cadgate_hooks::git::Repo;
use cadgate_hooks::listing::{list, Lifecycle};
use cadgate_hooks::refs::Layout;

fn fixtures() -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/porch-repositories");
    assert!(
        dir.is_dir(),
        "Porch fixtures not found at {}: the shared/ directory must sit beside the checkout",
        dir.display()
    );
    dir
}

/// Unpack a fixture; returns the temp dir (kept alive) and its git dir.
fn unpack(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let status = Command::new("tar")
        .args(["--no-same-owner", "-xf"])
        .arg(fixtures().join(format!("{name}.tar")))
        .arg("-C")
        .arg(dir.path())
        .status()
        .expect("tar");
    assert!(status.success(), "cannot unpack {name}");
    let git_dir = dir.path().join(".git");
    (dir, git_dir)
}

/// (package, workspace, revision, lifecycle, latest) rows.
type Row = (&'static str, &'static str, u64, Lifecycle, bool);

fn listed(name: &str, directory: &str) -> Vec<(String, String, u64, Lifecycle, bool)> {
    let (_dir, git_dir) = unpack(name);
    let revisions = list(
        &Repo::open(&git_dir).expect("open"),
        &Layout::new("main", directory),
    )
    .expect("listing");
    revisions
        .into_iter()
        .map(|r| {
            (
                r.package.as_str().to_string(),
                r.workspace,
                r.revision,
                r.lifecycle,
                r.latest,
            )
        })
        .collect()
}

fn assert_listing(name: &str, directory: &str, expected: &[Row]) {
    let expected: Vec<(String, String, u64, Lifecycle, bool)> = expected
        .iter()
        .map(|(p, w, n, l, latest)| (p.to_string(), w.to_string(), *n, *l, *latest))
        .collect();
    assert_eq!(listed(name, directory), expected, "{name}");
}

use Lifecycle::{Draft, Published};

const SIMPLE: &[Row] = &[
    ("basens", "v1", 1, Published, false),
    ("basens", "v2", 2, Published, true),
    ("empty", "v1", 1, Published, true),
    ("istions", "v1", 1, Published, false),
    ("istions", "v2", 2, Published, true),
];

#[test]
fn simple_repository() {
    assert_listing("simple-repository", "", SIMPLE);
}

#[test]
fn drafts_repository() {
    assert_listing(
        "drafts-repository",
        "",
        &[
            ("basens", "v1", 1, Published, false),
            ("basens", "v2", 2, Published, true),
            ("bucket", "v1", 0, Draft, false),
            ("empty", "v1", 1, Published, true),
            ("istions", "v1", 1, Published, false),
            ("istions", "v2", 2, Published, true),
            ("none", "v1", 0, Draft, false),
            ("pkg-with-history", "v1", 0, Draft, false),
        ],
    );
}

#[test]
fn nested_repository() {
    assert_listing(
        "nested-repository",
        "",
        &[
            ("catalog/empty", "v1", 1, Published, true),
            ("catalog/gcp/bucket", "v2", 0, Draft, false),
            ("catalog/gcp/bucket", "v1", 1, Published, true),
            ("catalog/gcp/cloud-sql", "v1", 0, Draft, false),
            ("catalog/gcp/spanner", "v1", 0, Draft, false),
            ("catalog/namespace/basens", "v1", 1, Published, false),
            ("catalog/namespace/basens", "v2", 2, Published, false),
            ("catalog/namespace/basens", "v3", 3, Published, true),
            ("catalog/namespace/istions", "v1", 1, Published, false),
            ("catalog/namespace/istions", "v2", 2, Published, false),
            ("catalog/namespace/istions", "v3", 3, Published, true),
            ("sample", "v1", 1, Published, false),
            ("sample", "v2", 2, Published, true),
        ],
    );
    // With directory "catalog/namespace" only the packages below it count.
    let scoped = listed("nested-repository", "catalog/namespace");
    assert_eq!(scoped.len(), 6);
    assert!(scoped
        .iter()
        .all(|(p, ..)| p.starts_with("catalog/namespace/")));
}

#[test]
fn publishinfo_repository_reports_who_published_and_when() {
    let (_dir, git_dir) = unpack("publishinfo-repository");
    let revisions = list(
        &Repo::open(&git_dir).expect("open"),
        &Layout::new("main", ""),
    )
    .expect("listing");
    let with = revisions
        .iter()
        .find(|r| r.package.as_str() == "pkg-with-anno")
        .expect("pkg-with-anno");
    assert_eq!(
        with.published_by.as_deref(),
        Some("pkg-with-anno-author@example.com")
    );
    assert!(with.published_at.is_some_and(|t| t > 1_600_000_000));
    let without = revisions
        .iter()
        .find(|r| r.package.as_str() == "pkg-without-anno")
        .expect("pkg-without-anno");
    assert_eq!(
        without.published_by.as_deref(),
        Some("pkg-without-anno-author@example.com")
    );
    let draft = revisions
        .iter()
        .find(|r| r.package.as_str() == "draft-pkg")
        .expect("draft-pkg");
    assert_eq!(
        (
            draft.lifecycle,
            draft.revision,
            draft.published_by.as_deref()
        ),
        (Draft, 0, None)
    );
    // some-pkg is on main but was never tagged: not a package revision.
    assert!(revisions.iter().all(|r| r.package.as_str() != "some-pkg"));
}

#[test]
fn manually_tagged_repository_peels_annotated_tags() {
    assert_listing(
        "manually-tagged-repository",
        "",
        &[
            ("pkg", "v1", 1, Published, false),
            ("pkg", "v2", 2, Published, true),
        ],
    );
}

#[test]
fn invalid_annotations_and_foreign_branches_are_ignored() {
    let all = [
        ("blueprint/bp1", "v1", 1, Published, false),
        ("blueprint/bp1", "v2", 2, Published, false),
        ("blueprint/bp1", "v3", 3, Published, true),
        ("blueprint/bp2", "v1", 1, Published, false),
        ("blueprint/bp2", "v2", 2, Published, true),
        ("blueprint2/bp10", "v1", 1, Published, true),
    ];
    assert_listing("nested-repository-with-invalid-kpt-annotation", "", &all);
    assert_listing(
        "nested-repository-with-invalid-kpt-annotation",
        "blueprint",
        &all[..5],
    );
    assert_listing(
        "nested-repository-with-invalid-kpt-annotation",
        "blueprint2",
        &all[5..],
    );
}

#[test]
fn trivial_and_empty_repositories_list_nothing() {
    assert_listing("trivial-repository", "", &[]);
    assert_listing("empty-repository", "", &[]);
}
