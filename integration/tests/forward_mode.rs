//! Forward mode (contract §10): cadgate in front of a Git host it does not
//! own — Apache + `git http-backend` with no cadgate hooks — keeping a mirror,
//! forwarding what the lifecycle accepts with compare-and-swap, and never
//! overwriting what happened upstream.

use std::path::PathBuf;

use cadgate_integration::apache::Apache;
use cadgate_integration::api;
use cadgate_integration::porch::Porch;
use cadgate_integration::scenarios::{self, Lab, Transport, DIRECTORY, LAYOUTS, NESTED, ROOT};
use cadgate_integration::*;

/// Plain repositories on Apache, and cadgate replicas in front of them.
struct Forwarded {
    apache: Apache,
    replicas: Vec<Server>,
}

/// The user cadgate authenticates to the upstream as.
fn upstream_user() -> TestUser {
    TestUser::new("cadgate-forwarder")
}

impl Forwarded {
    fn start(replicas: usize) -> Self {
        let apache = Apache::new();
        let seed = GitClient::new();
        seed.git(&["init", "-q", "-b", "main", "seed"]);
        seed.commit_files("seed", &[("README.md", b"hosted upstream\n")], "initial");
        for layout in LAYOUTS {
            let repo = apache.root().join(format!("{}.git", layout.repository));
            seed.git(&[
                "init",
                "-q",
                "--bare",
                "-b",
                "main",
                &repo.display().to_string(),
            ]);
            seed.git(&[
                "-C",
                "seed",
                "push",
                "-q",
                &repo.display().to_string(),
                "main",
            ]);
        }
        apache.start(&[upstream_user()]);
        let credentials = tempfile::NamedTempFile::new().expect("credentials");
        let user = upstream_user();
        std::fs::write(
            credentials.path(),
            format!("{}:{}\n", user.name, user.token),
        )
        .expect("write");
        let (_, credentials) = credentials.keep().expect("keep");
        let base = apache.base();
        let config = scenarios::cadgate_config_with(|layout| {
            format!(
                "upstream = \"{base}/git/{}.git\"\nupstream_credentials = \"file:{}\"\n",
                layout.repository,
                credentials.display()
            )
        });
        let replicas = (0..replicas).map(|_| Server::start(&config)).collect();
        Self { apache, replicas }
    }

    fn upstream_url(&self, repository: &str) -> String {
        self.apache.url_as(&upstream_user(), repository)
    }
}

impl Transport for Forwarded {
    fn name(&self) -> String {
        "cadgate forwarding to Apache".into()
    }

    fn clone_as(&self, user: &str, repository: &str) -> GitClient {
        let client = GitClient::new();
        client.git(&[
            "clone",
            "-q",
            &self.replicas[0].url_as(&TestUser::new(user), repository),
            "w",
        ]);
        client
    }

    /// The upstream's repository: it must hold exactly what local mode would.
    fn repository_dir(&self, repository: &str) -> PathBuf {
        self.apache.root().join(format!("{repository}.git"))
    }
}

#[test]
fn every_transition_forwarded_at_the_root() {
    scenarios::run_all(&Forwarded::start(1), ROOT);
}

#[test]
fn every_transition_forwarded_nested_and_below_a_directory() {
    let host = Forwarded::start(1);
    scenarios::run_all(&host, NESTED);
    scenarios::run_all(&host, DIRECTORY);
}

#[test]
fn direct_upstream_changes_are_seen_and_never_overwritten() {
    let host = Forwarded::start(1);
    let lab = Lab::new(&host, ROOT, "direct");
    let f = lab.f();
    lab.release(&f, "one", "n: 1\n");
    // Someone commits to a draft branch directly on the upstream.
    let direct = GitClient::new();
    direct.git(&["clone", "-q", &host.upstream_url("root"), "d"]);
    let tip = direct.commit_package("d", &f, &[("data.yaml", b"n: direct\n")], "direct");
    direct.git(&[
        "-C",
        "d",
        "push",
        "-q",
        "origin",
        &format!("HEAD:refs/heads/drafts/{f}/direct"),
    ]);
    // The next fetch through cadgate sees it.
    let client = lab.client("alice");
    assert_eq!(
        client.git_in("w", &["rev-parse", &format!("origin/drafts/{f}/direct")]),
        tip
    );

    // A proposal, then the package changes on main directly upstream: the
    // publish is refused as stale and the direct change stays.
    lab.draft("alice", &f, "two", "n: 2\n");
    let proposal = lab.propose("alice", &f, "two");
    direct.git(&["-C", "d", "fetch", "-q", "origin"]);
    direct.git(&["-C", "d", "checkout", "-q", "--detach", "origin/main"]);
    direct.commit_files(
        "d",
        &[(&format!("{f}/data.yaml"), b"n: hotfix\n")],
        "hotfix on main",
    );
    direct.git(&["-C", "d", "push", "-q", "origin", "HEAD:main"]);
    let hotfix = direct.git_in("d", &["rev-parse", "HEAD"]);
    lab.client("bob");
    lab.refuse(
        "bob",
        &[&format!("+{proposal}:refs/heads/main")],
        "stale-proposal",
    );
    assert_eq!(lab.server_ref("refs/heads/main"), Some(hotfix));
}

#[test]
fn three_replicas_publish_thirty_packages_at_once() {
    let host = Forwarded::start(3);
    let lab = Lab::new(&host, ROOT, "many");
    let packages: Vec<String> = (0..30).map(|i| format!("p{i:02}")).collect();
    let mut proposals = Vec::new();
    for p in &packages {
        lab.draft("alice", p, "ws", &format!("p: {p}\n"));
        proposals.push(lab.propose("alice", p, "ws"));
    }
    let bob = TestUser::new("bob");
    let clients: Vec<GitClient> = host
        .replicas
        .iter()
        .map(|replica| {
            let client = GitClient::new();
            client.git(&["clone", "-q", &replica.url_as(&bob, "root"), "w"]);
            client
        })
        .collect();
    std::thread::scope(|scope| {
        for (i, proposal) in proposals.iter().enumerate() {
            let client = &clients[i % clients.len()];
            scope.spawn(move || {
                // A refusal because the upstream moved says to push again.
                for _ in 0..20 {
                    let out = client
                        .command(&[
                            "-C",
                            "w",
                            "push",
                            "origin",
                            &format!("+{proposal}:refs/heads/main"),
                        ])
                        .output()
                        .expect("push");
                    if out.status.success() {
                        return;
                    }
                    let err = stderr(&out);
                    assert!(err.contains("push again"), "{err}");
                }
                panic!("{proposal} never published");
            });
        }
    });
    let upstream = host.repository_dir("root");
    let tree = server_git(&upstream, &["ls-tree", "--name-only", "main"]);
    for p in &packages {
        assert!(
            tree.lines().any(|l| l == p),
            "{p} missing from the upstream main"
        );
        assert!(
            server_ref(&upstream, &format!("refs/tags/{p}/v1")).is_some(),
            "{p} has no v1"
        );
        assert!(
            server_ref(&upstream, &format!("refs/tags/{p}/v2")).is_none(),
            "{p} published twice"
        );
    }
    assert!(server_git(&upstream, &["for-each-ref", "refs/heads/proposed"]).is_empty());
    // Read your writes across replicas: every replica's published view has them all.
    for replica in &host.replicas {
        let view =
            stdout(&GitClient::new().git(&["ls-remote", &replica.url_as(&bob, "published/root")]));
        for p in &packages {
            assert!(
                view.contains(&format!("refs/tags/{p}/v1")),
                "{p}/v1 missing from a replica's view"
            );
        }
    }
}

#[test]
fn an_upstream_that_is_down_gets_a_clear_error_and_nothing_changes() {
    let host = Forwarded::start(1);
    let lab = Lab::new(&host, ROOT, "down");
    let f = lab.f();
    lab.draft("alice", &f, "ws", "n: 1\n");
    let proposal = lab.propose("alice", &f, "ws");
    lab.client("bob");
    let before = lab.refs();
    // Stop Apache; the push is judged and forwarded, and fails naming the upstream.
    host.apache.stop();
    let out = lab.push("bob", &[&format!("+{proposal}:refs/heads/main")]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("upstream"), "{err}");
    host.apache.restart();
    assert_eq!(lab.refs(), before, "the upstream changed while down");
    // Once it answers, the same push publishes.
    lab.publish("bob", &f, "ws");
    // The event log records what the upstream accepted, and only that.
    let log = std::fs::read_to_string(host.replicas[0].repo_dir("root").join("cadgate-events.log"))
        .expect("the mirror's event log");
    let kinds: Vec<String> = log
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).expect("a JSON event");
            format!("{} {}", event["seq"], event["type"])
        })
        .collect();
    assert_eq!(
        kinds,
        ["1 \"created\"", "2 \"proposed\"", "3 \"published\""]
    );
}

#[test]
fn fifteen_clients_racing_one_package_through_three_replicas_get_consecutive_revisions() {
    const CLIENTS: usize = 15;
    let host = Forwarded::start(3);
    // Self-approval is off: alice drafts and proposes, bob publishes.
    let (alice, bob) = (TestUser::new("alice"), TestUser::new("bob"));
    std::thread::scope(|scope| {
        for i in 0..CLIENTS {
            let replica = &host.replicas[(i * 7 + 1) % host.replicas.len()];
            let (url, approver) = (replica.url_as(&alice, "root"), replica.url_as(&bob, "root"));
            scope.spawn(move || {
                let client = GitClient::new();
                client.git(&["clone", "-q", &url, "w"]);
                client.git(&["-C", "w", "remote", "add", "approver", &approver]);
                let draft = format!("refs/heads/drafts/race/ws{i}");
                let proposed = format!("refs/heads/proposed/race/ws{i}");
                let push = |args: &[&str]| {
                    let mut full = vec!["-C", "w", "push", "origin"];
                    full.extend_from_slice(args);
                    client.command(&full).output().expect("push")
                };
                for attempt in 0.. {
                    assert!(attempt < 100, "client {i} never published");
                    client.git_in("w", &["fetch", "-q", "--prune", "origin"]);
                    client.git_in("w", &["checkout", "-q", "--detach", "origin/main"]);
                    let tip = client.commit_package(
                        "w",
                        "race",
                        &[("data.yaml", format!("client: {i}\n").as_bytes())],
                        "mine",
                    );
                    if !push(&["--force", &format!("HEAD:{draft}")])
                        .status
                        .success()
                        || !push(&[&format!("{tip}:{proposed}")]).status.success()
                    {
                        let _ = push(&[&format!(":{proposed}")]);
                        continue;
                    }
                    let out = client
                        .command(&[
                            "-C",
                            "w",
                            "push",
                            "approver",
                            &format!("+{tip}:refs/heads/main"),
                        ])
                        .output()
                        .expect("push");
                    if out.status.success() {
                        return;
                    }
                    let err = stderr(&out);
                    assert!(
                        err.contains("stale-proposal") || err.contains("push again"),
                        "client {i}: unexpected refusal: {err}"
                    );
                    // Withdraw and start again from the new branch.
                    let _ = push(&[&format!(":{proposed}")]);
                }
            });
        }
    });
    let upstream = host.repository_dir("root");
    assert_consecutive_revisions(&upstream, "race", 1, CLIENTS);
}

#[test]
fn an_upstream_that_fails_the_forwarded_push_changes_nothing_and_the_retry_lands() {
    let host = Forwarded::start(1);
    let lab = Lab::new(&host, ROOT, "midway");
    let f = lab.f();
    lab.draft("alice", &f, "ws", "n: 1\n");
    let proposal = lab.propose("alice", &f, "ws");
    lab.client("bob");
    let before = lab.refs();
    // The upstream still answers fetches (the refresh before the push
    // passes) but fails the push cadgate forwards after judging it.
    let upstream = host.repository_dir("root");
    server_git(&upstream, &["config", "http.receivepack", "false"]);
    let out = lab.push("bob", &[&format!("+{proposal}:refs/heads/main")]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("the upstream http://127.0.0.1"), "{err}");
    assert!(
        !err.contains(&upstream_user().token),
        "the credentials leaked: {err}"
    );
    assert_eq!(lab.refs(), before, "the upstream changed");
    // Nothing landed in the mirror either: the published view is unchanged.
    let view = stdout(&GitClient::new().git(&[
        "ls-remote",
        &host.replicas[0].url_as(&TestUser::new("rita"), "published/root"),
    ]));
    assert!(!view.contains(&format!("refs/tags/{f}/")), "{view}");
    server_git(&upstream, &["config", "--unset", "http.receivepack"]);
    assert_eq!(lab.publish("bob", &f, "ws"), 1);
}

/// Push `refspec` as `user` through the replica while the upstream stops in
/// the middle of the push cadgate forwards: a pre-receive hook on the
/// upstream holds the push there while the test stops Apache, and with
/// `kill_receive` also kills the upstream's receive-pack, so the push never
/// lands there; without it the orphaned receive-pack finishes after Apache
/// is gone (the upstream took the push, but nobody heard the answer).
fn push_while_the_upstream_dies(
    host: &Forwarded,
    lab: &Lab,
    user: &str,
    refspec: &str,
    kill_receive: bool,
) -> std::process::Output {
    let upstream = host.repository_dir(ROOT.repository);
    let mark = host.apache.scratch().join("in-pre-receive");
    let hook = upstream.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho $PPID > {}\nsleep 3\n", mark.display()),
    )
    .expect("write the upstream's hook");
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    host.apache.hand_over();
    let mut push = lab
        .client(user)
        .command(&["-C", "w", "push", "origin", refspec]);
    let pushing = std::thread::spawn(move || push.output().expect("run git push"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !mark.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the push never reached the upstream"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    let receive = std::fs::read_to_string(&mark).expect("mark");
    if kill_receive {
        let killed = std::process::Command::new("kill")
            .args(["-9", receive.trim()])
            .output()
            .expect("kill");
        assert!(
            killed.status.success(),
            "the upstream's receive-pack was gone"
        );
    }
    host.apache.stop();
    let out = pushing.join().expect("push thread");
    // Let an orphaned receive-pack finish before the host comes back.
    std::thread::sleep(std::time::Duration::from_secs(4));
    std::fs::remove_file(&hook).expect("remove the hook");
    std::fs::remove_file(&mark).expect("remove the mark");
    host.apache.restart();
    out
}

#[test]
fn an_upstream_that_dies_mid_push_before_taking_it_changes_nothing_and_the_retry_lands() {
    let host = Forwarded::start(1);
    let lab = Lab::new(&host, ROOT, "dies-before");
    let f = lab.f();
    lab.draft("alice", &f, "ws", "n: 1\n");
    let proposal = lab.propose("alice", &f, "ws");
    let before = lab.refs();
    let out = push_while_the_upstream_dies(
        &host,
        &lab,
        "bob",
        &format!("+{proposal}:refs/heads/main"),
        true,
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("the upstream http://127.0.0.1"), "{err}");
    assert_eq!(lab.refs(), before, "the upstream changed");
    assert_eq!(lab.publish("bob", &f, "ws"), 1);
}

#[test]
fn an_upstream_that_dies_mid_push_after_taking_it_is_followed_not_redone() {
    let host = Forwarded::start(1);
    let lab = Lab::new(&host, ROOT, "dies-after");
    let f = lab.f();
    lab.draft("alice", &f, "ws", "n: 1\n");
    let proposal = lab.propose("alice", &f, "ws");
    let publish = format!("+{proposal}:refs/heads/main");
    let out = push_while_the_upstream_dies(&host, &lab, "bob", &publish, false);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("stopped answering during the push") && err.contains("may have landed"),
        "the client must not be told nothing changed: {err}"
    );
    // The orphaned receive-pack finished: the upstream took the publish.
    let tag = format!("refs/tags/{f}/v1");
    let published = lab.server_ref(&tag).expect("the upstream took the publish");
    assert_eq!(lab.server_ref("refs/heads/main"), Some(published.clone()));

    // Through cadgate, the next fetch shows what the upstream holds, and so
    // does the published view.
    let client = lab.client("bob");
    assert_eq!(
        client.git_in("w", &["rev-parse", "origin/main"]).trim(),
        published
    );
    assert_eq!(client.git_in("w", &["rev-parse", &tag]).trim(), published);
    let view = stdout(&GitClient::new().git(&[
        "ls-remote",
        &host.replicas[0].url_as(&TestUser::new("rita"), "published/root"),
    ]));
    assert!(view.contains(&format!("{published}\t{tag}")), "{view}");

    // Retrying the publish says it is done and changes nothing.
    let before = lab.refs();
    let retry = lab.push("bob", &[&publish]);
    let err = stderr(&retry);
    assert!(!retry.status.success(), "{err}");
    assert!(err.contains("already part of refs/heads/main"), "{err}");
    assert_eq!(lab.refs(), before);
    // And the package's next revision is v2.
    lab.draft("alice", &f, "ws2", "n: 2\n");
    lab.propose("alice", &f, "ws2");
    assert_eq!(lab.publish("bob", &f, "ws2"), 2);
}

#[test]
fn an_upstream_that_refuses_or_fails_gets_a_clear_message_and_fetches_keep_working() {
    let host = Forwarded::start(1);
    let lab = Lab::new(&host, ROOT, "refusing");
    let f = lab.f();
    lab.draft("alice", &f, "ws", "n: 1\n");
    let before = lab.refs();
    let user = upstream_user();

    // 401: the host no longer takes cadgate's credentials. Fetches are
    // served from the mirror meanwhile; pushes need the upstream.
    host.apache.set_password(&user.name, "a-rotated-token");
    lab.client("bob");
    lab.package_commit("alice", &f, "n: 2\n");
    let out = lab.push("alice", &[&format!("+HEAD:refs/heads/drafts/{f}/ws")]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("the upstream http://127.0.0.1")
            && err.contains("refused cadgate's credentials (HTTP 401)")
            && err.contains("upstream_credentials"),
        "{err}"
    );
    assert!(!err.contains(&user.token), "the credentials leaked: {err}");
    host.apache.set_password(&user.name, &user.token);

    // The repository is gone from the host (404).
    let upstream = host.repository_dir(ROOT.repository);
    let away = upstream.with_extension("away");
    std::fs::rename(&upstream, &away).expect("move away");
    let out = lab.push("alice", &[&format!("+HEAD:refs/heads/drafts/{f}/ws")]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("the upstream http://127.0.0.1") && err.contains("not found"),
        "{err}"
    );
    std::fs::rename(&away, &upstream).expect("move back");
    assert_eq!(lab.refs(), before, "the upstream changed");

    // Once the host is right again, the same push lands.
    lab.accept(
        "alice",
        &[&format!("+HEAD:refs/heads/drafts/{f}/ws")],
        &format!("saved draft {f} workspace ws"),
    );
}

/// M3 in forward mode: a package committed directly on the upstream's
/// branch is listed as Porch's placeholder, and Porch's removal of it
/// (`deletionProposed/F/main`, then the `Delete F` commit with the
/// marker's deletion: porch pkg/externalrepo/git/git.go 1741–1748,
/// 1318–1365, 638–641) is forwarded upstream as one step.
#[test]
fn porch_removes_a_package_from_the_upstreams_branch_through_cadgate() {
    let host = Forwarded::start(1);
    let direct = GitClient::new();
    direct.git(&["clone", "-q", &host.upstream_url("root"), "d"]);
    direct.commit_package("d", "legacy", &[("data.yaml", b"n: 1\n")], "legacy");
    direct.git(&["-C", "d", "push", "-q", "origin", "HEAD:main"]);
    let replica = &host.replicas[0];
    let items = api::revisions(replica, &TestUser::new("rita"), "root", "package=legacy");
    assert_eq!(
        (
            items.len(),
            items[0]["revision"].as_i64(),
            items[0]["placeholder"].as_bool()
        ),
        (1, Some(-1), Some(true)),
        "{items:?}"
    );
    let alice = Porch::new(&replica.url_as(&TestUser::new("alice"), "root"), "main");
    let bob = Porch::new(&replica.url_as(&TestUser::new("bob"), "root"), "main");
    let out = alice.propose_delete_placeholder("legacy");
    assert!(out.status.success(), "{}", stderr(&out));
    let (out, delete) = bob.delete_placeholder("legacy");
    assert!(out.status.success(), "{}", stderr(&out));
    let upstream = host.repository_dir("root");
    assert_eq!(server_ref(&upstream, "refs/heads/main"), Some(delete));
    assert_eq!(
        server_ref(&upstream, "refs/heads/deletionProposed/legacy/main"),
        None
    );
    assert!(api::revisions(replica, &TestUser::new("rita"), "root", "package=legacy").is_empty());
}

/// Forward mode serves the mirror's ref lists like any view: compressed
/// when the client asks and the list is long (docs/limits.md, "Compressed
/// answers"), identical once decoded.
#[test]
fn forwarded_ref_lists_are_compressed_when_asked() {
    use std::io::Read as _;
    let host = Forwarded::start(1);
    let lab = Lab::new(&host, ROOT, "gzip");
    let f = lab.f();
    lab.release(&f, "one", "n: 1\n");
    // Forty draft branches pushed directly upstream: a long list to forward.
    let direct = GitClient::new();
    direct.git(&["clone", "-q", &host.upstream_url("root"), "d"]);
    direct.commit_package("d", &f, &[("data.yaml", b"n: direct\n")], "direct");
    let drafts: Vec<String> = (0..40)
        .map(|i| format!("refs/heads/drafts/{f}/ws{i:02}"))
        .collect();
    let refspecs: Vec<String> = drafts.iter().map(|r| format!("HEAD:{r}")).collect();
    let mut push = vec!["-C", "d", "push", "-q", "origin"];
    push.extend(refspecs.iter().map(String::as_str));
    direct.git(&push);

    let server = &host.replicas[0];
    let alice = TestUser::new("alice");
    let listed = stdout(&GitClient::new().git(&["ls-remote", &server.url_as(&alice, "root")]));
    let auth = basic(&alice);
    let path = "/root.git/info/refs?service=git-upload-pack";
    let plain = server.request("GET", path, &[("Authorization", &auth)], b"");
    let gzip = server.request(
        "GET",
        path,
        &[("Authorization", &auth), ("Accept-Encoding", "gzip")],
        b"",
    );
    assert_eq!((plain.status, gzip.status), (200, 200), "{}", plain.text());
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));
    assert_eq!(gzip.header("vary"), Some("Accept-Encoding"));
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    assert!(
        gzip.body.len() < plain.body.len(),
        "{} compressed bytes, {} plain",
        gzip.body.len(),
        plain.body.len()
    );
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(gzip.body.as_slice())
        .read_to_end(&mut decoded)
        .expect("gzip");
    assert_eq!(decoded, plain.body);
    for draft in &drafts {
        assert!(
            plain.text().contains(draft.as_str()),
            "{draft} not advertised"
        );
        assert!(listed.contains(draft.as_str()), "{draft} not listed by git");
    }
}
