//! Porch's fixture repositories served by cadgate and worked on with plain
//! git: a new revision of an existing package gets the next number.

use std::path::PathBuf;
use std::process::Command;

use cadgate_integration::*;

fn fixture(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/porch-repositories")
        .join(format!("{name}.tar"));
    assert!(
        path.exists(),
        "{} missing: shared/ must sit beside the checkout",
        path.display()
    );
    path
}

/// A server whose repository `name` starts as a bare copy of a fixture.
fn serve_fixture(name: &str) -> (Server, tempfile::TempDir) {
    let unpacked = tempfile::tempdir().expect("tempdir");
    let ok = Command::new("tar")
        .args(["--no-same-owner", "-xf"])
        .arg(fixture(name))
        .arg("-C")
        .arg(unpacked.path())
        .status()
        .expect("tar")
        .success();
    assert!(ok);
    let data = tempfile::tempdir().expect("data");
    let target = data.path().join("repositories").join(format!("{name}.git"));
    let ok = Command::new("git")
        .args(["clone", "-q", "--mirror"])
        .arg(unpacked.path().join(".git"))
        .arg(&target)
        .status()
        .expect("git clone")
        .success();
    assert!(ok);
    let config = format!(
        "[policy]\nself_approval = true\n\n[[repository]]\nname = \"{name}\"\n\n{}",
        TestUser::new("admin").config(&["admin"], &[])
    );
    (Server::start_with_data(&config, data.path()), data)
}

fn publish_new_revision(server: &Server, repo: &str, package: &str) -> String {
    publish(server, repo, package, &[])
}

/// With git through cadgate: a draft `cadgate` of `package` adding a file
/// (and `extra` files), proposed and published; returns the push's stderr.
fn publish(server: &Server, repo: &str, package: &str, extra: &[(&str, &[u8])]) -> String {
    let url = server.url_as(&TestUser::new("admin"), repo);
    let client = GitClient::new();
    client.git(&["clone", "-q", &url, "w"]);
    let added = format!("{package}/added-by-cadgate.yaml");
    let mut files: Vec<(&str, &[u8])> = vec![(&added, b"kind: ConfigMap\n")];
    files.extend_from_slice(extra);
    client.commit_files("w", &files, "change");
    client.git_in(
        "w",
        &[
            "push",
            "-q",
            "origin",
            &format!("HEAD:refs/heads/drafts/{package}/cadgate"),
        ],
    );
    client.git_in(
        "w",
        &[
            "push",
            "-q",
            "origin",
            &format!("HEAD:refs/heads/proposed/{package}/cadgate"),
        ],
    );
    let out = client.git(&["-C", "w", "push", "origin", "+HEAD:refs/heads/main"]);
    stderr(&out)
}

#[test]
fn simple_repository_publishes_the_next_revision() {
    let (server, data) = serve_fixture("simple-repository");
    let err = publish_new_revision(&server, "simple-repository", "basens");
    assert!(err.contains("published basens v3"), "{err}");
    let repo = data.path().join("repositories/simple-repository.git");
    assert_eq!(
        server_git(&repo, &["rev-parse", "refs/tags/basens/v3"]),
        server_git(&repo, &["rev-parse", "main"])
    );
    // Foreign refs and the other packages are untouched.
    assert!(server_git(&repo, &["rev-parse", "refs/tags/istions/v2"]).len() == 40);
}

#[test]
fn nested_repository_publishes_the_next_revision() {
    let (server, _data) = serve_fixture("nested-repository");
    let err = publish_new_revision(&server, "nested-repository", "catalog/namespace/basens");
    assert!(
        err.contains("published catalog/namespace/basens v4"),
        "{err}"
    );
}

#[test]
fn manually_tagged_repository_continues_after_the_hand_made_tag() {
    let (server, _data) = serve_fixture("manually-tagged-repository");
    let err = publish_new_revision(&server, "manually-tagged-repository", "pkg");
    assert!(err.contains("published pkg v3"), "{err}");
}

/// The JSON API lists every fixture as its refs say, and still does after
/// cadgate publishes a revision into it.
#[test]
fn the_api_lists_every_fixture_as_its_refs_say() {
    let admin = TestUser::new("admin");
    for (name, package) in [
        ("simple-repository", Some("basens")),
        ("nested-repository", Some("catalog/namespace/basens")),
        ("manually-tagged-repository", Some("pkg")),
        ("drafts-repository", None),
        ("empty-repository", None),
        ("trivial-repository", None),
        ("publishinfo-repository", None),
        ("nested-repository-with-invalid-kpt-annotation", None),
    ] {
        let (server, _data) = serve_fixture(name);
        cadgate_integration::api::assert_listing_matches_refs(&server, &admin, name, "", name);
        if let Some(package) = package {
            publish_new_revision(&server, name, package);
            let context = format!("{name} after a publish");
            cadgate_integration::api::assert_listing_matches_refs(
                &server, &admin, name, "", &context,
            );
            let latest = cadgate_integration::api::revisions(
                &server,
                &admin,
                name,
                &format!("package={package}&latest=true"),
            );
            assert_eq!(latest.len(), 1, "{context}: {latest:?}");
            assert_eq!(latest[0]["workspaceName"], "cadgate", "{context}");
        }
    }
}

/// Issue 13, "How to show it": Porch's listing rules
/// (`cadgate_integration::porch_reader`, each citing Porch's source) read
/// every fixture repository as cadgate's API lists it, field by field under
/// the documented mapping — before and after cadgate publishes a new
/// revision into it with git (a new package where the fixture has none).
#[test]
fn cadgate_lists_every_fixture_as_porch_reads_it_before_and_after_a_publish() {
    use cadgate_integration::porch_reader::{assert_cadgate_lists_as_porch, Registration};
    let admin = TestUser::new("admin");
    for (name, package, new) in [
        ("simple-repository", "basens", false),
        ("nested-repository", "catalog/namespace/basens", false),
        ("manually-tagged-repository", "pkg", false),
        ("drafts-repository", "istions", false),
        ("empty-repository", "fresh", true),
        ("trivial-repository", "fresh", true),
        ("publishinfo-repository", "pkg-with-anno", false),
        (
            "nested-repository-with-invalid-kpt-annotation",
            "blueprint/bp1",
            false,
        ),
    ] {
        let (server, _data) = serve_fixture(name);
        let registration = Registration {
            name,
            branch: "main",
            directory: "",
        };
        let before = assert_cadgate_lists_as_porch(&server, &admin, registration, name);
        let previous = before
            .iter()
            .filter(|r| r.full_path == package)
            .map(|r| r.revision)
            .max()
            .unwrap_or(0);
        assert_eq!(new, previous == 0, "{name}: {package} exists: {before:#?}");
        let kptfile = kptfile(package);
        let kptfile_path = format!("{package}/Kptfile");
        let extra: Vec<(&str, &[u8])> = if new {
            vec![(kptfile_path.as_str(), kptfile.as_bytes())]
        } else {
            Vec::new()
        };
        let err = publish(&server, name, package, &extra);
        let context = format!("{name} after cadgate published {package}");
        assert!(
            err.contains(&format!("published {package} v{}", previous + 1)),
            "{context}: {err}"
        );
        let after = assert_cadgate_lists_as_porch(&server, &admin, registration, &context);
        let newest: Vec<_> = after
            .iter()
            .filter(|r| r.full_path == package && r.revision == previous + 1)
            .collect();
        assert_eq!(newest.len(), 1, "{context}: {after:#?}");
        assert_eq!(newest[0].workspace, "cadgate", "{context}");
        assert!(newest[0].latest, "{context}");
        assert_eq!(newest[0].lifecycle, "Published", "{context}");
    }
}
