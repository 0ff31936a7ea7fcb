//! Cloning through the API (`POST /api/v1/repositories/{repo}/revisions`):
//! a new package's first draft from a published revision of a registered
//! repository or of any Git URL, its Kptfile recording the upstream as
//! `kpt pkg get` does; the draft goes through the same push rules as any.

use cadgate_integration::api::{assert_listing_matches_refs, call, post};
use cadgate_integration::scenarios::{self, CadgateServer, Lab, ROOT};
use cadgate_integration::*;

/// The YAML value at a dotted path of the Kptfile text (simple mappings only).
fn kpt_field(kptfile: &str, path: &[&str]) -> Option<String> {
    let mut indent = 0;
    let mut lines = kptfile.lines();
    let mut found = None;
    for (depth, key) in path.iter().enumerate() {
        found = None;
        for line in lines.by_ref() {
            let spaces = line.len() - line.trim_start().len();
            if spaces < indent && depth > 0 {
                return None;
            }
            if spaces == indent {
                if let Some(rest) = line.trim_start().strip_prefix(&format!("{key}:")) {
                    found = Some(rest.trim().trim_matches('\'').trim_matches('"').to_string());
                    break;
                }
            }
        }
        found.as_ref()?;
        indent += 2;
    }
    found
}

fn start() -> CadgateServer {
    CadgateServer {
        server: Server::start(&scenarios::cadgate_config_with(|_| {
            "published_anonymous = true\n".to_string()
        })),
    }
}

#[test]
fn a_clone_from_a_registered_repository_records_its_upstream_as_kpt_does() {
    let host = start();
    let server = &host.server;
    let lab = Lab::new(&host, ROOT, "blueprint");
    let f = lab.f();
    lab.release(&f, "one", "n: 1\n");
    lab.release(&f, "two", "n: 2\n");
    let v1 = server_ref(&server.repo_dir("root"), &format!("refs/tags/{f}/v1")).expect("v1");
    let alice = TestUser::new("alice");

    // Into another registered repository, pinned to v1.
    let (status, made) = post(
        server,
        &alice,
        "/api/v1/repositories/catalog/revisions",
        &format!(
            r#"{{"packageName":"web","workspaceName":"first","clone":{{"repository":"root","packageName":"{f}","revision":1}}}}"#
        ),
    );
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["lifecycle"], "Draft");
    assert_eq!(made["name"], "catalog.web.first");
    let lock = &made["upstreamLock"];
    assert_eq!(lock["type"], "git");
    assert!(
        lock["git"]["repo"]
            .as_str()
            .is_some_and(|r| r.ends_with("/root.git") && !r.contains("/published/")),
        "{lock}"
    );
    assert_eq!(lock["git"]["directory"], f.as_str());
    assert_eq!(lock["git"]["ref"], format!("{f}/v1"));
    assert_eq!(lock["git"]["commit"], v1.as_str());

    // The draft branch holds the package, its Kptfile field by field as
    // `kpt pkg get` writes it.
    let catalog = server.repo_dir("catalog");
    let tip = server_ref(&catalog, "refs/heads/drafts/catalog/web/first").expect("draft");
    assert_eq!(made["commit"], tip.as_str());
    let kptfile = server_git(&catalog, &["show", &format!("{tip}:catalog/web/Kptfile")]);
    assert_eq!(
        kpt_field(&kptfile, &["apiVersion"]).as_deref(),
        Some("kpt.dev/v1")
    );
    assert_eq!(
        kpt_field(&kptfile, &["metadata", "name"]).as_deref(),
        Some("web")
    );
    assert_eq!(
        kpt_field(&kptfile, &["upstream", "type"]).as_deref(),
        Some("git")
    );
    assert_eq!(
        kpt_field(&kptfile, &["upstream", "git", "directory"]),
        Some(f.clone())
    );
    assert_eq!(
        kpt_field(&kptfile, &["upstream", "git", "ref"]),
        Some(format!("{f}/v1"))
    );
    assert_eq!(
        kpt_field(&kptfile, &["upstream", "updateStrategy"]).as_deref(),
        Some("resource-merge")
    );
    assert_eq!(
        kpt_field(&kptfile, &["upstreamLock", "type"]).as_deref(),
        Some("git")
    );
    assert_eq!(
        kpt_field(&kptfile, &["upstreamLock", "git", "ref"]),
        Some(format!("{f}/v1"))
    );
    assert_eq!(
        kpt_field(&kptfile, &["upstreamLock", "git", "commit"]),
        Some(v1.clone())
    );
    assert_eq!(
        server_git(&catalog, &["show", &format!("{tip}:catalog/web/data.yaml")]),
        "n: 1"
    );

    // Without a revision: the latest (v2).
    let (status, made) = post(
        server,
        &alice,
        "/api/v1/repositories/root/revisions",
        &format!(
            r#"{{"packageName":"copied","workspaceName":"ws","clone":{{"repository":"root","packageName":"{f}"}}}}"#
        ),
    );
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["upstreamLock"]["git"]["ref"], format!("{f}/v2"));
    assert_listing_matches_refs(server, &alice, "root", "", "after a clone");

    // Once the clone is published, deleting the revision it pins is refused, naming it.
    lab.propose("alice", "copied", "ws");
    lab.publish("bob", "copied", "ws");
    lab.propose_deletion("alice", &f, 2);
    lab.client("bob");
    let err = lab.refuse(
        "bob",
        &[&format!(":refs/tags/{f}/v2")],
        "revision-is-pinned",
    );
    assert!(err.contains("copied"), "{err}");

    // A pin from another repository counts too: catalog/web pins v1.
    let bob = TestUser::new("bob");
    let action = |user: &TestUser, name: &str, action: &str| {
        let repository = name.split('.').next().unwrap_or_default();
        post(
            server,
            user,
            &format!("/api/v1/repositories/{repository}/revisions/{name}/{action}"),
            "",
        )
    };
    assert_eq!(action(&alice, "catalog.web.first", "propose").0, 200);
    assert_eq!(action(&bob, "catalog.web.first", "approve").0, 200);
    let v1_name = format!("root.{}.one", f.replace('/', "."));
    assert_eq!(action(&alice, &v1_name, "propose-delete").0, 200);
    let (status, refused) = action(&bob, &v1_name, "delete");
    assert_eq!(status, 409, "{refused}");
    let message = refused["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("catalog:catalog/web") && message.contains("revision-is-pinned"),
        "{message}"
    );
    assert!(server_ref(&server.repo_dir("root"), &format!("refs/tags/{f}/v1")).is_some());
}

#[test]
fn a_clone_from_a_git_url_fetches_the_ref_and_keeps_credentials_out() {
    let upstream = start();
    let lab = Lab::new(&upstream, ROOT, "remote");
    let f = lab.f();
    lab.release(&f, "one", "n: remote\n");
    let v1 = server_ref(
        &upstream.server.repo_dir("root"),
        &format!("refs/tags/{f}/v1"),
    )
    .expect("v1");
    // The upstream is on loopback, which an admin must allow.
    let host = CadgateServer {
        server: Server::start(&format!(
            "[server]\nfetch_allow = [\"127.0.0.1\"]\n\n{}",
            scenarios::cadgate_config_with(|_| "published_anonymous = true\n".to_string())
        )),
    };
    let url = upstream
        .server
        .url_as(&TestUser::new("rita"), "published/root");
    let (status, made) = post(
        &host.server,
        &TestUser::new("alice"),
        "/api/v1/repositories/root/revisions",
        &format!(
            r#"{{"packageName":"fromurl","workspaceName":"ws","clone":{{"git":{{"repo":"{url}","ref":"{f}/v1","directory":"{f}"}}}}}}"#
        ),
    );
    assert_eq!(status, 201, "{made}");
    let lock = &made["upstreamLock"]["git"];
    assert_eq!(lock["commit"], v1.as_str());
    assert_eq!(lock["ref"], format!("{f}/v1"));
    assert!(
        !lock["repo"]
            .as_str()
            .unwrap_or_default()
            .contains("rita-token"),
        "{lock}"
    );
    let repo = host.server.repo_dir("root");
    assert!(
        server_git(&repo, &["for-each-ref", "refs/cadgate"]).is_empty(),
        "a temporary ref stayed"
    );
    let tip = server_ref(&repo, "refs/heads/drafts/fromurl/ws").expect("draft");
    assert_eq!(
        server_git(&repo, &["show", &format!("{tip}:fromurl/data.yaml")]),
        "n: remote"
    );
    // Issue 13 M2: a Git URL is no Porch object, so the task line is
    // Porch's Git form of the clone (`UpstreamPackage{type: git, git:
    // GitPackage{repo, ref, directory, secretRef}}`, api/porch/v1alpha1/
    // types.go lines 264–300), the URL without credentials.
    let message = server_git(&repo, &["log", "-1", "--format=%B", &tip]);
    let expected = format!(
        r#"kpt:{{"package":"fromurl","workspaceName":"ws","revision":"0","task":{{"type":"clone","clone":{{"upstreamRef":{{"type":"git","git":{{"repo":"{}","ref":"{f}/v1","directory":"{f}","secretRef":{{"name":""}}}}}}}}}}}}"#,
        lock["repo"].as_str().expect("a repo")
    );
    assert!(
        message.lines().any(|l| l == expected),
        "{expected}\nis not a line of\n{message}"
    );
}

#[test]
fn bad_clone_requests_get_json_errors_and_change_nothing() {
    let host = start();
    let server = &host.server;
    let lab = Lab::new(&host, ROOT, "source");
    let f = lab.f();
    lab.release(&f, "one", "n: 1\n");
    lab.draft("alice", "taken", "ws", "n: 1\n");
    let refs = server_git(&server.repo_dir("root"), &["for-each-ref"]);
    let alice = TestUser::new("alice");
    let path = "/api/v1/repositories/root/revisions";
    let clone = |package: &str, from: &str| {
        format!(r#"{{"packageName":"{package}","workspaceName":"ws2","clone":{from}}}"#)
    };
    let cases: Vec<(TestUser, String, u16, &str)> = vec![
        (alice.clone(), "{not json".into(), 400, "bad_request"),
        (
            alice.clone(),
            r#"{"packageName":"x","workspaceName":"ws","clone":{},"extra":1}"#.into(),
            400,
            "bad_request",
        ),
        (alice.clone(), clone("new", r#"{}"#), 422, "invalid"),
        (
            alice.clone(),
            clone(
                "new",
                &format!(r#"{{"repository":"root","packageName":"{f}","revision":9}}"#),
            ),
            422,
            "invalid",
        ),
        (
            alice.clone(),
            clone("new", r#"{"repository":"nope","packageName":"x"}"#),
            404,
            "not_found",
        ),
        (
            alice.clone(),
            clone(
                "new",
                r#"{"git":{"repo":"file:///etc","ref":"main","directory":"x"}}"#,
            ),
            422,
            "invalid",
        ),
        (
            alice.clone(),
            clone(
                "new",
                r#"{"git":{"repo":"http://127.0.0.1:9/x.git","ref":"main","directory":"x"}}"#,
            ),
            422,
            "invalid",
        ),
        (
            alice.clone(),
            clone(
                &f,
                &format!(r#"{{"repository":"root","packageName":"{f}"}}"#),
            ),
            409,
            "conflict",
        ),
        (
            TestUser::new("rita"),
            clone(
                "new",
                &format!(r#"{{"repository":"root","packageName":"{f}"}}"#),
            ),
            403,
            "forbidden",
        ),
    ];
    for (user, body, status, code) in &cases {
        let (got, json) = post(server, user, path, body);
        assert_eq!(
            (got, json["code"].as_str()),
            (*status, Some(*code)),
            "{body}: {json}"
        );
    }
    let (status, _) = call(server, None, "/api/v1/repositories");
    assert_eq!(status, 401);
    assert_eq!(
        server_git(&server.repo_dir("root"), &["for-each-ref"]),
        refs
    );
}

fn deployment(image: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default\nspec:\n  replicas: {replicas}\n  template:\n    spec:\n      containers:\n      - name: web\n        image: {image}\n"
    )
}

/// `user` saves `files` (path, content) as draft `ws` of `package` on top of
/// the branch, proposes it, and bob publishes it.
fn release_files(lab: &Lab, package: &str, ws: &str, files: &[(&str, String)]) -> u64 {
    let writes: Vec<(String, Option<String>)> = files
        .iter()
        .map(|(path, content)| (format!("{package}/{path}"), Some(content.clone())))
        .collect();
    lab.commit("alice", Some("origin/main"), &writes);
    lab.accept(
        "alice",
        &[&format!("+HEAD:refs/heads/drafts/{package}/{ws}")],
        "saved draft",
    );
    lab.propose("alice", package, ws);
    lab.publish("bob", package, ws)
}

#[test]
fn an_upgrade_merges_upstream_and_local_changes_and_reports_conflicts_by_field() {
    let host = start();
    let server = &host.server;
    let lab = Lab::new(&host, ROOT, "up");
    let alice = TestUser::new("alice");
    let up = lab.f();
    release_files(
        &lab,
        &up,
        "one",
        &[
            ("Kptfile", kptfile(&up)),
            ("deployment.yaml", deployment("nginx:1.25", 1)),
            ("README.md", "# web\n\nServes pages.\n".into()),
        ],
    );
    // The downstream: cloned from v1, published, then changed locally.
    let (status, made) = post(
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
    lab.client("alice");
    release_files(
        &lab,
        "down",
        "local",
        &[("deployment.yaml", deployment("nginx:1.25", 3))],
    );
    // Not behind yet; this answer is remembered, and must not outlive the
    // upstream's next publish.
    let listed =
        cadgate_integration::api::revisions(server, &alice, "root", "package=down&latest=true");
    assert_eq!(listed[0]["upstream"]["behind"], false, "{listed:?}");
    // The upstream moves on: a new image.
    release_files(
        &lab,
        &up,
        "two",
        &[("deployment.yaml", deployment("nginx:1.27", 1))],
    );
    let v2 = server_ref(&server.repo_dir("root"), &format!("refs/tags/{up}/v2")).expect("v2");

    // Discovery: the downstream shows it is behind, and the behind list has it.
    let listed =
        cadgate_integration::api::revisions(server, &alice, "root", "package=down&latest=true");
    let upstream = &listed[0]["upstream"];
    assert_eq!(upstream["repository"], "root", "{listed:?}");
    assert_eq!(upstream["packageName"], up.as_str());
    assert_eq!(
        (
            upstream["revision"].as_u64(),
            upstream["latestRevision"].as_u64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(upstream["behind"], true);
    let (status, behind) = call(server, Some(&alice), "/api/v1/behind");
    assert_eq!(status, 200, "{behind}");
    let names: Vec<&str> = behind["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["packageName"].as_str())
        .collect();
    assert_eq!(names, ["down"], "{behind}");

    let (status, made) = post(
        server,
        &alice,
        "/api/v1/repositories/root/revisions",
        r#"{"packageName":"down","workspaceName":"upgrade","upgrade":{}}"#,
    );
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["lifecycle"], "Draft");
    assert_eq!(made["upstreamLock"]["git"]["ref"], format!("{up}/v2"));
    assert_eq!(made["upstreamLock"]["git"]["commit"], v2.as_str());
    let repo = server.repo_dir("root");
    let tip = server_ref(&repo, "refs/heads/drafts/down/upgrade").expect("the upgrade draft");
    let merged = server_git(&repo, &["show", &format!("{tip}:down/deployment.yaml")]);
    assert!(
        merged.contains("image: nginx:1.27"),
        "the upstream change is missing:\n{merged}"
    );
    assert!(
        merged.contains("replicas: 3"),
        "the local change is lost:\n{merged}"
    );
    let kpt = server_git(&repo, &["show", &format!("{tip}:down/Kptfile")]);
    assert_eq!(
        kpt_field(&kpt, &["metadata", "name"]).as_deref(),
        Some("down")
    );
    assert_eq!(
        kpt_field(&kpt, &["upstreamLock", "git", "ref"]),
        Some(format!("{up}/v2"))
    );
    assert_eq!(
        server_git(&repo, &["show", &format!("{tip}:down/README.md")]),
        "# web\n\nServes pages."
    );

    // A conflicting upstream change: the same field, changed both ways.
    lab.client("alice");
    lab.accept("alice", &[":refs/heads/drafts/down/upgrade"], "deleted");
    release_files(
        &lab,
        &up,
        "three",
        &[("deployment.yaml", deployment("nginx:1.27", 5))],
    );
    let before = server_git(&repo, &["for-each-ref"]);
    let (status, refused) = post(
        server,
        &alice,
        "/api/v1/repositories/root/revisions",
        r#"{"packageName":"down","workspaceName":"upgrade2","upgrade":{"revision":3}}"#,
    );
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("conflict")),
        "{refused}"
    );
    let conflict = &refused["conflicts"][0];
    assert_eq!(conflict["path"], "deployment.yaml", "{refused}");
    assert!(
        conflict["resource"]
            .as_str()
            .is_some_and(|r| r.contains("Deployment") && r.contains("web")),
        "{refused}"
    );
    assert_eq!(conflict["field"], "spec.replicas", "{refused}");
    assert_eq!(
        server_git(&repo, &["for-each-ref"]),
        before,
        "a refused upgrade changed refs"
    );

    // Nothing newer to go to.
    let (status, _) = post(
        server,
        &alice,
        "/api/v1/repositories/root/revisions",
        r#"{"packageName":"down","workspaceName":"upgrade3","upgrade":{"revision":1}}"#,
    );
    assert_eq!(status, 409);
}

#[test]
fn a_public_url_names_this_server_in_cloned_kptfiles() {
    let config = format!(
        "[server]\npublic_url = \"https://cadgate.example.com/\"\n\n{}",
        scenarios::cadgate_config()
    );
    let host = CadgateServer {
        server: Server::start(&config),
    };
    let lab = Lab::new(&host, ROOT, "public");
    let f = lab.f();
    lab.release(&f, "one", "n: 1\n");
    let (status, made) = post(
        &host.server,
        &TestUser::new("alice"),
        "/api/v1/repositories/root/revisions",
        &format!(
            r#"{{"packageName":"behind-a-proxy","workspaceName":"ws","clone":{{"repository":"root","packageName":"{f}"}}}}"#
        ),
    );
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        made["upstreamLock"]["git"]["repo"],
        "https://cadgate.example.com/root.git"
    );
    // The upstream is still recognised as this server's repository.
    assert_eq!(made["upstreamLock"]["git"]["ref"], format!("{f}/v1"));
}
