//! Reading each other's repositories (issue 13, M1 and M4): what cadgate
//! writes into commits and tags is read by Porch the way cadgate reads it,
//! each test naming the Porch source it follows.

use cadgate_integration::api;
use cadgate_integration::scenarios::{self, CadgateServer, Lab, Layout, DIRECTORY, ROOT};
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

/// Porch's deletion guard, `pkg/cache/crcache/cache.go`
/// `FindAllUpstreamReferencesInRepositories` (lines 127–163; the database
/// cache's `findUpstreamRefsFromDB` matches the same two fields): the first
/// revision (not a placeholder) of the listed `repositories` whose tasks
/// (read as `loadTasks` does, [`porch_tasks`]) hold a `clone` whose
/// `upstreamRef.upstreamRef.name` is `name`, or an `upgrade` whose
/// `newUpstreamRef.name` is. Porch refuses deleting `name` while one does
/// (`pkg/registry/porch/packagerevision.go` `checkIfUpstreamIsReferenced`).
fn porch_guard(server: &Server, repositories: &[Layout], name: &str) -> Option<String> {
    let rita = TestUser::new("rita");
    for layout in repositories {
        for r in api::revisions(server, &rita, layout.repository, "") {
            if r["placeholder"] == true {
                continue;
            }
            // Annotations name the package by its full path, the API below
            // the repository's directory (M5).
            let below = r["packageName"].as_str().unwrap_or_default();
            let package = match layout.directory {
                "" => below.to_string(),
                directory => format!("{directory}/{below}"),
            };
            let ws = r["workspaceName"].as_str().unwrap_or_default();
            let commit = r["commit"].as_str().unwrap_or_default();
            let repo = server.repo_dir(layout.repository);
            for line in porch_tasks(&repo, commit, &package, ws) {
                let a: serde_json::Value =
                    serde_json::from_str(line.trim_start_matches("kpt:")).expect("json");
                let task = &a["task"];
                let named = match task["type"].as_str() {
                    Some("clone") => &task["clone"]["upstreamRef"]["upstreamRef"]["name"],
                    Some("upgrade") => &task["upgrade"]["newUpstreamRef"]["name"],
                    _ => continue,
                };
                if named == name {
                    return r["name"].as_str().map(str::to_string);
                }
            }
        }
    }
    None
}

/// The object name the API lists for revision `revision` of `package`.
fn listed_name(server: &Server, repository: &str, package: &str, revision: u64) -> String {
    api::revisions(
        server,
        &TestUser::new("rita"),
        repository,
        &format!("package={package}"),
    )
    .iter()
    .find(|r| r["revision"] == revision)
    .and_then(|r| r["name"].as_str())
    .unwrap_or_else(|| panic!("{repository} lists no {package} v{revision}"))
    .to_string()
}

/// M2 — a clone of a registered repository's revision is recorded as
/// Porch records its own: `porchctl rpkg clone <name>`
/// (`pkg/cli/commands/rpkg/clone/command.go` lines 156–159) and the
/// PackageVariant controller (`packagevariant_controller.go` lines 367–378)
/// send `clone.upstreamRef.upstreamRef.name` = the source revision's object
/// name and no `type`, and Porch writes the task as given
/// (`pkg/task/clone.go` `apply` returns it; `git.go` `UpdateDraftResources`
/// annotates the commit with it). So Porch's deletion guard
/// (`crcache/cache.go` line 148) sees cadgate's clone and refuses deleting
/// the cloned revision — in the repository cloned into and in another one —
/// while cadgate's own discovery (from the Kptfile's `upstreamLock`, which
/// keeps Porch's Git form, M7) still finds the upstream.
#[test]
fn a_clone_of_a_registered_revision_names_it_as_porch_does_and_porchs_guard_sees_it() {
    let host = start_public();
    let server = &host.server;
    let lab = Lab::new(&host, ROOT, "origin");
    let f = lab.f();
    lab.release(&f, "one", "n: 1\n");
    let v1 = listed_name(server, "root", &f, 1);
    assert_eq!(porch_guard(server, &[ROOT, DIRECTORY], &v1), None);
    let (status, made) = api::post(
        server,
        &TestUser::new("alice"),
        "/api/v1/repositories/catalog/revisions",
        &format!(
            r#"{{"packageName":"web","workspaceName":"first","clone":{{"repository":"root","packageName":"{f}","revision":1}}}}"#
        ),
    );
    assert_eq!(status, 201, "{made}");
    let repo = server.repo_dir("catalog");
    let draft = server_ref(&repo, "refs/heads/drafts/catalog/web/first").expect("the draft");
    assert_eq!(
        porch_tasks(&repo, &draft, "catalog/web", "first"),
        vec![format!(
            r#"kpt:{{"package":"catalog/web","workspaceName":"first","revision":"0","task":{{"type":"clone","clone":{{"upstreamRef":{{"upstreamRef":{{"name":"{v1}"}}}}}}}}}}"#
        )]
    );
    // Porch's guard names the clone as what references v1.
    assert_eq!(
        porch_guard(server, &[ROOT, DIRECTORY], &v1).as_deref(),
        made["name"].as_str()
    );
    // The Kptfile keeps Porch's Git form of the upstream (M7).
    let lock = &made["upstreamLock"]["git"];
    assert_eq!(lock["ref"], format!("{f}/v1"));
    assert_eq!(lock["directory"], f.as_str());

    // Within one repository too, and cadgate's discovery still reads it.
    let (status, made) = api::post(
        server,
        &TestUser::new("alice"),
        "/api/v1/repositories/root/revisions",
        &format!(
            r#"{{"packageName":"{f}-copy","workspaceName":"ws","clone":{{"repository":"root","packageName":"{f}"}}}}"#
        ),
    );
    assert_eq!(status, 201, "{made}");
    lab.propose("alice", &format!("{f}-copy"), "ws");
    lab.publish("bob", &format!("{f}-copy"), "ws");
    lab.release(&f, "two", "n: 2\n");
    let listed = api::revisions(
        server,
        &TestUser::new("alice"),
        "root",
        &format!("package={f}-copy&latest=true"),
    );
    assert_eq!(
        listed[0]["upstream"]["packageName"],
        f.as_str(),
        "{listed:?}"
    );
    assert_eq!(listed[0]["upstream"]["behind"], true, "{listed:?}");
    // v2 is nobody's upstream yet.
    let v2 = listed_name(server, "root", &f, 2);
    assert_eq!(porch_guard(server, &[ROOT, DIRECTORY], &v2), None);
}

/// M2 — an upgrade is Porch's `upgrade` task (`api/porch/v1alpha1/types.go`
/// `PackageUpgradeTaskSpec`, lines 221–243: `oldUpstreamRef`,
/// `newUpstreamRef`, `localPackageRevisionRef`, `strategy`), as
/// `porchctl rpkg upgrade` asks for it (`pkg/cli/commands/rpkg/upgrade/command.go`
/// lines 217–231) and `UpdateDraftResources` writes it on the draft's
/// commit; `loadTasks` finds it from the draft (it stops only at init or
/// clone, and no older commit names the new workspace). Porch's guard then
/// sees the new upstream revision as referenced by the upgrade.
#[test]
fn an_upgrade_commit_carries_porchs_upgrade_task_naming_the_three_revisions() {
    let host = start_public();
    let server = &host.server;
    let lab = Lab::new(&host, ROOT, "base");
    let up = lab.f();
    lab.release(&up, "one", "n: 1\n");
    let alice = TestUser::new("alice");
    let (status, made) = api::post(
        server,
        &alice,
        "/api/v1/repositories/root/revisions",
        &format!(
            r#"{{"packageName":"down","workspaceName":"ws","clone":{{"repository":"root","packageName":"{up}"}}}}"#
        ),
    );
    assert_eq!(status, 201, "{made}");
    lab.propose("alice", "down", "ws");
    lab.publish("bob", "down", "ws");
    lab.release(&up, "two", "n: 2\n");
    let (old, new, local) = (
        listed_name(server, "root", &up, 1),
        listed_name(server, "root", &up, 2),
        listed_name(server, "root", "down", 1),
    );
    assert_eq!(porch_guard(server, &[ROOT], &new), None);
    let (status, made) = api::post(
        server,
        &alice,
        "/api/v1/repositories/root/revisions",
        r#"{"packageName":"down","workspaceName":"upgrade","upgrade":{}}"#,
    );
    assert_eq!(status, 201, "{made}");
    let repo = server.repo_dir("root");
    let draft = server_ref(&repo, "refs/heads/drafts/down/upgrade").expect("the draft");
    assert_eq!(
        porch_tasks(&repo, &draft, "down", "upgrade"),
        vec![format!(
            r#"kpt:{{"package":"down","workspaceName":"upgrade","revision":"0","task":{{"type":"upgrade","upgrade":{{"oldUpstreamRef":{{"name":"{old}"}},"newUpstreamRef":{{"name":"{new}"}},"localPackageRevisionRef":{{"name":"{local}"}},"strategy":"resource-merge"}}}}}}"#
        )]
    );
    assert_eq!(
        porch_guard(server, &[ROOT], &new).as_deref(),
        made["name"].as_str()
    );
    // Published, the revision keeps its tasks (read from the tag).
    lab.propose("alice", "down", "upgrade");
    assert_eq!(lab.publish("bob", "down", "upgrade"), 2);
    let tasks = porch_tasks(&repo, "refs/tags/down/v2", "down", "upgrade");
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert!(tasks[0].contains(r#""type":"upgrade""#), "{tasks:?}");
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

/// M4 — deleting a revision whose only tag is hand-made (`F/7`, revision 7
/// for Porch's `Revision2Int` and for cadgate). Porch proposes a deletion
/// under a name made from the number, never from the tag:
/// `deletionProposed/F/v7` (`pkg/externalrepo/git/ref.go`
/// `createDeletionProposedName`, lines 129–135; pushed by `git.go`
/// `UpdateLifecycle`, lines 1741–1748), and reads only that name as the
/// revision's DeletionProposed marker. So cadgate takes that marker for the
/// tag `F/7`, refuses `deletionProposed/F/7` (Porch would not see it), and
/// approves the deletion when `refs/tags/F/7` is deleted (with or without
/// the marker's deletion in the same push, as Porch's delete sends it,
/// `git.go` lines 609–625). Through the API too.
#[test]
fn a_revision_whose_only_tag_is_hand_made_is_deleted_through_the_lifecycle() {
    let transport = CadgateServer::start("");
    let server = &transport.server;
    let lab = Lab::new(&transport, ROOT, "handmade");
    let f = lab.f();
    assert_eq!(lab.release(&f, "one", "n: 1\n"), 1);
    assert_eq!(lab.release(&f, "two", "n: 2\n"), 2);
    assert_eq!(lab.release(&f, "three", "n: 3\n"), 3);
    // Revisions 2 and 3 renamed by hand to `F/7` and `F/v08`.
    let v2 = lab.server_ref(&format!("refs/tags/{f}/v2")).expect("v2");
    let v3 = lab.server_ref(&format!("refs/tags/{f}/v3")).expect("v3");
    lab.server_git(&["update-ref", &format!("refs/tags/{f}/7"), &v2]);
    lab.server_git(&["update-ref", "-d", &format!("refs/tags/{f}/v2")]);
    lab.server_git(&["update-ref", &format!("refs/tags/{f}/v08"), &v3]);
    lab.server_git(&["update-ref", "-d", &format!("refs/tags/{f}/v3")]);
    let rita = TestUser::new("rita");
    let lifecycles = || -> Vec<(u64, String)> {
        let mut all: Vec<(u64, String)> =
            api::revisions(server, &rita, ROOT.repository, &format!("package={f}"))
                .iter()
                .filter(|r| r["revision"].as_u64() > Some(0))
                .map(|r| {
                    (
                        r["revision"].as_u64().unwrap_or_default(),
                        r["lifecycle"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect();
        all.sort();
        all
    };
    assert_eq!(
        lifecycles(),
        vec![
            (1, "Published".to_string()),
            (7, "Published".to_string()),
            (8, "Published".to_string())
        ]
    );

    // The tag's own spelling is not Porch's marker.
    lab.client("alice");
    lab.refuse(
        "alice",
        &[&format!("+{v2}:refs/heads/deletionProposed/{f}/7")],
        "deletion-proposal-name",
    );
    // Porch's is, pointing at the tag's commit.
    lab.refuse(
        "alice",
        &[&format!("+{v3}:refs/heads/deletionProposed/{f}/v7")],
        "deletion-proposal-at-the-tag",
    );
    lab.accept(
        "alice",
        &[&format!("+{v2}:refs/heads/deletionProposed/{f}/v7")],
        &format!("proposed deleting {f} v7"),
    );
    assert_eq!(lifecycles()[1], (7, "DeletionProposed".to_string()));
    // Deleting the tag approves the deletion; the marker goes with it.
    lab.refuse_role("alice", &[&format!(":refs/tags/{f}/7")], "approver");
    lab.accept(
        "bob",
        &[&format!(":refs/tags/{f}/7")],
        &format!("deleted {f} v7"),
    );
    assert_eq!(lab.server_ref(&format!("refs/tags/{f}/7")), None);
    assert_eq!(
        lab.server_ref(&format!("refs/heads/deletionProposed/{f}/v7")),
        None
    );
    assert_eq!(
        lifecycles(),
        vec![(1, "Published".to_string()), (8, "Published".to_string())]
    );

    // The latest, `F/v08`, through the API: the branch falls back to v1.
    let alice = TestUser::new("alice");
    let name = listed_name(server, ROOT.repository, &f, 8);
    let action = |user: &TestUser, action: &str| {
        api::post(
            server,
            user,
            &format!("/api/v1/repositories/root/revisions/{name}/{action}"),
            "",
        )
    };
    let (status, body) = action(&alice, "propose-delete");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        lab.server_ref(&format!("refs/heads/deletionProposed/{f}/v8"))
            .as_deref(),
        Some(v3.as_str())
    );
    let (status, body) = action(&TestUser::new("bob"), "delete");
    assert_eq!(status, 200, "{body}");
    assert_eq!(lab.server_ref(&format!("refs/tags/{f}/v08")), None);
    assert_eq!(lifecycles(), vec![(1, "Published".to_string())]);
    let branch = lab.server_ref("refs/heads/main").expect("main");
    let v1 = lab.server_ref(&format!("refs/tags/{f}/v1")).expect("v1");
    assert_eq!(
        lab.server_git(&["rev-parse", &format!("{branch}:{f}")]),
        lab.server_git(&["rev-parse", &format!("{v1}:{f}")]),
        "the branch holds v1 again"
    );
}

/// M8 — a new workspace's name follows Porch's rule for `workspaceName`,
/// a DNS-1123 label (`pkg/registry/porch/strategy.go` line 164 and
/// `pkg/engine/engine.go` line 154, `util.ValidateK8SName` =
/// `validation.IsDNS1123Label`), with git and through the API, and the
/// refusal says what a valid name is. A draft whose workspace exists
/// already under another name (made before the rule, by hand, by another
/// tool) stays listed and moves through the lifecycle, as Porch lists it
/// whatever its ref's last segment.
#[test]
fn new_workspaces_follow_porchs_rule_and_existing_ones_stay_readable() {
    let transport = CadgateServer::start("");
    let server = &transport.server;
    let lab = Lab::new(&transport, ROOT, "names");
    let f = lab.f();
    assert_eq!(lab.release(&f, "one", "n: 1\n"), 1);

    // New drafts: refused with the rule, nothing changed.
    lab.package_commit("alice", &f, "n: 2\n");
    for bad in ["Old_WS", "ws.1", "a-"] {
        let err = lab.refuse(
            "alice",
            &[&format!("+HEAD:refs/heads/drafts/{f}/{bad}")],
            "workspace-name",
        );
        assert!(
            err.contains("DNS-1123 label") && err.contains("lowercase letters, digits and `-`"),
            "{err}"
        );
    }
    let alice = TestUser::new("alice");
    let (status, body) = api::post(
        server,
        &alice,
        "/api/v1/repositories/root/revisions",
        &format!(r#"{{"packageName":"{f}","workspaceName":"Old_WS","copy":{{}}}}"#),
    );
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("[workspace-name]") && error.contains("DNS-1123 label"),
        "{body}"
    );
    assert!(lab
        .refs_under(&format!("refs/heads/drafts/{f}/"))
        .is_empty());

    // A draft that exists already under such a name (made on the server).
    lab.draft("alice", &f, "tmp", "n: 2\n");
    let tip = lab
        .server_ref(&format!("refs/heads/drafts/{f}/tmp"))
        .expect("tmp");
    lab.server_git(&["update-ref", &format!("refs/heads/drafts/{f}/Old_WS"), &tip]);
    lab.server_git(&["update-ref", "-d", &format!("refs/heads/drafts/{f}/tmp")]);
    let listed = api::revisions(server, &alice, "root", &format!("package={f}"));
    assert!(
        listed
            .iter()
            .any(|r| r["workspaceName"] == "Old_WS" && r["lifecycle"] == "Draft"),
        "{listed:?}"
    );
    // It is updated, proposed and published like any other.
    lab.package_commit("alice", &f, "n: 3\n");
    lab.accept(
        "alice",
        &[&format!("+HEAD:refs/heads/drafts/{f}/Old_WS")],
        &format!("saved draft {f} workspace Old_WS"),
    );
    lab.propose("alice", &f, "Old_WS");
    assert_eq!(lab.publish("bob", &f, "Old_WS"), 2);
    let listed = api::revisions(server, &alice, "root", &format!("package={f}"));
    assert!(
        listed
            .iter()
            .any(|r| r["workspaceName"] == "Old_WS" && r["revision"] == 2),
        "{listed:?}"
    );
}

#[path = "porch_metadata/reading.rs"]
mod reading;
