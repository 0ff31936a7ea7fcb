//! Reading each other's repositories (issue 13, M1 and M4): what cadgate
//! writes into commits and tags is read by Porch the way cadgate reads it,
//! each test naming the Porch source it follows.

use cadgate_integration::api;
use cadgate_integration::scenarios::{self, CadgateServer, Lab, ROOT};
use cadgate_integration::{server_git, server_ref, Server, TestUser};

/// Porch's task reader, `pkg/externalrepo/git/git.go` `loadTasks`: walk the
/// history from `start` newest committer time first, read each commit's
/// `kpt:` lines (annotation.go `ExtractGitAnnotations`), keep those whose
/// `package` and `workspaceName` match, and stop at the first `init` or
/// `clone` task. Returns the task lines found, oldest first.
fn porch_tasks(repo: &std::path::Path, start: &str, package: &str, ws: &str) -> Vec<String> {
    let log = server_git(repo, &["log", "--date-order", "--format=%x1e%B", start]);
    let mut tasks = Vec::new();
    'commits: for message in log.split('\u{1e}') {
        for line in message.lines().map(str::trim) {
            let Some(json) = line.strip_prefix("kpt:") else {
                continue;
            };
            let Ok(a) = serde_json::from_str::<serde_json::Value>(json) else {
                continue;
            };
            if a["package"] != package || a["workspaceName"] != ws || a["task"].is_null() {
                continue;
            }
            tasks.push(line.to_string());
            let kind = a["task"]["type"].as_str().unwrap_or_default();
            if kind == "init" || kind == "clone" {
                break 'commits;
            }
        }
    }
    tasks.reverse();
    tasks
}

/// M1 — Porch `pkg/externalrepo/git/annotation.go`: `gitAnnotation` (lines
/// 31–46) declares `package`, `workspaceName`, `revision`, `task`, and
/// `AnnotateCommitMessage` (lines 71–80) appends `"\n\nkpt:" +
/// json.Marshal(annotation) + "\n"`; Go marshals struct fields in
/// declaration order. The approval commit carries exactly that line.
#[test]
fn the_approval_commit_message_carries_porchs_annotation_byte_for_byte() {
    let transport = CadgateServer::start("");
    let lab = Lab::new(&transport, ROOT, "anno");
    let f = lab.f();
    let revision = lab.release(&f, "ws-one", "first");
    assert_eq!(revision, 1);
    let raw = lab.server_git(&["cat-file", "commit", &format!("refs/tags/{f}/v1")]);
    let message = &raw[raw.find("\n\n").expect("a commit message") + 2..];
    assert_eq!(
        message,
        format!(
            "Approving package revision {f}/1\n\n\
             kpt:{{\"package\":\"{f}\",\"workspaceName\":\"ws-one\",\"revision\":\"1\"}}\n\n\
             Proposed-by: alice\nApproved-by: bob"
        )
    );
}

/// M4 — Porch `pkg/repository/util.go` `Revision2Int` (trim one `v`, then
/// `strconv.Atoi`) reads the tag `F/7` as revision 7 and `F/v01` as 1. A tag
/// made by hand with that form counts for cadgate too: the next revision is
/// 8, never a second 7, and the listing shows revision 7.
#[test]
fn a_hand_made_numeric_tag_counts_when_numbering_and_listing() {
    let transport = CadgateServer::start("");
    let lab = Lab::new(&transport, ROOT, "numbers");
    let f = lab.f();
    assert_eq!(lab.release(&f, "ws-one", "first"), 1);
    let v1 = lab
        .server_ref(&format!("refs/tags/{f}/v1"))
        .expect("v1 published");
    // What Porch would read as revision 7 and revision 1.
    lab.server_git(&["update-ref", &format!("refs/tags/{f}/7"), &v1]);
    lab.server_git(&["update-ref", &format!("refs/tags/{f}/v01"), &v1]);
    // And what it reads as no revision (−1).
    lab.server_git(&["update-ref", &format!("refs/tags/{f}/V9"), &v1]);

    let items = api::revisions(
        &transport.server,
        &TestUser::new("rita"),
        ROOT.repository,
        &format!("package={f}"),
    );
    let mut published: Vec<u64> = items
        .iter()
        .filter(|r| r["lifecycle"] == "Published")
        .filter_map(|r| r["revision"].as_u64())
        .collect();
    published.sort();
    assert_eq!(published, vec![1, 1, 7], "{items:#?}");

    assert_eq!(lab.release(&f, "ws-two", "second"), 8);
    assert!(lab.server_ref(&format!("refs/tags/{f}/v8")).is_some());
    assert!(lab.server_ref(&format!("refs/tags/{f}/v7")).is_none());
    let raw = lab.server_git(&["cat-file", "commit", &format!("refs/tags/{f}/v8")]);
    assert!(
        raw.contains("\"revision\":\"8\""),
        "the approval names revision 8: {raw}"
    );
}

/// M2 — Porch `pkg/externalrepo/git/git.go` `UpdateDraftResources` writes
/// the draft's first commit with `kpt:{"package","workspaceName","revision":"0",
/// "task":{…}}`, the task marshalled from `api/porch/v1alpha1/types.go`
/// (`Task`: `type`, `init`; `PackageInitTaskSpec`: `description`); and
/// `loadTasks` finds it again from the published tag, matching package and
/// workspace. cadgate's init commit carries that line, so Porch lists the
/// revision's `spec.tasks` as `[init]`.
#[test]
fn an_init_commit_carries_porchs_init_task_and_porch_finds_it_from_the_tag() {
    let transport = CadgateServer::start("");
    let server = &transport.server;
    let lab = Lab::new(&transport, ROOT, "fresh");
    let f = lab.f();
    let (status, made) = api::post(
        server,
        &TestUser::new("alice"),
        "/api/v1/repositories/root/revisions",
        &format!(
            r#"{{"packageName":"{f}","workspaceName":"start","init":{{"description":"a & b"}}}}"#
        ),
    );
    assert_eq!(status, 201, "{made}");
    let repo = server.repo_dir("root");
    let expected = format!(
        r#"kpt:{{"package":"{f}","workspaceName":"start","revision":"0","task":{{"type":"init","init":{{"description":"a \u0026 b"}}}}}}"#
    );
    let draft = server_ref(&repo, &format!("refs/heads/drafts/{f}/start")).expect("the draft");
    let raw = server_git(&repo, &["cat-file", "commit", &draft]);
    assert!(
        raw.ends_with(&format!("\n\n{expected}")),
        "the init commit ends with Porch's task line:\n{raw}"
    );
    lab.propose("alice", &f, "start");
    assert_eq!(lab.publish("bob", &f, "start"), 1);
    assert_eq!(
        porch_tasks(&repo, &format!("refs/tags/{f}/v1"), &f, "start"),
        vec![expected]
    );
}

fn start_public() -> CadgateServer {
    CadgateServer {
        server: Server::start(&scenarios::cadgate_config_with(|_| {
            "published_anonymous = true\n".to_string()
        })),
    }
}

/// M2 — the clone task as Porch marshals a Git upstream
/// (`api/porch/v1alpha1/types.go` `PackageCloneTaskSpec.upstreamRef`,
/// `UpstreamPackage{type, git}`, `GitPackage{repo, ref, directory,
/// secretRef}`; `secretRef` is a struct, so Go writes `{"name":""}`).
#[test]
fn a_clone_commit_carries_porchs_clone_task() {
    let host = start_public();
    let server = &host.server;
    let lab = Lab::new(&host, ROOT, "origin");
    let f = lab.f();
    lab.release(&f, "one", "n: 1\n");
    let (status, made) = api::post(
        server,
        &TestUser::new("alice"),
        "/api/v1/repositories/catalog/revisions",
        &format!(
            r#"{{"packageName":"web","workspaceName":"first","clone":{{"repository":"root","packageName":"{f}","revision":1}}}}"#
        ),
    );
    assert_eq!(status, 201, "{made}");
    let lock = &made["upstreamLock"]["git"];
    let repo = server.repo_dir("catalog");
    let draft = server_ref(&repo, "refs/heads/drafts/catalog/web/first").expect("the draft");
    let expected = format!(
        r#"kpt:{{"package":"catalog/web","workspaceName":"first","revision":"0","task":{{"type":"clone","clone":{{"upstreamRef":{{"type":"git","git":{{"repo":"{}","ref":"{f}/v1","directory":"{}","secretRef":{{"name":""}}}}}}}}}}}}"#,
        lock["repo"].as_str().expect("a repo"),
        lock["directory"]
            .as_str()
            .expect("a directory")
            .trim_start_matches('/'),
    );
    assert_eq!(
        porch_tasks(&repo, &draft, "catalog/web", "first"),
        vec![expected]
    );
}

/// M2 — a copy is Porch's `edit` task (`api/porch/v1alpha1/types.go`
/// `PackageEditTaskSpec{sourceRef: PackageRevisionRef{name}}`), naming the
/// copied revision by the object name the API lists for it.
#[test]
fn a_copy_commit_carries_porchs_edit_task_naming_the_source() {
    let transport = CadgateServer::start("");
    let server = &transport.server;
    let lab = Lab::new(&transport, ROOT, "copied");
    let f = lab.f();
    assert_eq!(lab.release(&f, "one", "n: 1\n"), 1);
    let rita = TestUser::new("rita");
    let listed = api::revisions(server, &rita, "root", &format!("package={f}"));
    let v1 = listed
        .iter()
        .find(|r| r["revision"] == 1)
        .and_then(|r| r["name"].as_str())
        .expect("v1 listed with a name")
        .to_string();
    let (status, made) = api::post(
        server,
        &TestUser::new("alice"),
        "/api/v1/repositories/root/revisions",
        &format!(r#"{{"packageName":"{f}","workspaceName":"two","copy":{{}}}}"#),
    );
    assert_eq!(status, 201, "{made}");
    let repo = server.repo_dir("root");
    let draft = server_ref(&repo, &format!("refs/heads/drafts/{f}/two")).expect("the draft");
    let tasks = porch_tasks(&repo, &draft, &f, "two");
    assert_eq!(
        tasks,
        vec![format!(
            r#"kpt:{{"package":"{f}","workspaceName":"two","revision":"0","task":{{"type":"edit","edit":{{"sourceRef":{{"name":"{v1}"}}}}}}}}"#
        )]
    );
}

/// A Kptfile for `name` whose upstream is `repo`/`directory` at `reference`.
fn kptfile_with_lock(
    name: &str,
    repo: &str,
    directory: &str,
    reference: &str,
    commit: &str,
) -> String {
    format!(
        "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: {name}\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\n\
         upstream:\n  type: git\n  git:\n    repo: {repo}\n    directory: {directory}\n    ref: {reference}\n  updateStrategy: resource-merge\n\
         upstreamLock:\n  type: git\n  git:\n    repo: {repo}\n    directory: {directory}\n    ref: {reference}\n    commit: {commit}\n"
    )
}

/// M7 — Porch records a clone's `upstreamLock.git.repo` as the upstream
/// Repository's URL and `directory` as the package path, without a leading
/// `/` (`pkg/externalrepo/git/package.go` `GetLock`: `Repo: repo` from
/// `p.repo.GetRepo()`, `Directory: p.path`, `Ref: ref.Short()`).
/// cadgate's clone writes this server's authoring URL `/R.git`; and its
/// discovery (the listing's `upstream`, `behind`) recognises both that and
/// the form it wrote before (`…/published/R.git`, `/F`).
#[test]
fn a_clone_records_the_registered_url_and_discovery_reads_both_forms() {
    let host = start_public();
    let server = &host.server;
    let lab = Lab::new(&host, ROOT, "source");
    let up = lab.f();
    assert_eq!(lab.release(&up, "one", "n: 1\n"), 1);
    let v1 = server_ref(&server.repo_dir("root"), &format!("refs/tags/{up}/v1")).expect("v1");
    let alice = TestUser::new("alice");
    let (status, made) = api::post(
        server,
        &alice,
        "/api/v1/repositories/root/revisions",
        &format!(
            r#"{{"packageName":"new-form","workspaceName":"ws","clone":{{"repository":"root","packageName":"{up}"}}}}"#
        ),
    );
    assert_eq!(status, 201, "{made}");
    let lock = &made["upstreamLock"]["git"];
    assert_eq!(lock["repo"], format!("{}/root.git", server.base()));
    assert_eq!(lock["directory"], up.as_str());
    lab.propose("alice", "new-form", "ws");
    lab.publish("bob", "new-form", "ws");

    // A package cloned by an older cadgate: `…/published/root.git`, `/F`.
    let old = kptfile_with_lock(
        "old-form",
        "http://old.example/published/root.git",
        &format!("/{up}"),
        &format!("{up}/v1"),
        &v1,
    );
    lab.commit(
        "alice",
        Some("origin/main"),
        &[
            ("old-form/Kptfile".to_string(), Some(old)),
            ("old-form/data.yaml".to_string(), Some("n: 1\n".to_string())),
        ],
    );
    lab.accept(
        "alice",
        &["+HEAD:refs/heads/drafts/old-form/ws"],
        "saved draft",
    );
    lab.propose("alice", "old-form", "ws");
    lab.publish("bob", "old-form", "ws");

    // The upstream moves on: both downstreams are behind it.
    assert_eq!(lab.release(&up, "two", "n: 2\n"), 2);
    for package in ["new-form", "old-form"] {
        let listed = api::revisions(
            server,
            &alice,
            "root",
            &format!("package={package}&latest=true"),
        );
        let upstream = &listed[0]["upstream"];
        assert_eq!(upstream["repository"], "root", "{package}: {listed:?}");
        assert_eq!(upstream["packageName"], up.as_str(), "{package}");
        assert_eq!(upstream["behind"], true, "{package}: {listed:?}");
    }
}

/// M5 — Porch names a package by its path below the repository's
/// registered `directory`: `discoverPackages` builds the key from the tree
/// path with the directory trimmed (`pkg/externalrepo/git/package_tree.go`
/// line 160, `strings.TrimPrefix(treePath, repoKey.Path)`), `packageName`
/// is `PackageKey.ToPkgPathname()` (`package.go` line 113;
/// `pkg/repository/repository.go` lines 158–160) and the object name
/// `ComposePkgRevObjName(repo, path, package, workspace)`
/// (`pkg/util/util.go` lines 160–167) — while refs keep the full path
/// (`ToFullPathname`, repository.go lines 162–164; ref.go 121–135).
/// cadgate's API does the same for a repository registered with
/// `directory = "catalog"`: names, `packageName`, the `package=` filter,
/// `packageName` in requests and `upstream.packageName`; API-name
/// uniqueness holds for the names below the directory. On the old code the
/// listing said `catalog/apps/web` and `catalog.catalog.apps.web.ws`.
#[test]
fn names_leave_out_the_repository_directory_as_porch_does() {
    let host = CadgateServer::start("");
    let server = &host.server;
    let (alice, bob, rita) = (
        TestUser::new("alice"),
        TestUser::new("bob"),
        TestUser::new("rita"),
    );
    let repo = server.repo_dir("catalog");
    let (status, made) = api::post(
        server,
        &alice,
        "/api/v1/repositories/catalog/revisions",
        r#"{"packageName":"apps/web","workspaceName":"ws","init":{"description":"d"}}"#,
    );
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["packageName"], "apps/web");
    assert_eq!(made["name"], "catalog.apps.web.ws");
    // The refs keep Porch's full path.
    assert!(server_ref(&repo, "refs/heads/drafts/catalog/apps/web/ws").is_some());

    // Lifecycle actions by the name the listing gives.
    let act = |user: &TestUser, name: &str, action: &str| {
        let (status, body) = api::post(
            server,
            user,
            &format!("/api/v1/repositories/catalog/revisions/{name}/{action}"),
            "",
        );
        assert_eq!(status, 200, "{action} {name}: {body}");
        body
    };
    act(&alice, "catalog.apps.web.ws", "propose");
    let after = act(&bob, "catalog.apps.web.ws", "approve");
    assert!(
        after["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|r| r["name"] == "catalog.apps.web.main" && r["placeholder"] == true),
        "{after}"
    );

    let items = api::revisions(server, &rita, "catalog", "package=apps/web");
    let names: Vec<&str> = items.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(
        names,
        ["catalog.apps.web.main", "catalog.apps.web.ws"],
        "{items:?}"
    );
    assert!(items.iter().all(|r| r["packageName"] == "apps/web"));
    let (status, one) = api::call(
        server,
        Some(&rita),
        "/api/v1/repositories/catalog/revisions/catalog.apps.web.ws",
    );
    assert_eq!((status, one["revision"].as_i64()), (200, Some(1)), "{one}");
    // The full path is not a packageName of this repository.
    assert!(api::revisions(server, &rita, "catalog", "package=catalog/apps/web").is_empty());

    // A clone names the upstream by its packageName; the lock records the
    // package's directory in Git, the full path (M7).
    let (status, clone) = api::post(
        server,
        &alice,
        "/api/v1/repositories/root/revisions",
        r#"{"packageName":"site","workspaceName":"ws","clone":{"repository":"catalog","packageName":"apps/web"}}"#,
    );
    assert_eq!(status, 201, "{clone}");
    assert_eq!(
        clone["upstreamLock"]["git"]["directory"],
        "catalog/apps/web"
    );
    assert_eq!(clone["upstreamLock"]["git"]["ref"], "catalog/apps/web/v1");
    let site = api::revisions(server, &alice, "root", "package=site");
    let upstream = &site[0]["upstream"];
    assert_eq!(upstream["repository"], "catalog", "{site:?}");
    assert_eq!(upstream["packageName"], "apps/web", "{site:?}");

    // Two packages one API name apart are refused; the key is the name
    // below the directory (`x.y`), as in the object names.
    let planted = server_ref(&repo, "refs/heads/main").expect("main");
    server_git(
        &repo,
        &["update-ref", "refs/heads/drafts/catalog/x.y/w1", &planted],
    );
    let (status, body) = api::post(
        server,
        &alice,
        "/api/v1/repositories/catalog/revisions",
        r#"{"packageName":"x/y","workspaceName":"w2","init":{}}"#,
    );
    assert_eq!(status, 409, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("api-name-is-unique") && error.contains("both are x.y "),
        "{body}"
    );
}
