//! SIGKILL during publishes (issue 3, acceptance 5): every publish is fully
//! there or not at all, the repository passes fsck, and the server restarts.

use std::time::Duration;

use cadgate_integration::*;

fn config() -> String {
    format!(
        "[server]\nmax_git_processes = 64\nqueue_timeout_secs = 120\n\n[policy]\nself_approval = true\n\n[[repository]]\nname = \"r\"\n\n{}",
        TestUser::new("admin").config(&["admin"], &[])
    )
}

#[test]
fn sigkill_during_twenty_publishes_leaves_every_publish_whole_or_absent() {
    let data = tempfile::tempdir().expect("data dir");
    let admin = TestUser::new("admin");
    let mut server = Server::start_with_data(&config(), data.path());
    let url = server.url_as(&admin, "r");
    let author = GitClient::new();
    author.git(&["clone", "-q", &url, "w"]);
    let mut refspecs = Vec::new();
    let mut tips = Vec::new();
    for i in 0..20 {
        let package = format!("k{i:02}");
        author.git_in("w", &["checkout", "-q", "-B", &package, "origin/main"]);
        tips.push(author.commit_package(
            "w",
            &package,
            &[("v.yaml", format!("v: {i}\n").as_bytes())],
            &package,
        ));
        refspecs.push(format!("{package}:refs/heads/drafts/{package}/ws"));
        refspecs.push(format!("{package}:refs/heads/proposed/{package}/ws"));
    }
    // Drafts first, then proposals (each proposal needs its draft).
    let drafts: Vec<&str> = refspecs.iter().step_by(2).map(String::as_str).collect();
    let proposals: Vec<&str> = refspecs
        .iter()
        .skip(1)
        .step_by(2)
        .map(String::as_str)
        .collect();
    for batch in [drafts, proposals] {
        let mut push = vec!["-C", "w", "push", "-q", "origin"];
        push.extend(batch);
        author.git(&push);
    }
    let source = author.path("w").display().to_string();
    std::thread::scope(|scope| {
        for tip in &tips {
            let (url, source) = (url.clone(), source.clone());
            scope.spawn(move || {
                let approver = GitClient::new();
                approver.git(&["init", "-q", "a"]);
                approver.git_in("a", &["fetch", "-q", &source, tip]);
                // The server may die under this push: either outcome is fine here.
                let _ = approver
                    .command(&["-C", "a", "push", &url, &format!("+{tip}:refs/heads/main")])
                    .output();
            });
        }
        // Kill once the first publish has landed, while the others are in flight.
        let repo = data.path().join("repositories/r.git");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while server_git(&repo, &["tag", "--list"]).is_empty()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        server.kill_hard();
    });
    // The killed server's git children (receive-pack and its hook) are
    // orphaned and finish or fail on their own: wait until none is left.
    let repo = data.path().join("repositories/r.git");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while processes_mentioning(&repo.display().to_string()) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "git processes still running on the repository"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server_git(&repo, &["fsck", "--no-progress", "--no-dangling"]);
    let main_tree = server_git(&repo, &["ls-tree", "--name-only", "main"]);
    let mut published = 0;
    for (i, tip) in tips.iter().enumerate() {
        let package = format!("k{i:02}");
        let tag = server_ref(&repo, &format!("refs/tags/{package}/v1"));
        let proposal = server_ref(&repo, &format!("refs/heads/proposed/{package}/ws"));
        let on_main = main_tree.lines().any(|l| l == package);
        if let Some(tag) = tag {
            // Fully published: tag reachable from main, package on main, proposal gone.
            published += 1;
            assert!(on_main, "{package}: tagged but not on main");
            assert!(proposal.is_none(), "{package}: tagged but still proposed");
            server_git(&repo, &["merge-base", "--is-ancestor", &tag, "main"]);
        } else {
            // Not published at all: still proposed at its tip, not on main.
            assert!(!on_main, "{package}: on main without a tag");
            assert_eq!(
                proposal.as_ref(),
                Some(tip),
                "{package}: neither published nor proposed"
            );
        }
    }
    // The server restarts on the same data and serves; unfinished proposals can be published.
    let server = Server::start_with_data(&config(), data.path());
    let client = GitClient::new();
    client.git(&["clone", "-q", &server.url_as(&admin, "r"), "again"]);
    // The published view was brought in step on start: exactly the branch
    // and the tags, whatever the kill interrupted.
    let view_matches = |client: &GitClient| {
        let view = stdout(&client.git(&["ls-remote", &server.url_as(&admin, "published/r")]));
        let view: Vec<&str> = view.lines().filter(|l| !l.ends_with("\tHEAD")).collect();
        let authoring = server_git(
            &repo,
            &[
                "for-each-ref",
                "--format=%(objectname)\t%(refname)",
                "refs/heads/main",
                "refs/tags",
            ],
        );
        assert_eq!(view, authoring.lines().collect::<Vec<_>>());
    };
    view_matches(&client);
    server_git(
        &data.path().join("published/r.git"),
        &["fsck", "--no-progress", "--no-dangling"],
    );
    let remaining: Vec<usize> = (0..20)
        .filter(|i| !main_tree.lines().any(|l| l == format!("k{i:02}")))
        .collect();
    if let Some(&i) = remaining.first() {
        let out = client.git(&[
            "-C",
            "again",
            "push",
            "origin",
            &format!("+origin/proposed/k{i:02}/ws:refs/heads/main"),
        ]);
        assert!(
            stderr(&out).contains(&format!("published k{i:02} v1")),
            "{}",
            stderr(&out)
        );
        view_matches(&client);
    }
    eprintln!("{published} of 20 publishes completed (in-flight pushes are finished by their git processes after the server dies)");
}

/// How many running processes have `needle` in their command line.
fn processes_mentioning(needle: &str) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|cmdline| String::from_utf8_lossy(cmdline).contains(needle))
        .count()
}
