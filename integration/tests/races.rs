//! Concurrent publishes through the server (issue 3, acceptance 4): revision
//! numbers are allocated atomically and no publish overwrites another.

use cadgate_integration::*;

/// Many clients at once: a pool and queue large enough that these tests
/// measure revision allocation, not 503s from the git process pool (pushes
/// waiting for the repository's lifecycle lock hold their git process).
fn config() -> String {
    format!(
        "[server]\nmax_git_processes = 256\nqueue_timeout_secs = 300\n\n[policy]\nself_approval = true\n\n[[repository]]\nname = \"r\"\n\n{}",
        TestUser::new("admin").config(&["admin"], &[])
    )
}

/// Commit `package` on a new local branch from origin/main; returns the commit.
fn package_branch(client: &GitClient, branch: &str, package: &str, content: &str) -> String {
    client.git_in("w", &["checkout", "-q", "-B", branch, "origin/main"]);
    client.commit_package("w", package, &[("data.yaml", content.as_bytes())], package)
}

#[test]
fn fifty_packages_published_at_once_each_get_v1_and_all_land() {
    let server = Server::start(&config());
    let admin = TestUser::new("admin");
    let url = server.url_as(&admin, "r");
    let author = GitClient::new();
    author.git(&["clone", "-q", &url, "w"]);
    let mut drafts = Vec::new();
    let mut proposals = Vec::new();
    let mut tips = Vec::new();
    for i in 0..50 {
        let package = format!("p{i:02}");
        tips.push(package_branch(
            &author,
            &package,
            &package,
            &format!("n: {i}\n"),
        ));
        drafts.push(format!("{package}:refs/heads/drafts/{package}/ws"));
        proposals.push(format!("{package}:refs/heads/proposed/{package}/ws"));
    }
    let mut push = vec!["-C", "w", "push", "-q", "--atomic", "origin"];
    push.extend(drafts.iter().map(String::as_str));
    author.git(&push);
    let mut push = vec!["-C", "w", "push", "-q", "--atomic", "origin"];
    push.extend(proposals.iter().map(String::as_str));
    author.git(&push);

    let source = author.path("w").display().to_string();
    std::thread::scope(|scope| {
        for (i, tip) in tips.iter().enumerate() {
            let (url, source) = (url.clone(), source.clone());
            scope.spawn(move || {
                let approver = GitClient::new();
                approver.git(&["init", "-q", "a"]);
                approver.git_in("a", &["fetch", "-q", &source, tip]);
                let out =
                    approver.git(&["-C", "a", "push", &url, &format!("+{tip}:refs/heads/main")]);
                assert!(
                    stderr(&out).contains(&format!("published p{i:02} v1")),
                    "{}",
                    stderr(&out)
                );
            });
        }
    });
    let repo = server.repo_dir("r");
    let tree = server_git(&repo, &["ls-tree", "--name-only", "main"]);
    for i in 0..50 {
        assert!(
            tree.lines().any(|l| l == format!("p{i:02}")),
            "p{i:02} missing from main"
        );
        let tag = server_git(
            &repo,
            &["rev-parse", &format!("refs/tags/p{i:02}/v1^{{commit}}")],
        );
        assert_eq!(
            server_git(&repo, &["show", &format!("{tag}:p{i:02}/data.yaml")]),
            format!("n: {i}")
        );
    }
    let tags = server_git(&repo, &["tag", "--list"]);
    assert_eq!(tags.lines().count(), 50, "{tags}");
    assert!(server_git(
        &repo,
        &["for-each-ref", "refs/heads/proposed", "refs/heads/drafts"]
    )
    .is_empty());
    server_git(&repo, &["fsck", "--no-progress", "--no-dangling"]);
}

#[test]
fn twenty_clients_racing_one_package_get_consecutive_revisions() {
    let server = Server::start(&config());
    let admin = TestUser::new("admin");
    let url = server.url_as(&admin, "r");
    const CLIENTS: usize = 20;
    std::thread::scope(|scope| {
        for i in 0..CLIENTS {
            let url = url.clone();
            scope.spawn(move || {
                let client = GitClient::new();
                client.git(&["clone", "-q", &url, "w"]);
                let content = format!("client: {i}\n");
                let workspace = format!("ws{i}");
                let draft = format!("refs/heads/drafts/pkg/{workspace}");
                let proposed = format!("refs/heads/proposed/pkg/{workspace}");
                for attempt in 0.. {
                    assert!(attempt < 200, "client {i} never published");
                    client.git_in("w", &["fetch", "-q", "origin"]);
                    let tip = package_branch(&client, "mine", "pkg", &content);
                    client.git_in(
                        "w",
                        &["push", "-q", "--force", "origin", &format!("HEAD:{draft}")],
                    );
                    client.git_in("w", &["push", "-q", "origin", &format!("{tip}:{proposed}")]);
                    let out = client
                        .command(&[
                            "-C",
                            "w",
                            "push",
                            "origin",
                            &format!("+{tip}:refs/heads/main"),
                        ])
                        .output()
                        .expect("push");
                    if out.status.success() {
                        return;
                    }
                    let err = stderr(&out);
                    assert!(
                        err.contains("stale-proposal"),
                        "client {i}: unexpected refusal: {err}"
                    );
                    // Stale: withdraw the proposal and start again from the new branch.
                    client.git_in("w", &["push", "-q", "origin", &format!(":{proposed}")]);
                }
            });
        }
    });
    let repo = server.repo_dir("r");
    assert_consecutive_revisions(&repo, "pkg", 1, CLIENTS);
}
