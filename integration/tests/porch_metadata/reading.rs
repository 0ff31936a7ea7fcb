//! Porch's reading of repositories cadgate wrote (issue 13, "How to show
//! it", M6, M9–M11): the Porch reader (`cadgate_integration::porch_reader`,
//! each rule citing Porch's source) against cadgate's API listing, field by
//! field under the documented mapping.

use cadgate_integration::api;
use cadgate_integration::porch::Porch;
use cadgate_integration::porch_reader::{assert_cadgate_lists_as_porch, Registration};
use cadgate_integration::scenarios::{CadgateServer, Lab, BRANCH, DIRECTORY, NESTED, ROOT};
use cadgate_integration::{server_git, server_ref, Server, TestUser};

fn registration(layout: cadgate_integration::scenarios::Layout) -> Registration<'static> {
    Registration {
        name: layout.repository,
        branch: BRANCH,
        directory: layout.directory,
    }
}

/// A repository cadgate wrote through its whole lifecycle — packages below
/// the repository's directory, a nested path, drafts, a proposal, published
/// revisions, deletion proposals (of an older revision and of the latest),
/// an approved deletion of the latest, and a draft made through the API —
/// is listed by cadgate as Porch reads it.
#[test]
fn porch_reads_a_repository_cadgate_wrote_as_cadgate_lists_it() {
    let transport = CadgateServer::start("");
    let server = &transport.server;
    let rita = TestUser::new("rita");
    let lab = Lab::new(&transport, DIRECTORY, "life");
    let life = lab.f();
    let deep = format!("{}/apps/deep/web", DIRECTORY.directory);
    let gone = lab.other("gone");

    assert_eq!(lab.release(&life, "ws-one", "n: 1\n"), 1);
    assert_eq!(lab.release(&life, "ws-two", "n: 2\n"), 2);
    lab.propose_deletion("alice", &life, 1);
    lab.draft("alice", &life, "ws-three", "n: 3\n");
    lab.draft("alice", &life, "ws-four", "n: 4\n");
    lab.propose("alice", &life, "ws-four");
    assert_cadgate_lists_as_porch(server, &rita, registration(DIRECTORY), "midway");

    // A draft made through the API carries Porch's init task; the API names
    // the package below the repository's directory (M5).
    let (status, made) = api::post(
        server,
        &TestUser::new("alice"),
        "/api/v1/repositories/catalog/revisions",
        r#"{"packageName":"apps/deep/web","workspaceName":"start","init":{"description":"deep"}}"#,
    );
    assert_eq!(status, 201, "{made}");
    lab.propose("alice", &deep, "start");
    assert_eq!(lab.publish("bob", &deep, "start"), 1);
    // The latest revision's deletion is proposed: still the latest.
    lab.propose_deletion("alice", &deep, 1);

    // The latest revision of `gone` is deleted: the branch goes back to v1.
    assert_eq!(lab.release(&gone, "one", "n: 1\n"), 1);
    assert_eq!(lab.release(&gone, "two", "n: 2\n"), 2);
    lab.propose_deletion("alice", &gone, 2);
    lab.accept(
        "bob",
        &[&format!(":refs/tags/{gone}/v2")],
        &format!("deleted {gone} v2; {BRANCH} now holds v1"),
    );

    let porch = assert_cadgate_lists_as_porch(server, &rita, registration(DIRECTORY), "the end");
    let find = |package: &str, workspace: &str| {
        porch
            .iter()
            .find(|r| r.full_path == package && r.workspace == workspace)
            .unwrap_or_else(|| panic!("Porch lists {package} {workspace}: {porch:#?}"))
    };
    let row = |package: &str, workspace: &str| {
        let r = find(package, workspace);
        (r.revision, r.lifecycle, r.latest)
    };
    assert_eq!(row(&life, "ws-one"), (1, "DeletionProposed", false));
    assert_eq!(row(&life, "ws-two"), (2, "Published", true));
    assert_eq!(row(&life, "ws-three"), (0, "Draft", false));
    assert_eq!(row(&life, "ws-four"), (0, "Proposed", false));
    assert_eq!(row(&deep, "start"), (1, "DeletionProposed", true));
    assert_eq!(row(&gone, "one"), (1, "Published", true));
    assert!(porch.iter().all(|r| r.workspace != "two"), "{porch:#?}");
    // Porch leaves the repository's directory out of packageName and names
    // (M5; cadgate's mapping is in porch_reader::as_cadgate_lists_it).
    assert_eq!(find(&deep, "start").package_name, "apps/deep/web");
    assert_eq!(find(&deep, "start").name, "catalog.apps.deep.web.start");
    // The placeholder revision of every package on the branch (M3).
    for package in [&life, &deep, &gone] {
        let placeholder = find(package, BRANCH);
        assert!(placeholder.is_placeholder(), "{placeholder:?}");
        assert_eq!(placeholder.revision, -1);
        assert!(!placeholder.latest);
    }
    // Tasks (git.go `loadTasks`): the API's init task is found from the
    // published revision; a package pushed with git has none.
    assert_eq!(
        find(&deep, "start").tasks,
        vec![serde_json::json!({"type": "init", "init": {"description": "deep"}})]
    );
    assert_eq!(find(&life, "ws-two").tasks, Vec::<serde_json::Value>::new());
}

/// M6 — Porch keys `latest` by the leaf name (`cache/crcache/util.go`
/// 31–53: `latest[currentKey.PkgKey.Package]`), so `a/web` and `b/web`
/// share one latest revision; cadgate keys it by the full path and marks
/// one latest for each.
#[test]
fn a_web_and_b_web_each_have_their_own_latest_in_cadgate() {
    let transport = CadgateServer::start("");
    let server = &transport.server;
    let lab = Lab::new(&transport, NESTED, "m6");
    let (a, b) = ("m6-a/web", "m6-b/web");
    assert_eq!(lab.release(a, "one", "n: 1\n"), 1);
    assert_eq!(lab.release(a, "two", "n: 2\n"), 2);
    assert_eq!(lab.release(b, "one", "n: 1\n"), 1);

    let rita = TestUser::new("rita");
    let porch = assert_cadgate_lists_as_porch(server, &rita, registration(NESTED), "M6");
    let porch_latest: Vec<(&str, i64)> = porch
        .iter()
        .filter(|r| r.latest)
        .map(|r| (r.full_path.as_str(), r.revision))
        .collect();
    assert_eq!(porch_latest, vec![(a, 2)], "Porch: one latest for `web`");
    let mut cadgate_latest: Vec<(String, u64)> =
        api::revisions(server, &rita, "nested", "latest=true")
            .iter()
            .map(|r| {
                (
                    r["packageName"].as_str().unwrap_or_default().to_string(),
                    r["revision"].as_u64().unwrap_or_default(),
                )
            })
            .collect();
    cadgate_latest.sort();
    assert_eq!(cadgate_latest, vec![(a.to_string(), 2), (b.to_string(), 1)]);
}

/// The empty tree, written into `repo`.
fn empty_tree(repo: &std::path::Path) -> String {
    server_git(repo, &["hash-object", "-t", "tree", "-w", "/dev/null"])
}

/// M9 — Porch skips a draft or proposal whose commit has no `F/Kptfile`
/// (`pkg/externalrepo/git/git.go` 880–920 `loadDraft`: `findPackage` finds
/// no package, and 412–416 skip it). cadgate lists it no more either: such
/// a branch (written before cadgate guarded the repository, or into the
/// upstream of a forward-mode repository) is not a package revision, and
/// cadgate refuses to make one. Fails on the old code: cadgate listed it as
/// a Draft.
#[test]
fn a_draft_without_its_kptfile_is_listed_by_neither() {
    let transport = CadgateServer::start("");
    let server = &transport.server;
    let lab = Lab::new(&transport, ROOT, "m9");
    let f = lab.f();
    lab.draft("alice", &f, "kept", "n: 1\n");
    let repo = server.repo_dir(ROOT.repository);
    let tree = empty_tree(&repo);
    let bare = server_git(&repo, &["commit-tree", &tree, "-m", "no package here"]);
    server_git(
        &repo,
        &["update-ref", &format!("refs/heads/drafts/{f}/bare"), &bare],
    );
    server_git(
        &repo,
        &[
            "update-ref",
            &format!("refs/heads/proposed/{f}/bare2"),
            &bare,
        ],
    );

    let rita = TestUser::new("rita");
    let porch = assert_cadgate_lists_as_porch(server, &rita, registration(ROOT), "M9");
    let workspaces: Vec<&str> = porch
        .iter()
        .filter(|r| r.full_path == f)
        .map(|r| r.workspace.as_str())
        .collect();
    assert_eq!(workspaces, vec!["kept"]);
    let listed = api::revisions(server, &rita, ROOT.repository, &format!("package={f}"));
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["workspaceName"], "kept");
}

/// M10 — Porch's `publishedBy` is the author e-mail of the commit the tag
/// names (`pkg/externalrepo/git/package_tree.go` 65–70, `package.go`
/// 88–96); cadgate's API reports the same: for its own approval commit the
/// approver (cadgate writes the user name as the author), for Porch's own
/// approval merge pushed through cadgate Porch's identity.
#[test]
fn published_by_is_the_approval_commits_author_for_both() {
    let config = format!(
        "[policy]\nself_approval = true\n\n[[repository]]\nname = \"r\"\n\n{}{}{}",
        TestUser::new("porch").config(&["approver"], &[]),
        TestUser::new("dev").config(&["author"], &[]),
        TestUser::new("ann").config(&["approver"], &[]),
    );
    let server = Server::start(&config);
    let repo = server.repo_dir("r");
    let porch = Porch::new(&server.url_as(&TestUser::new("porch"), "r"), "main");
    assert!(porch.init("web", "ws").status.success());
    assert!(porch.propose("web", "ws").0.status.success());
    let (out, merge) = porch.approve("web", "ws", 1);
    assert!(out.status.success());
    assert_eq!(server_ref(&repo, "refs/tags/web/v1"), Some(merge));

    // A person publishes v2 with git.
    let dev = cadgate_integration::GitClient::new();
    dev.git(&[
        "clone",
        "-q",
        &server.url_as(&TestUser::new("dev"), "r"),
        "w",
    ]);
    dev.commit_files("w", &[("web/more.yaml", b"n: 2\n")], "more");
    dev.git_in(
        "w",
        &["push", "-q", "origin", "HEAD:refs/heads/drafts/web/two"],
    );
    dev.git_in(
        "w",
        &["push", "-q", "origin", "HEAD:refs/heads/proposed/web/two"],
    );
    let ann = cadgate_integration::GitClient::new();
    ann.git(&[
        "clone",
        "-q",
        &server.url_as(&TestUser::new("ann"), "r"),
        "w",
    ]);
    ann.git_in(
        "w",
        &[
            "push",
            "-q",
            "origin",
            "+origin/proposed/web/two:refs/heads/main",
        ],
    );

    let registration = Registration {
        name: "r",
        branch: "main",
        directory: "",
    };
    let read = assert_cadgate_lists_as_porch(&server, &TestUser::new("dev"), registration, "M10");
    let by: Vec<(i64, Option<&str>)> = read
        .iter()
        .filter(|r| r.revision >= 1)
        .map(|r| (r.revision, r.published_by.as_deref()))
        .collect();
    assert_eq!(by, vec![(1, Some("porch@example.com")), (2, Some("ann"))]);
}

/// M11 — Porch deletes a published revision by deleting its tag and
/// deletion proposal only (`pkg/externalrepo/git/git.go` 563–660,
/// `DeletePackageRevision`), leaving the branch alone. cadgate also puts
/// the previous revision's tree back on the branch when the latest is
/// deleted, so GitOps stops deploying it; Porch then reads the branch's
/// placeholder revision with that tree, published by the approver of the
/// deletion (the `Delete F/vN` commit is the latest commit annotated with
/// the package: git.go 1637–1672, package_tree.go 77–83).
#[test]
fn deleting_the_latest_moves_the_branch_and_porch_reads_the_previous_tree() {
    let transport = CadgateServer::start("");
    let server = &transport.server;
    let lab = Lab::new(&transport, ROOT, "m11");
    let f = lab.f();
    assert_eq!(lab.release(&f, "one", "n: 1\n"), 1);
    let v1 = lab.server_ref(&format!("refs/tags/{f}/v1")).expect("v1");
    assert_eq!(lab.release(&f, "two", "n: 2\n"), 2);
    lab.propose_deletion("alice", &f, 2);
    lab.accept(
        "bob",
        &[&format!(":refs/tags/{f}/v2")],
        &format!("deleted {f} v2; {BRANCH} now holds v1"),
    );
    let tip = lab
        .server_ref(&format!("refs/heads/{BRANCH}"))
        .expect("branch");
    assert_eq!(lab.object(&tip, &f), lab.object(&v1, &f));

    let rita = TestUser::new("rita");
    let porch = assert_cadgate_lists_as_porch(server, &rita, registration(ROOT), "M11");
    let mine: Vec<_> = porch.iter().filter(|r| r.full_path == f).collect();
    let revisions: Vec<i64> = mine.iter().map(|r| r.revision).collect();
    assert_eq!(revisions, vec![-1, 1], "{mine:#?}");
    let placeholder = mine[0];
    assert_eq!(placeholder.commit, tip);
    assert_eq!(placeholder.published_by.as_deref(), Some("bob"));
    assert!(mine[1].latest);
}

/// Porch reads a published revision as DeletionProposed only when the
/// branch `deletionProposed/<F>/v<N>` exists (`pkg/externalrepo/git/ref.go`
/// 129–135 `createDeletionProposedName`, `git.go` 1700–1714
/// `checkPublishedLifecycle`); a hand-made `deletionProposed/F/1` or
/// `deletionProposed/F/v01` marks nothing. cadgate lists the same, and
/// refuses to create such a marker. Fails on the old code: cadgate read
/// both as a deletion proposal of v1 and accepted pushing them.
#[test]
fn only_porchs_spelling_of_a_deletion_proposal_marks_a_revision() {
    let transport = CadgateServer::start("");
    let server = &transport.server;
    let lab = Lab::new(&transport, ROOT, "marker");
    let f = lab.f();
    assert_eq!(lab.release(&f, "one", "n: 1\n"), 1);
    let v1 = lab.server_ref(&format!("refs/tags/{f}/v1")).expect("v1");
    let repo = server.repo_dir(ROOT.repository);
    for spelling in ["1", "v01"] {
        server_git(
            &repo,
            &[
                "update-ref",
                &format!("refs/heads/deletionProposed/{f}/{spelling}"),
                &v1,
            ],
        );
    }
    let rita = TestUser::new("rita");
    let porch = assert_cadgate_lists_as_porch(server, &rita, registration(ROOT), "markers");
    let v1_read = porch
        .iter()
        .find(|r| r.full_path == f && r.revision == 1)
        .expect("v1");
    assert_eq!(v1_read.lifecycle, "Published");
    // Pushing another spelling is refused; Porch's spelling is accepted.
    lab.client("alice");
    lab.refuse(
        "alice",
        &[&format!(
            "refs/tags/{f}/v1:refs/heads/deletionProposed/{f}/001"
        )],
        "deletion-proposal-name",
    );
    lab.propose_deletion("alice", &f, 1);
    let porch = assert_cadgate_lists_as_porch(server, &rita, registration(ROOT), "proposed");
    assert!(porch
        .iter()
        .any(|r| r.full_path == f && r.revision == 1 && r.lifecycle == "DeletionProposed"));
}

/// Hand-made tags (M4): Porch reads `F/7` as revision 7 and `F/v01` as 1
/// (`pkg/repository/util.go` 96–104), `F/v0` as a published revision 0 and
/// `F/latest` as a published revision −1 with workspace `latest`
/// (`package_tree.go` 97–104). cadgate lists the first two the same and,
/// by its documented decision, not the last two; the mapping says so.
#[test]
fn hand_made_tags_are_read_as_porch_reads_them_or_as_documented() {
    let transport = CadgateServer::start("");
    let server = &transport.server;
    let lab = Lab::new(&transport, ROOT, "tags");
    let f = lab.f();
    assert_eq!(lab.release(&f, "one", "n: 1\n"), 1);
    let v1 = lab.server_ref(&format!("refs/tags/{f}/v1")).expect("v1");
    let repo = server.repo_dir(ROOT.repository);
    for name in ["7", "v01", "v0", "latest"] {
        server_git(
            &repo,
            &["update-ref", &format!("refs/tags/{f}/{name}"), &v1],
        );
    }
    let rita = TestUser::new("rita");
    let porch = assert_cadgate_lists_as_porch(server, &rita, registration(ROOT), "tags");
    let mut read: Vec<(i64, &str, bool)> = porch
        .iter()
        .filter(|r| r.full_path == f && !r.is_placeholder())
        .map(|r| (r.revision, r.workspace.as_str(), r.latest))
        .collect();
    read.sort();
    assert_eq!(
        read,
        vec![
            (-1, "latest", false),
            (0, "one", false),
            (1, "one", false),
            (1, "one", false),
            (7, "one", true),
        ]
    );
    let listed: Vec<u64> = api::revisions(server, &rita, ROOT.repository, &format!("package={f}"))
        .iter()
        .filter_map(|r| r["revision"].as_u64())
        .collect();
    assert_eq!(listed, vec![1, 1, 7]);
}
