//! M3 — Porch deletes a package from the branch through its placeholder
//! revision, against the server (the lifecycle of the other steps runs in
//! every mode in the parent module).

use cadgate_integration::api;
use cadgate_integration::porch::Porch;
use cadgate_integration::*;

/// Porch's service account is its own user; it proposes and approves its
/// own revisions, so the repository allows self-approval.
fn config() -> String {
    format!(
        "[policy]\nself_approval = true\n\n[[repository]]\nname = \"r\"\n\n{}{}",
        TestUser::new("porch").config(&["approver"], &[]),
        TestUser::new("dev").config(&["author"], &[]),
    )
}

fn output(out: &std::process::Output) -> String {
    format!("{}\n{}", stdout(out), stderr(out))
}

/// Packages Porch (or anyone before cadgate guarded the repository) put on
/// the branch without publishing them through the lifecycle: committed to
/// `main` behind the hooks' back, as in Porch's own repositories.
fn seed_branch(server: &Server, files: &[(&str, &[u8])]) -> String {
    let repo = server.repo_dir("r");
    let client = GitClient::new();
    client.git(&[
        "clone",
        "-q",
        &server.url_as(&TestUser::new("porch"), "r"),
        "seed",
    ]);
    let commit = client.commit_files("seed", files, "packages from before");
    let path = client.path("seed");
    server_git(
        &repo,
        &[
            "fetch",
            "-q",
            &path.to_string_lossy(),
            "+refs/heads/main:refs/heads/main",
        ],
    );
    commit
}

/// The API's revisions of package `package` of repository `r`.
fn listed(server: &Server, package: &str) -> Vec<serde_json::Value> {
    api::revisions(
        server,
        &TestUser::new("porch"),
        "r",
        &format!("package={package}"),
    )
}

/// M3 — Porch deletes a package from the branch through its placeholder
/// revision (revision −1, workspace `main`): propose with
/// `deletionProposed/F/main` at the branch tip it listed (git.go 1741–1748,
/// ref.go 129–135), then one non-atomic push of a `Delete F` commit on the
/// branch and the marker's deletion (git.go 638–641, 1318–1365,
/// 1386–1398). cadgate judges both as lifecycle steps with the roles of a
/// deletion, refuses while the package has published revisions (the branch
/// holds their latest) or while another package's upstreamLock follows it
/// on the branch, and refuses a Delete commit that removes anything else.
/// On the old code the proposal was refused (`unknown-namespace`) and the
/// Delete commit a `direct-push-to-branch`.
#[test]
fn porch_deletes_a_package_from_the_branch_through_its_placeholder() {
    let server = Server::start(&config());
    let repo = server.repo_dir("r");
    let legacy = kptfile("legacy");
    let kept = kptfile("kept");
    let follower = "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: follower\n\
upstream:\n  type: git\n  git:\n    repo: https://example.com/r.git\n    directory: kept\n    ref: main\n\
upstreamLock:\n  type: git\n  git:\n    repo: https://example.com/r.git\n    directory: kept\n    ref: main\n    commit: 0123456789012345678901234567890123456789\n";
    seed_branch(
        &server,
        &[
            ("legacy/Kptfile", legacy.as_bytes()),
            ("legacy/app.yaml", b"replicas: 1\n"),
            ("kept/Kptfile", kept.as_bytes()),
            ("follower/Kptfile", follower.as_bytes()),
        ],
    );
    let porch = Porch::new(&server.url_as(&TestUser::new("porch"), "r"), "main");
    let dev = Porch::new(&server.url_as(&TestUser::new("dev"), "r"), "main");
    assert!(porch.init("web", "ws").status.success());
    assert!(porch.propose("web", "ws").0.status.success());
    assert!(porch.approve("web", "ws", 1).0.status.success());
    let main = server_ref(&repo, "refs/heads/main").expect("main");

    // Listed as Porch lists it (git.go 374–453; package_tree.go 97–104).
    let items = listed(&server, "legacy");
    assert_eq!(items.len(), 1, "{items:?}");
    let placeholder = &items[0];
    assert_eq!(placeholder["name"], "r.legacy.main");
    assert_eq!(placeholder["workspaceName"], "main");
    assert_eq!(placeholder["revision"], -1);
    assert_eq!(placeholder["placeholder"], true);
    assert_eq!(placeholder["lifecycle"], "Published");
    assert_eq!(placeholder["latest"], false);
    assert_eq!(placeholder["commit"], main.as_str());

    // A package with published revisions leaves the branch only with its
    // last revision.
    let out = porch.propose_delete_placeholder("web");
    assert!(!out.status.success(), "{}", output(&out));
    assert!(
        output(&out).contains("package-has-revisions"),
        "{}",
        output(&out)
    );
    assert_eq!(
        server_ref(&repo, "refs/heads/deletionProposed/web/main"),
        None
    );

    // Delete without a proposal: refused, nothing moves.
    let (out, _) = porch.delete_placeholder("legacy");
    assert!(!out.status.success(), "{}", output(&out));
    assert!(
        output(&out).contains("deletion-needs-a-proposal"),
        "{}",
        output(&out)
    );
    assert_eq!(server_ref(&repo, "refs/heads/main"), Some(main.clone()));

    // An author proposes (as for a revision's deletion).
    let out = dev.propose_delete_placeholder("legacy");
    assert!(out.status.success(), "{}", output(&out));
    assert_eq!(
        server_ref(&repo, "refs/heads/deletionProposed/legacy/main"),
        Some(main.clone())
    );
    assert_eq!(
        listed(&server, "legacy")[0]["lifecycle"],
        "DeletionProposed"
    );

    // Only an approver deletes: the author's whole step is refused.
    let (out, _) = dev.delete_placeholder("legacy");
    assert!(!out.status.success(), "{}", output(&out));
    assert!(output(&out).contains("[role]"), "{}", output(&out));
    assert_eq!(server_ref(&repo, "refs/heads/main"), Some(main.clone()));
    assert_eq!(
        server_ref(&repo, "refs/heads/deletionProposed/legacy/main"),
        Some(main.clone())
    );

    // The approver's Delete commit and the marker's deletion land together.
    let (out, delete) = porch.delete_placeholder("legacy");
    assert!(out.status.success(), "{}", output(&out));
    assert_eq!(server_ref(&repo, "refs/heads/main"), Some(delete.clone()));
    assert_eq!(
        server_ref(&repo, "refs/heads/deletionProposed/legacy/main"),
        None
    );
    let tree = server_git(&repo, &["ls-tree", "--name-only", "main"]);
    assert!(!tree.lines().any(|l| l == "legacy"), "{tree}");
    assert!(tree.lines().any(|l| l == "kept"), "{tree}");
    assert!(listed(&server, "legacy").is_empty());
    assert_eq!(listed(&server, "kept")[0]["commit"], delete.as_str());
    // The published view follows the branch.
    let published = porch.git().git_in(
        "porch",
        &[
            "ls-remote",
            &server.url_as(&TestUser::new("porch"), "published/r"),
            "refs/heads/main",
        ],
    );
    assert!(published.starts_with(&delete), "{published}");

    // Reject: the proposal goes, the package stays.
    assert!(porch.propose_delete_placeholder("kept").status.success());
    let out = porch.delete_branch("refs/heads/deletionProposed/kept/main");
    assert!(out.status.success(), "{}", output(&out));
    assert_eq!(listed(&server, "kept")[0]["lifecycle"], "Published");

    // A package whose upstreamLock follows kept on the branch keeps it.
    assert!(porch.propose_delete_placeholder("kept").status.success());
    let (out, _) = porch.delete_placeholder("kept");
    assert!(!out.status.success(), "{}", output(&out));
    assert!(
        output(&out).contains("revision-is-pinned"),
        "{}",
        output(&out)
    );
    assert_eq!(server_ref(&repo, "refs/heads/main"), Some(delete.clone()));
    assert!(server_ref(&repo, "refs/heads/deletionProposed/kept/main").is_some());

    // A Delete commit that changes anything besides the package is a
    // direct push to the branch.
    porch.git().git_in("porch", &["fetch", "-q", "origin"]);
    porch
        .git()
        .git_in("porch", &["checkout", "-q", "--detach", &delete]);
    porch.git().git_in("porch", &["rm", "-rq", "--", "kept"]);
    let more = porch
        .git()
        .commit_files("porch", &[("web/extra.yaml", b"x: 1\n")], "Delete kept");
    let out = porch
        .git()
        .command(&[
            "-C",
            "porch",
            "push",
            "origin",
            &format!("{more}:refs/heads/main"),
        ])
        .output()
        .expect("run git");
    assert!(!out.status.success(), "{}", output(&out));
    assert!(
        output(&out).contains("direct-push-to-branch"),
        "{}",
        output(&out)
    );
    assert_eq!(server_ref(&repo, "refs/heads/main"), Some(delete));
    assert!(server_ref(&repo, "refs/heads/deletionProposed/kept/main").is_some());
}

/// M3 through the API: the placeholder `r.F.main` is proposed for deletion
/// and deleted by name, the server writing Porch's `Delete F` commit
/// (git.go 1318–1365) and pushing it with the marker's deletion, judged by
/// the same hook as Porch's own push.
#[test]
fn the_api_deletes_a_package_from_the_branch_by_its_placeholder() {
    let server = Server::start(&config());
    let repo = server.repo_dir("r");
    let legacy = kptfile("legacy");
    seed_branch(&server, &[("legacy/Kptfile", legacy.as_bytes())]);
    let main = server_ref(&repo, "refs/heads/main").expect("main");
    let act = |user: &str, action: &str| {
        api::post(
            &server,
            &TestUser::new(user),
            &format!("/api/v1/repositories/r/revisions/r.legacy.main/{action}"),
            "",
        )
    };
    let (status, body) = act("dev", "propose-delete");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["lifecycle"], "DeletionProposed", "{body}");
    assert_eq!(
        server_ref(&repo, "refs/heads/deletionProposed/legacy/main"),
        Some(main.clone())
    );
    let (status, body) = act("dev", "delete");
    assert_eq!(status, 403, "{body}");
    let (status, body) = act("porch", "delete");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"], serde_json::json!([]), "{body}");
    let tip = server_ref(&repo, "refs/heads/main").expect("main");
    assert_eq!(server_git(&repo, &["rev-parse", &format!("{tip}^")]), main);
    assert_eq!(
        server_git(&repo, &["log", "-1", "--format=%s", &tip]),
        "Delete legacy"
    );
    // Recorded as the deletion events of the placeholder (docs/events.md).
    let log = std::fs::read_to_string(repo.join("cadgate-events.log")).expect("the event log");
    let events: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let last: Vec<(&str, &str, &str, i64)> = events
        .iter()
        .rev()
        .take(2)
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default(),
                e["package"].as_str().unwrap_or_default(),
                e["workspace"].as_str().unwrap_or_default(),
                e["revision"].as_i64().unwrap_or(-9),
            )
        })
        .collect();
    assert_eq!(
        last,
        [
            ("deleted", "legacy", "main", 0),
            ("deletion-proposed", "legacy", "main", 0)
        ],
        "{log}"
    );
    assert_eq!(
        server_ref(&repo, "refs/heads/deletionProposed/legacy/main"),
        None
    );
}
