//! Server-side fetches (issue 12, findings 1, 2 and 10): clone and upgrade
//! from a Git URL a user or a Kptfile named.

use std::net::TcpListener;
use std::path::Path;

use cadgate_integration::api::post;
use cadgate_integration::scenarios::{self, CadgateServer, Lab, ROOT};
use cadgate_integration::*;

/// The scenario config (published views anonymous) with `server` lines.
fn config(server: &str) -> String {
    format!(
        "[server]\n{server}\n\n{}",
        scenarios::cadgate_config_with(|_| "published_anonymous = true\n".to_string())
    )
}

fn start(server: &str) -> CadgateServer {
    CadgateServer {
        server: Server::start(&config(server)),
    }
}

/// A clone request for package `package` from `url`'s `reference`.
fn clone_body(package: &str, url: &str, reference: &str, directory: &str) -> String {
    serde_json::json!({
        "packageName": package,
        "workspaceName": "ws",
        "clone": {"git": {"repo": url, "ref": reference, "directory": directory}},
    })
    .to_string()
}

fn clone_from(
    host: &Server,
    package: &str,
    url: &str,
    reference: &str,
    directory: &str,
) -> (u16, serde_json::Value) {
    post(
        host,
        &TestUser::new("alice"),
        "/api/v1/repositories/root/revisions",
        &clone_body(package, url, reference, directory),
    )
}

fn error_of(json: &serde_json::Value) -> String {
    json["error"].as_str().unwrap_or_default().to_string()
}

/// An upstream cadgate with package `F` published as v1; returns it and F.
fn upstream_with_release(slug: &str) -> (CadgateServer, String) {
    let upstream = start("");
    let f = {
        let lab = Lab::new(&upstream, ROOT, slug);
        let f = lab.f();
        lab.release(&f, "one", "n: upstream\n");
        f
    };
    (upstream, f)
}

// ---- finding 1: remote command execution through an upgrade -------------

#[test]
fn an_upgrade_whose_kptfile_names_an_option_as_its_upstream_runs_nothing() {
    let host = start("");
    let lab = Lab::new(&host, ROOT, "rce");
    let f = lab.f();
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("owned");
    let hostile = format!("--upload-pack=touch {};", marker.display());
    let name = f.rsplit('/').next().unwrap_or(&f);
    let kptfile = format!(
        "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: {name}\nupstream:\n  type: git\n  git:\n    repo: '{hostile}'\n    directory: /up\n    ref: up/v1\nupstreamLock:\n  type: git\n  git:\n    repo: '{hostile}'\n    directory: /up\n    ref: up/v1\n    commit: {}\n",
        "0".repeat(40)
    );
    lab.client("alice");
    lab.commit(
        "alice",
        Some("origin/main"),
        &[(format!("{f}/Kptfile"), Some(kptfile))],
    );
    lab.accept(
        "alice",
        &[&format!("+HEAD:refs/heads/drafts/{f}/ws")],
        "saved draft",
    );
    lab.propose("alice", &f, "ws");
    lab.publish("bob", &f, "ws");
    let before = server_git(&host.server.repo_dir("root"), &["for-each-ref"]);

    let (status, json) = post(
        &host.server,
        &TestUser::new("alice"),
        "/api/v1/repositories/root/revisions",
        &serde_json::json!({"packageName": f, "workspaceName": "up", "upgrade": {}}).to_string(),
    );
    assert!(
        !marker.exists(),
        "the Kptfile's upstream URL ran a command on the server"
    );
    assert_eq!(
        (status, json["code"].as_str()),
        (422, Some("invalid")),
        "{json}"
    );
    assert!(
        error_of(&json).contains("must not start with '-'"),
        "{json}"
    );
    assert_eq!(
        server_git(&host.server.repo_dir("root"), &["for-each-ref"]),
        before
    );
}

// ---- finding 2: reading a repository through the server ------------------

/// A `.gitconfig` for the server's HOME whose credential helper answers
/// with `user`'s token and leaves `marker` behind when asked.
fn operator_home(home: &Path, marker: &Path, user: &TestUser) {
    std::fs::write(
        home.join(".gitconfig"),
        format!(
            "[credential]\n\thelper = \"!f() {{ touch '{}'; echo username={}; echo password={}; }}; f\"\n",
            marker.display(),
            user.name,
            user.token
        ),
    )
    .expect("write .gitconfig");
}

#[test]
fn a_clone_url_naming_this_server_is_authorized_as_the_caller() {
    // alice authors `root` and has no role on `secret`; bob approves both.
    // The operator's HOME holds bob's token in a credential helper.
    let alice = TestUser::new("alice");
    let bob = TestUser::new("bob");
    let config = format!(
        "[[repository]]\nname = \"root\"\n\n[[repository]]\nname = \"secret\"\n\n{}\n{}",
        alice.config(&["author"], &["root"]),
        bob.config(&["approver"], &[]),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("helper-ran");
    operator_home(dir.path(), &marker, &bob);
    let home = dir.path().display().to_string();
    let server = Server::start_with_env(&config, &[("HOME", &home)]);
    let (status, made) = post(
        &server,
        &bob,
        "/api/v1/repositories/secret/revisions",
        r#"{"packageName":"hidden","workspaceName":"ws","init":{"description":"the secret draft"}}"#,
    );
    assert_eq!(status, 201, "{made}");
    let before = server_git(&server.repo_dir("root"), &["for-each-ref"]);
    let port = server
        .addr()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    for url in [
        format!("{}/secret.git", server.base()),
        format!(
            "{}/secret.git",
            server.base().replace("127.0.0.1", "localhost")
        ),
        format!("{}/published/secret.git", server.base()),
        format!("http://alice:alice-token@127.0.0.1:{port}/secret"),
    ] {
        let (status, json) = post(
            &server,
            &alice,
            "/api/v1/repositories/root/revisions",
            &clone_body("stolen", &url, "drafts/hidden/ws", "hidden"),
        );
        assert_eq!(
            (status, json["code"].as_str()),
            // No role there: the same 404 as a repository that does not
            // exist (docs/limits.md, "What answers do not tell").
            (404, Some("forbidden")),
            "{url}: {json}"
        );
        // The answer a direct read gets, which names nothing.
        assert!(
            error_of(&json).contains("not registered on this server, or you have no role"),
            "{json}"
        );
    }
    assert_eq!(
        server_git(&server.repo_dir("root"), &["for-each-ref"]),
        before,
        "something was copied"
    );
    assert!(
        !marker.exists(),
        "the operator's credential helper was asked"
    );
    // bob, who may read `secret`, gets the draft through the same URL.
    let (status, made) = post(
        &server,
        &bob,
        "/api/v1/repositories/root/revisions",
        &clone_body(
            "copied",
            &format!("{}/secret.git", server.base()),
            "drafts/hidden/ws",
            "hidden",
        ),
    );
    assert_eq!(status, 201, "{made}");
}

#[test]
fn loopback_and_private_addresses_are_refused_unless_an_admin_allows_them() {
    let (upstream, f) = upstream_with_release("private");
    let up = upstream.server.base().to_string();
    let host = start("");
    let before = server_git(&host.server.repo_dir("root"), &["for-each-ref"]);
    for url in [
        format!("{up}/published/root.git"),
        format!(
            "{}/published/root.git",
            up.replace("127.0.0.1", "localhost")
        ),
        format!("{}/published/root.git", up.replace("127.0.0.1", "[::1]")),
        "http://10.255.255.1/x.git".to_string(),
        "http://169.254.169.254/latest/meta-data".to_string(),
        "http://0.0.0.0:1/x.git".to_string(),
        "http://[::ffff:127.0.0.1]:1/x.git".to_string(),
    ] {
        let (status, json) = clone_from(&host.server, "inside", &url, &format!("{f}/v1"), &f);
        assert_eq!(status, 422, "{url}: {json}");
        assert!(
            error_of(&json).contains("fetch_allow") || error_of(&json).contains("cannot fetch"),
            "{url}: {json}"
        );
    }
    assert_eq!(
        server_git(&host.server.repo_dir("root"), &["for-each-ref"]),
        before
    );
    // Listed by an admin, the same upstream is fetched.
    let allowed = start("fetch_allow = [\"127.0.0.0/8\"]");
    let (status, made) = clone_from(
        &allowed.server,
        "inside",
        &format!("{up}/published/root.git"),
        &format!("{f}/v1"),
        &f,
    );
    assert_eq!(status, 201, "{made}");
}

#[test]
fn the_servers_own_credential_helper_is_never_asked() {
    // The upstream's views need credentials (not anonymous).
    let upstream = CadgateServer::start("");
    let f = {
        let lab = Lab::new(&upstream, ROOT, "creds");
        let f = lab.f();
        lab.release(&f, "one", "n: upstream\n");
        f
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("helper-ran");
    operator_home(dir.path(), &marker, &TestUser::new("ada"));
    let home = dir.path().display().to_string();
    let host = Server::start_with_env(&config("fetch_allow = [\"127.0.0.1\"]"), &[("HOME", &home)]);
    let (status, json) = clone_from(
        &host,
        "borrowed",
        &upstream.server.url("published/root"),
        &format!("{f}/v1"),
        &f,
    );
    assert_eq!(status, 422, "{json}");
    assert_eq!(
        error_of(&json),
        format!("cannot fetch {}", upstream.server.url("published/root"))
    );
    assert!(!marker.exists(), "the server's credential helper was asked");
    assert!(server_ref(&host.repo_dir("root"), "refs/heads/drafts/borrowed/ws").is_none());
    // With the user's own credentials in the URL it works.
    let (status, made) = clone_from(
        &host,
        "borrowed",
        &upstream
            .server
            .url_as(&TestUser::new("rita"), "published/root"),
        &format!("{f}/v1"),
        &f,
    );
    assert_eq!(status, 201, "{made}");
    assert!(!marker.exists(), "the server's credential helper was asked");
}

// ---- finding 10: bounds and checks --------------------------------------

#[test]
fn a_tarpit_upstream_times_out_frees_its_slot_and_looks_like_a_closed_port() {
    // Accepts connections and never answers.
    let tarpit = TcpListener::bind("127.0.0.1:0").expect("bind");
    let tarpit_port = tarpit.local_addr().expect("addr").port();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        tarpit.set_nonblocking(true).expect("nonblocking");
        let mut held = Vec::new();
        while stopped.try_recv().is_err() {
            match tarpit.accept() {
                Ok((socket, _)) => held.push(socket),
                Err(_) => std::thread::yield_now(),
            }
        }
    });
    let closed_port = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr").port()
    };
    // One git slot, so a slot the tarpit kept would refuse the next clone.
    let host = start(
        "fetch_allow = [\"127.0.0.1\"]\nfetch_timeout_secs = 2\nmax_git_processes = 1\nqueue_timeout_secs = 0",
    );
    let answers: Vec<String> = [tarpit_port, closed_port]
        .iter()
        .map(|port| {
            let url = format!("http://127.0.0.1:{port}/x.git");
            let (status, json) = clone_from(&host.server, "pit", &url, "main", "x");
            assert_eq!(status, 422, "{json}");
            error_of(&json).replace(&port.to_string(), "PORT")
        })
        .collect();
    let _ = stop.send(());
    let _ = holder.join();
    assert_eq!(answers[0], "cannot fetch http://127.0.0.1:PORT/x.git");
    assert_eq!(answers[0], answers[1], "a tarpit and a closed port differ");
    // The slot is free again: a clone through the server works.
    let client = GitClient::new();
    client.git(&[
        "clone",
        "-q",
        &host.server.url_as(&TestUser::new("rita"), "root"),
        "w",
    ]);
}

#[test]
fn a_clone_from_a_url_leaves_the_served_repository_unshallow_and_without_the_upstream_history() {
    let (upstream, f) = upstream_with_release("shallow");
    let upstream_commit = server_ref(
        &upstream.server.repo_dir("root"),
        &format!("refs/tags/{f}/v1"),
    )
    .expect("v1");
    let host = start("fetch_allow = [\"127.0.0.1\"]");
    let (status, made) = clone_from(
        &host.server,
        "copy",
        &upstream.server.url("published/root"),
        &format!("{f}/v1"),
        &f,
    );
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        made["upstreamLock"]["git"]["commit"],
        upstream_commit.as_str()
    );
    let repo = host.server.repo_dir("root");
    assert_eq!(
        server_git(&repo, &["rev-parse", "--is-shallow-repository"]),
        "false"
    );
    assert!(!repo.join("shallow").exists());
    // Only the package's files came in, not the upstream's commit.
    let present = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(&repo)
        .args(["cat-file", "-e", &upstream_commit])
        .status()
        .expect("git");
    assert!(!present.success(), "the upstream commit was copied in");
    let tip = server_ref(&repo, "refs/heads/drafts/copy/ws").expect("draft");
    assert_eq!(
        server_git(&repo, &["show", &format!("{tip}:copy/data.yaml")]),
        "n: upstream"
    );
    // The scratch repository is gone.
    let scratch = host.server.data_dir().join(".scratch");
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "scratch left behind: {left:?}");
}

/// Write `entries` (path → content) as the tree of a new commit on branch
/// `branch` of the bare repository `repo`, with plumbing (so names git's
/// porcelain refuses can be made).
fn craft(repo: &Path, branch: &str, entries: &[(&str, &str)]) {
    let git = |args: &[&str], input: Option<&str>| -> String {
        use std::io::Write;
        let mut child = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(repo)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("git");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(input.unwrap_or_default().as_bytes())
            .expect("write");
        drop(stdin);
        let out = child.wait_with_output().expect("git");
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // pkg/<name> for each entry, one level deep.
    let mut lines = String::new();
    for (name, content) in entries {
        let blob = git(&["hash-object", "-w", "--stdin"], Some(content));
        lines.push_str(&format!("100644 blob {blob}\t{name}\n"));
    }
    let package = git(&["mktree"], Some(&lines));
    let root = git(&["mktree"], Some(&format!("040000 tree {package}\tpkg\n")));
    let commit = git(&["commit-tree", &root, "-m", "crafted"], None);
    git(
        &["update-ref", &format!("refs/heads/{branch}"), &commit],
        None,
    );
}

#[test]
fn cloned_content_git_refuses_is_refused_with_422() {
    let upstream = start("");
    let repo = upstream.server.repo_dir("root");
    let kptfile = kptfile("pkg");
    let cases: &[(&str, (&str, &str))] = &[
        (
            "gitmodules",
            (
                ".gitmodules",
                "[submodule \"x\"]\n\tpath = x\n\turl = --upload-pack=touch /tmp/owned;\n",
            ),
        ),
        ("dotgit", (".git", "x\n")),
        ("dotgit-upper", (".GIT", "x\n")),
        ("dotgit-short", ("GIT~1", "x\n")),
        ("dotgit-ntfs", (".git. ", "x\n")),
    ];
    for (branch, entry) in cases {
        craft(&repo, branch, &[("Kptfile", &kptfile), *entry]);
    }
    let host = start("fetch_allow = [\"127.0.0.1\"]");
    let before = server_git(&host.server.repo_dir("root"), &["for-each-ref"]);
    for (branch, (name, _)) in cases {
        let (status, json) = clone_from(
            &host.server,
            "evil",
            &upstream.server.url_as(&TestUser::new("rita"), "root"),
            &format!("refs/heads/{branch}"),
            "pkg",
        );
        assert_eq!(
            (status, json["code"].as_str()),
            (422, Some("invalid")),
            "{name}: {json}"
        );
        // Refused for what it holds, not because it could not be fetched.
        let why = if *branch == "gitmodules" {
            "gitmodulesUrl"
        } else {
            "hasDotgit"
        };
        assert!(error_of(&json).contains(why), "{name}: {json}");
    }
    assert_eq!(
        server_git(&host.server.repo_dir("root"), &["for-each-ref"]),
        before
    );
}
