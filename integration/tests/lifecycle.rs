//! The package lifecycle over plain `git push` through the server (contract
//! §6): roles come from the server's users, rules from cadgate's hooks.

use cadgate_integration::*;

fn config(directory: &str) -> String {
    format!(
        "[[repository]]\nname = \"blueprints\"\ndirectory = \"{directory}\"\n\n{}{}",
        TestUser::new("alice").config(&["author"], &[]),
        TestUser::new("bob").config(&["approver"], &[]),
    )
}

#[test]
fn draft_propose_publish_and_refusals_through_the_server() {
    for directory in ["", "catalog"] {
        let server = Server::start(&config(directory));
        let (alice, bob) = (TestUser::new("alice"), TestUser::new("bob"));
        let package = if directory.is_empty() {
            "team/basens".to_string()
        } else {
            format!("{directory}/team/basens")
        };
        let author = GitClient::new();
        author.git(&["clone", "-q", &server.url_as(&alice, "blueprints"), "w"]);
        let tip = author.commit_package(
            "w",
            &package,
            &[("ns.yaml", b"kind: Namespace\n")],
            "basens",
        );

        // A direct push to the branch is refused with the rule and the way forward.
        let out = author.git_fails(&["-C", "w", "push", "origin", "HEAD:main"]);
        let err = stderr(&out);
        assert!(
            err.contains("[remote rejected]") && err.contains("direct-push-to-branch"),
            "{err}"
        );

        let draft = format!("refs/heads/drafts/{package}/ws1");
        let proposed = format!("refs/heads/proposed/{package}/ws1");
        author.git_in("w", &["push", "-q", "origin", &format!("HEAD:{draft}")]);
        let out = author.git(&[
            "-C",
            "w",
            "push",
            "origin",
            &format!("origin/drafts/{package}/ws1:{proposed}"),
        ]);
        assert!(
            stderr(&out).contains(&format!("proposed {package} workspace ws1")),
            "{}",
            stderr(&out)
        );
        let repo = server.repo_dir("blueprints");
        assert_eq!(server_git(&repo, &["rev-parse", &proposed]), tip);

        // The author cannot publish; the approver can.
        let out = author.git_fails(&[
            "-C",
            "w",
            "push",
            "origin",
            &format!("+origin/proposed/{package}/ws1:refs/heads/main"),
        ]);
        assert!(
            stderr(&out).contains("publishing needs role 'approver'"),
            "{}",
            stderr(&out)
        );
        let approver = GitClient::new();
        approver.git(&["clone", "-q", &server.url_as(&bob, "blueprints"), "a"]);
        let out = approver.git(&[
            "-C",
            "a",
            "push",
            "origin",
            &format!("+origin/proposed/{package}/ws1:refs/heads/main"),
        ]);
        assert!(
            stderr(&out).contains(&format!("published {package} v1")),
            "{}",
            stderr(&out)
        );
        let tag = format!("refs/tags/{package}/v1");
        let main = server_git(&repo, &["rev-parse", "main"]);
        assert_eq!(server_git(&repo, &["rev-parse", &tag]), main);
        assert!(server_git(&repo, &["log", "-1", "--format=%B", "main"])
            .contains(&format!("Approving package revision {package}/1")));
        // The approver's remote-tracking branch shows where main really went.
        approver.git_in("a", &["fetch", "-q", "origin"]);
        assert_eq!(approver.git_in("a", &["rev-parse", "origin/main"]), main);
        assert!(server_git(
            &repo,
            &["for-each-ref", "--format=%(refname)", "refs/heads/proposed"]
        )
        .is_empty());
    }
}
