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
    let url = server.url_as(&TestUser::new("admin"), repo);
    let client = GitClient::new();
    client.git(&["clone", "-q", &url, "w"]);
    client.commit_files(
        "w",
        &[(
            &format!("{package}/added-by-cadgate.yaml"),
            b"kind: ConfigMap\n",
        )],
        "change",
    );
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
