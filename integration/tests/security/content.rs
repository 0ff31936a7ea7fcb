//! Names, self-approval and hostile content (findings 4, 6 and 8): option-
//! like and colliding package names are refused through the API and by
//! push, an approver cannot publish their own proposal by way of another
//! workspace's, and hostile Kptfiles are refused without holding the
//! repository's lifecycle lock.

use std::process::Output;

use cadgate_integration::api::{call, post};
use cadgate_integration::*;

/// A server with repository `demo`; alice and carol are authors, bob an
/// approver (self-approval off, the default).
fn start() -> (Server, TestUser, TestUser, TestUser) {
    let (alice, bob, carol) = (
        TestUser::new("alice"),
        TestUser::new("bob"),
        TestUser::new("carol"),
    );
    let server = Server::start(&format!(
        "[[repository]]\nname = \"demo\"\n\n{}{}{}",
        alice.config(&["author"], &[]),
        bob.config(&["approver"], &[]),
        carol.config(&["author"], &[]),
    ));
    (server, alice, bob, carol)
}

/// `user`'s clone of `demo` in a fresh client.
fn clone(server: &Server, user: &TestUser) -> GitClient {
    let client = GitClient::new();
    client.git(&["clone", "-q", &server.url_as(user, "demo"), "w"]);
    client
}

fn push(client: &GitClient, refspec: &str) -> Output {
    client
        .command(&["-C", "w", "push", "origin", refspec])
        .output()
        .expect("run git push")
}

fn pushed(out: &Output) -> bool {
    out.status.success()
}

fn drafts(server: &Server) -> String {
    server_git(
        &server.repo_dir("demo"),
        &["for-each-ref", "--format=%(refname)", "refs/heads/drafts/"],
    )
}

/// Put `client`'s HEAD at `refname` in the server's repository directly,
/// as an older cadgate or Porch itself left it: no hook runs.
fn plant(server: &Server, client: &GitClient, refname: &str) {
    let source = client.path("w");
    server_git(
        &server.repo_dir("demo"),
        &[
            "fetch",
            "-q",
            &source.to_string_lossy(),
            &format!("+HEAD:{refname}"),
        ],
    );
}

#[test]
fn option_like_and_non_porch_names_are_refused_for_new_packages_via_api_and_push() {
    let (server, alice, _, _) = start();
    let revisions = "/api/v1/repositories/demo/revisions";
    for (package, workspace, field) in [
        ("-x", "w1", "packageName"),
        ("x.y", "w1", "packageName"),
        ("Upper", "w1", "packageName"),
        ("a/-x", "w1", "packageName"),
        ("ok", "-w", "workspaceName"),
    ] {
        let (status, body) = post(
            &server,
            &alice,
            revisions,
            &format!(r#"{{"packageName":"{package}","workspaceName":"{workspace}","init":{{}}}}"#),
        );
        assert_eq!(status, 422, "{package} {workspace}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(field) && error.contains("DNS-1123"),
            "{package} {workspace}: {body}"
        );
    }
    assert_eq!(drafts(&server), "", "a refused name created a draft");

    // By push: an option-like package path is not a package at all, and a
    // new package path outside Porch's rule is refused naming the rule.
    let client = clone(&server, &alice);
    client.commit_package("w", "-x", &[], "option-like");
    let out = push(&client, "HEAD:refs/heads/drafts/-x/w1");
    assert!(!pushed(&out), "drafts/-x/w1 was accepted");
    assert!(stderr(&out).contains("DNS-1123"), "{}", stderr(&out));
    client.commit_package("w", "x.y", &[], "dotted");
    let out = push(&client, "HEAD:refs/heads/drafts/x.y/w1");
    assert!(!pushed(&out), "drafts/x.y/w1 was accepted");
    assert!(
        stderr(&out).contains("[package-name]") && stderr(&out).contains("DNS-1123"),
        "{}",
        stderr(&out)
    );
    assert_eq!(drafts(&server), "", "a refused name created a draft");

    // Porch's names work.
    let (status, body) = post(
        &server,
        &alice,
        revisions,
        r#"{"packageName":"k01","workspaceName":"w1","init":{}}"#,
    );
    assert_eq!(status, 201, "{body}");
    client.git_in("w", &["reset", "-q", "--hard", "origin/main"]);
    client.commit_package("w", "basens", &[], "basens");
    assert!(pushed(&push(&client, "HEAD:refs/heads/drafts/basens/w1")));
}

#[test]
fn packages_whose_api_names_collide_are_refused_and_ambiguous_names_act_on_nothing() {
    let (server, alice, bob, _) = start();
    // `x.y` exists already (written before names were checked): it is
    // listed and moves through the lifecycle.
    let client = clone(&server, &alice);
    let dotted = client.commit_package("w", "x.y", &[], "dotted");
    plant(&server, &client, "refs/heads/drafts/x.y/w1");
    let (status, body) = call(
        &server,
        Some(&alice),
        "/api/v1/repositories/demo/revisions/demo.x.y.w1",
    );
    assert_eq!(
        (status, body["packageName"].as_str()),
        (200, Some("x.y")),
        "{body}"
    );

    // `x/y` would have the same name: refused through the API and by push.
    let (status, body) = post(
        &server,
        &alice,
        "/api/v1/repositories/demo/revisions",
        r#"{"packageName":"x/y","workspaceName":"w2","init":{}}"#,
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("api-name-is-unique"),
        "{body}"
    );
    client.git_in("w", &["reset", "-q", "--hard", "origin/main"]);
    let slashed = client.commit_package("w", "x/y", &[], "slashed");
    let out = push(&client, "HEAD:refs/heads/drafts/x/y/w1");
    assert!(!pushed(&out), "drafts/x/y/w1 was accepted");
    assert!(
        stderr(&out).contains("api-name-is-unique"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("x.y"), "{}", stderr(&out));

    // Should both exist anyway (planted by hand), their name acts on neither.
    plant(&server, &client, "refs/heads/drafts/x/y/w1");
    let (status, body) = call(
        &server,
        Some(&alice),
        "/api/v1/repositories/demo/revisions/demo.x.y.w1",
    );
    assert_eq!(status, 409, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("package x.y") && error.contains("package x/y"),
        "{body}"
    );
    for (user, action) in [(&alice, "propose"), (&alice, "delete"), (&bob, "approve")] {
        let (status, body) = post(
            &server,
            user,
            &format!("/api/v1/repositories/demo/revisions/demo.x.y.w1/{action}"),
            "",
        );
        assert_eq!(status, 409, "{action}: {body}");
    }
    let repo = server.repo_dir("demo");
    assert_eq!(
        server_ref(&repo, "refs/heads/drafts/x.y/w1").as_deref(),
        Some(dotted.as_str())
    );
    assert_eq!(
        server_ref(&repo, "refs/heads/drafts/x/y/w1").as_deref(),
        Some(slashed.as_str())
    );
    assert_eq!(
        server_git(
            &repo,
            &[
                "for-each-ref",
                "--format=%(refname)",
                "refs/heads/proposed/"
            ]
        ),
        ""
    );
}

#[test]
fn an_approver_cannot_publish_their_own_proposal_through_another_workspaces_proposal() {
    let (server, alice, bob, _) = start();
    let api = |user: &TestUser, name: &str, action: &str| {
        post(
            &server,
            user,
            &format!("/api/v1/repositories/demo/revisions/demo.app.{name}/{action}"),
            "",
        )
    };
    // bob (author and approver) drafts and proposes commit C in ws2.
    let bobs = clone(&server, &bob);
    let c = bobs.commit_package("w", "app", &[("data.yaml", b"a: 1\n")], "C");
    assert!(pushed(&push(&bobs, "HEAD:refs/heads/drafts/app/ws2")));
    let (status, body) = api(&bob, "ws2", "propose");
    assert_eq!(status, 200, "{body}");
    // alice proposes the same C in ws1, then deletes that proposal: the
    // newest proposed-by line of C's note names alice.
    let alices = GitClient::new();
    alices.git(&["clone", "-q", &server.url_as(&alice, "demo"), "w"]);
    alices.git_in("w", &["fetch", "-q", "origin", &c]);
    alices.git_in("w", &["checkout", "-q", &c]);
    assert!(pushed(&push(&alices, "HEAD:refs/heads/drafts/app/ws1")));
    let (status, body) = api(&alice, "ws1", "propose");
    assert_eq!(status, 200, "{body}");
    let (status, body) = api(&alice, "ws1", "delete");
    assert_eq!(status, 200, "{body}");
    // bob's approval of his own proposal is self-approval.
    let (status, body) = api(&bob, "ws2", "approve");
    assert_eq!(status, 409, "bob approved his own proposal: {body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("no-self-approval"),
        "{body}"
    );
    let repo = server.repo_dir("demo");
    assert_eq!(server_ref(&repo, "refs/tags/app/v1"), None);

    // The other order (alice first, bob's proposal newest) is refused too,
    // and another approver publishes.
    let dave = TestUser::new("dave");
    drop(server);
    let server = Server::start(&format!(
        "[[repository]]\nname = \"demo\"\n\n{}{}{}",
        alice.config(&["author"], &[]),
        bob.config(&["approver"], &[]),
        dave.config(&["approver"], &[]),
    ));
    let api = |user: &TestUser, name: &str, action: &str| {
        post(
            &server,
            user,
            &format!("/api/v1/repositories/demo/revisions/demo.app.{name}/{action}"),
            "",
        )
    };
    let alices = clone(&server, &alice);
    let c = alices.commit_package("w", "app", &[("data.yaml", b"a: 1\n")], "C");
    assert!(pushed(&push(&alices, "HEAD:refs/heads/drafts/app/ws1")));
    assert_eq!(api(&alice, "ws1", "propose").0, 200);
    assert_eq!(api(&alice, "ws1", "delete").0, 200);
    let bobs = GitClient::new();
    bobs.git(&["clone", "-q", &server.url_as(&bob, "demo"), "w"]);
    bobs.git_in("w", &["fetch", "-q", "origin", &c]);
    bobs.git_in("w", &["checkout", "-q", &c]);
    assert!(pushed(&push(&bobs, "HEAD:refs/heads/drafts/app/ws2")));
    assert_eq!(api(&bob, "ws2", "propose").0, 200);
    let (status, body) = api(&bob, "ws2", "approve");
    assert_eq!(status, 409, "{body}");
    let (status, body) = api(&dave, "ws2", "approve");
    assert_eq!(status, 200, "{body}");
    let approval = server_ref(&server.repo_dir("demo"), "refs/tags/app/v1").expect("v1");
    let message = server_git(
        &server.repo_dir("demo"),
        &["log", "-1", "--format=%B", &approval],
    );
    assert!(message.contains("Proposed-by: bob"), "{message}");
}

/// Hostile Kptfiles for package `app`, with the bound each breaks.
fn hostile_kptfiles() -> Vec<(&'static str, String, &'static str)> {
    let head = "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\n";
    let mut laughs = format!("{head}a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..9 {
        let items = vec![format!("*a{}", i - 1); 9].join(", ");
        laughs.push_str(&format!("a{i}: &a{i} [{items}]\n"));
    }
    let keys: String = (0..200_000).map(|i| format!("k{i}: v\n")).collect();
    vec![
        (
            "nested",
            format!("{head}x: {}", "[".repeat(200 * 1024)),
            "more than 64 deep",
        ),
        ("laughs", laughs, "aliases"),
        (
            "huge",
            format!("{head}description: {}\n", "x".repeat(60 * 1024 * 1024)),
            "bytes; at most 1048576",
        ),
        ("keys", format!("{head}{keys}"), "Kptfile is refused"),
    ]
}

#[test]
fn hostile_kptfiles_are_refused_without_the_lifecycle_lock() {
    let (server, alice, _, carol) = start();
    let alices = clone(&server, &alice);
    let repo = server.repo_dir("demo");
    // Hold the repository's lifecycle lock, as a long publish would: a
    // hostile push is judged and refused all the same, since its content
    // is never read under the lock.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(repo.join("cadgate.lock"))
        .expect("open the lock");
    lock.lock().expect("take the lock");
    for (name, text, bound) in hostile_kptfiles() {
        alices.git_in("w", &["reset", "-q", "--hard", "origin/main"]);
        alices.commit_files("w", &[("app/Kptfile", text.as_bytes())], name);
        let mut child = alices
            .command(&[
                "-C",
                "w",
                "push",
                "origin",
                &format!("HEAD:refs/heads/drafts/app/{name}"),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn git push");
        // The push must finish while the lock is held. Should it wait for
        // the lock (the old behaviour), release it after a generous bound so
        // the test fails instead of hanging.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let mut waited_for_the_lock = false;
        while child.try_wait().expect("poll git push").is_none() {
            if std::time::Instant::now() > deadline && !waited_for_the_lock {
                waited_for_the_lock = true;
                lock.unlock().expect("release the lock");
            }
            std::thread::yield_now();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = child.wait_with_output().expect("git push output");
        assert!(
            !waited_for_the_lock,
            "{name}: the hostile push waited for the lifecycle lock"
        );
        assert!(
            !out.status.success(),
            "{name}: a hostile Kptfile was accepted"
        );
        let err = stderr(&out);
        assert!(
            err.contains("app/Kptfile is refused") && err.contains(bound),
            "{name}: {err}"
        );
    }
    lock.unlock().expect("release the lock");
    assert_eq!(drafts(&server), "");
    // Another author's push goes through once the lock is free.
    let carols = clone(&server, &carol);
    carols.commit_package("w", "web", &[], "web");
    assert!(pushed(&push(&carols, "HEAD:refs/heads/drafts/web/w1")));
    assert!(server_ref(&repo, "refs/heads/drafts/web/w1").is_some());
}
