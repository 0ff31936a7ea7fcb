//! The JSON API (contract §11) over real HTTP: the listing matches the refs
//! after every push of the lifecycle scenario list, filters and pages cut it
//! as asked, ETags spare unchanged answers, and bad input gets a JSON error
//! with the right status and changes nothing.

use std::path::PathBuf;

use cadgate_integration::api::{assert_listing_matches_refs, call, revisions, rows};
use cadgate_integration::scenarios::{self, CadgateServer, Lab, Transport, LAYOUTS, ROOT};
use cadgate_integration::*;

/// A cadgate server whose API is checked against the refs after every push.
struct Checked(CadgateServer);

impl Transport for Checked {
    fn name(&self) -> String {
        "cadgate server, API checked after every push".into()
    }
    fn clone_as(&self, user: &str, repository: &str) -> GitClient {
        self.0.clone_as(user, repository)
    }
    fn repository_dir(&self, repository: &str) -> PathBuf {
        self.0.repository_dir(repository)
    }
    fn after_push(&self, repository: &str) {
        let directory = LAYOUTS
            .iter()
            .find(|l| l.repository == repository)
            .map_or("", |l| l.directory);
        assert_listing_matches_refs(
            &self.0.server,
            &TestUser::new("rita"),
            repository,
            directory,
            "after a push",
        );
    }
}

#[test]
fn the_listing_matches_the_refs_after_every_push_of_the_scenario_list() {
    let host = Checked(CadgateServer::start(""));
    for layout in LAYOUTS {
        scenarios::run_all(&host, layout);
    }
}

fn server_with_history() -> (CadgateServer, String) {
    let host = CadgateServer::start("");
    let f = {
        let lab = Lab::new(&host, ROOT, "listed");
        let f = lab.f();
        lab.release(&f, "one", "n: 1\n");
        lab.release(&f, "two", "n: 2\n");
        lab.draft("alice", &f, "three", "n: 3\n");
        let other = lab.other("b");
        lab.release(&other, "first", "n: 1\n");
        f
    };
    (host, f)
}

#[test]
fn revisions_carry_porch_fields_and_latest_follows_publish_and_deletion() {
    let (host, f) = server_with_history();
    let server = &host.server;
    let rita = TestUser::new("rita");
    let items = revisions(server, &rita, "root", &format!("package={f}"));
    let v2 = items
        .iter()
        .find(|r| r["revision"] == 2)
        .expect("v2 listed");
    assert_eq!(v2["name"], format!("root.{}.two", f.replace('/', ".")));
    assert_eq!(v2["repository"], "root");
    assert_eq!(v2["packageName"], f.as_str());
    assert_eq!(v2["workspaceName"], "two");
    assert_eq!(v2["lifecycle"], "Published");
    assert_eq!(v2["latest"], true);
    assert_eq!(
        v2["commit"].as_str(),
        server_ref(&server.repo_dir("root"), &format!("refs/tags/{f}/v2")).as_deref()
    );
    assert!(
        v2["publishedBy"].as_str().is_some_and(|b| !b.is_empty()),
        "{v2}"
    );
    let at = v2["publishedAt"].as_str().expect("publishedAt");
    assert!(
        at.len() == 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
        "{at}"
    );
    assert!(v2["upstreamLock"].is_null(), "{v2}");
    let draft = items
        .iter()
        .find(|r| r["workspaceName"] == "three")
        .expect("draft");
    assert_eq!(
        (draft["revision"].as_u64(), draft["lifecycle"].as_str()),
        (Some(0), Some("Draft"))
    );
    assert_eq!(draft["latest"], false);

    // One revision by name; an unknown name is a JSON 404.
    let name = v2["name"].as_str().expect("name");
    let (status, one) = call(
        server,
        Some(&rita),
        &format!("/api/v1/repositories/root/revisions/{name}"),
    );
    assert_eq!((status, &one), (200, v2));
    let (status, err) = call(
        server,
        Some(&rita),
        "/api/v1/repositories/root/revisions/root.nope.ws",
    );
    assert_eq!(
        (status, err["code"].as_str()),
        (404, Some("not_found")),
        "{err}"
    );

    // Deleting v2 makes v1 the latest again.
    let lab = Lab::new(&host, ROOT, "listed");
    lab.propose_deletion("alice", &f, 2);
    let latest = revisions(server, &rita, "root", &format!("package={f}&latest=true"));
    assert_eq!(rows(&latest).len(), 1);
    assert_eq!(
        (
            latest[0]["revision"].as_u64(),
            latest[0]["lifecycle"].as_str()
        ),
        (Some(2), Some("DeletionProposed"))
    );
    lab.client("bob");
    lab.accept("bob", &[&format!(":refs/tags/{f}/v2")], "deleted");
    let latest = revisions(server, &rita, "root", &format!("package={f}&latest=true"));
    assert_eq!(latest.len(), 1, "{latest:?}");
    assert_eq!(latest[0]["revision"], 1);
    assert_listing_matches_refs(server, &rita, "root", "", "after deleting v2");
}

#[test]
fn filters_and_pages_cut_the_listing_as_asked() {
    let (host, f) = server_with_history();
    let server = &host.server;
    let rita = TestUser::new("rita");
    let all = revisions(server, &rita, "root", "");
    // Four revisions, and Porch's placeholder of each of the two packages
    // on the branch (Published, revision -1).
    assert_eq!(all.len(), 6, "{all:?}");
    assert_eq!(all.iter().filter(|r| r["placeholder"] == true).count(), 2);
    let published = revisions(server, &rita, "root", "lifecycle=Published");
    assert_eq!(published.len(), 5);
    assert!(published.iter().all(|r| r["lifecycle"] == "Published"));
    let drafts = revisions(
        server,
        &rita,
        "root",
        &format!("package={f}&lifecycle=Draft&workspace=three"),
    );
    assert_eq!(drafts.len(), 1);
    assert_eq!(revisions(server, &rita, "root", "package=no/such").len(), 0);

    // Pages of one, followed by their continue tokens, give the whole list.
    let mut paged = Vec::new();
    let mut query = "limit=1".to_string();
    loop {
        let (status, body) = call(
            server,
            Some(&rita),
            &format!("/api/v1/repositories/root/revisions?{query}"),
        );
        assert_eq!(status, 200, "{body}");
        let items = body["items"].as_array().expect("items");
        assert!(items.len() <= 1);
        paged.extend(items.iter().cloned());
        match body["continue"].as_str() {
            Some(token) => query = format!("limit=1&continue={token}"),
            None => break,
        }
    }
    assert_eq!(paged, all);
}

#[test]
fn an_unchanged_listing_answers_304_and_a_push_changes_its_etag() {
    let (host, f) = server_with_history();
    let server = &host.server;
    let rita = TestUser::new("rita");
    let auth = basic(&rita);
    let path = "/api/v1/repositories/root/revisions";
    let first = server.request("GET", path, &[("Authorization", &auth)], b"");
    assert_eq!(first.status, 200);
    let etag = first.header("etag").expect("an ETag").to_string();
    let again = server.request(
        "GET",
        path,
        &[("Authorization", &auth), ("If-None-Match", &etag)],
        b"",
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    // The very next call after a push sees it (no cache between refs and API).
    let lab = Lab::new(&host, ROOT, "listed");
    lab.draft("alice", &f, "four", "n: 4\n");
    let after = server.request(
        "GET",
        path,
        &[("Authorization", &auth), ("If-None-Match", &etag)],
        b"",
    );
    assert_eq!(after.status, 200);
    assert_ne!(after.header("etag"), Some(etag.as_str()));
    assert!(after.text().contains("\"workspaceName\":\"four\""));
}

#[test]
fn repositories_are_listed_to_those_who_may_read_them() {
    let config = format!(
        "{}{}",
        scenarios::cadgate_config(),
        TestUser::new("outsider").config(&["reader"], &["nested"])
    );
    let server = Server::start(&config);
    let (status, body) = call(
        &server,
        Some(&TestUser::new("rita")),
        "/api/v1/repositories",
    );
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["catalog", "nested", "root"]);
    assert_eq!(body["items"][0]["publishedUrl"], "/published/catalog.git");
    let (_, body) = call(
        &server,
        Some(&TestUser::new("outsider")),
        "/api/v1/repositories",
    );
    let names: Vec<&str> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["nested"]);
    let (status, body) = call(
        &server,
        Some(&TestUser::new("outsider")),
        "/api/v1/repositories/root/revisions",
    );
    // Like a missing repository (issue 12, finding 9).
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
}

#[test]
fn bad_requests_get_json_errors_and_change_nothing() {
    let (host, _f) = server_with_history();
    let server = &host.server;
    let rita = TestUser::new("rita");
    let refs = server_git(&server.repo_dir("root"), &["for-each-ref"]);
    let cases: &[(Option<&TestUser>, &str, u16, &str)] = &[
        (None, "/api/v1/repositories", 401, "unauthorized"),
        (
            Some(&rita),
            "/api/v1/repositories/nope/revisions",
            404,
            "not_found",
        ),
        (
            Some(&rita),
            "/api/v1/repositories/root/revisions?lifecycle=published",
            400,
            "bad_filter",
        ),
        (
            Some(&rita),
            "/api/v1/repositories/root/revisions?pakage=x",
            400,
            "bad_filter",
        ),
        (
            Some(&rita),
            "/api/v1/repositories/root/revisions?limit=0",
            400,
            "bad_filter",
        ),
        (
            Some(&rita),
            "/api/v1/repositories/root/revisions?limit=1&limit=2",
            400,
            "bad_filter",
        ),
        (
            Some(&rita),
            "/api/v1/repositories/root/revisions?continue=garbage",
            400,
            "bad_filter",
        ),
        (
            Some(&rita),
            "/api/v1/repositories/root/revisions?latest=maybe",
            400,
            "bad_filter",
        ),
        (Some(&rita), "/api/v1/nothing", 404, "not_found"),
    ];
    for (user, path, status, code) in cases {
        let (got, body) = call(server, *user, path);
        assert_eq!(
            (got, body["code"].as_str()),
            (*status, Some(*code)),
            "GET {path}: {body}"
        );
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    let wrong = server.request(
        "GET",
        "/api/v1/repositories",
        &[(
            "Authorization",
            &basic(&TestUser {
                name: "rita".into(),
                token: "wrong".into(),
            }),
        )],
        b"",
    );
    assert_eq!(wrong.status, 401);
    let post = server.request(
        "POST",
        "/api/v1/repositories",
        &[("Authorization", &basic(&rita))],
        b"{}",
    );
    assert_eq!(post.status, 405);
    assert!(post.text().contains("\"code\""), "{}", post.text());
    assert_eq!(
        server_git(&server.repo_dir("root"), &["for-each-ref"]),
        refs
    );
}

#[test]
fn a_repository_name_with_a_slash_is_addressed_percent_encoded() {
    let rita = TestUser::new("rita");
    let config = format!(
        "[[repository]]\nname = \"org/blueprints\"\n\n{}",
        rita.config(&["reader"], &[])
    );
    let server = Server::start(&config);
    let (status, body) = call(
        &server,
        Some(&rita),
        "/api/v1/repositories/org%2Fblueprints/revisions",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"], serde_json::json!([]));
    let (status, body) = call(
        &server,
        Some(&rita),
        "/api/v1/repositories/org%2Fblueprints",
    );
    assert_eq!(
        (status, body["name"].as_str()),
        (200, Some("org/blueprints")),
        "{body}"
    );
    let (status, _) = call(
        &server,
        Some(&rita),
        "/api/v1/repositories/org%FF/revisions",
    );
    assert_eq!(status, 400);
}
