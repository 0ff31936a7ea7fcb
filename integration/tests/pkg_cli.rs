//! `cadgate pkg`: the lifecycle driven by commands instead of refspecs,
//! against a running server, checking what a person sees: tables, messages
//! and exit codes, and the refs those commands leave.

use std::process::{Command, Output};

use cadgate_integration::scenarios::CadgateServer;
use cadgate_integration::*;

struct Cli<'s> {
    server: &'s Server,
}

impl Cli<'_> {
    fn run(&self, user: &str, args: &[&str]) -> Output {
        let user = TestUser::new(user);
        Command::new(cadgate_bin())
            .arg("pkg")
            .args(args)
            .env("CADGATE_SERVER", format!("http://{}", self.server.addr()))
            .env("CADGATE_USER", &user.name)
            .env("CADGATE_TOKEN", &user.token)
            .output()
            .expect("run cadgate pkg")
    }

    /// Run and require exit 0; stdout.
    fn ok(&self, user: &str, args: &[&str]) -> String {
        let out = self.run(user, args);
        assert!(
            out.status.success(),
            "cadgate pkg {args:?} as {user}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// Run and require the exit code `code`; stderr.
    fn fails(&self, user: &str, args: &[&str], code: i32) -> String {
        let out = self.run(user, args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "cadgate pkg {args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stderr(&out)
    }
}

/// The row of `name` in a table, split into cells.
fn row(table: &str, name: &str) -> Vec<String> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in\n{table}"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_package_goes_through_its_lifecycle_by_commands() {
    let host = CadgateServer::start("");
    let cli = Cli {
        server: &host.server,
    };
    let repo = host.server.repo_dir("root");

    let out = cli.ok(
        "alice",
        &["init", "root", "web", "ws", "--description", "A web app"],
    );
    assert_eq!(
        row(&out, "root.web.ws")[..5],
        ["root.web.ws", "web", "ws", "0", "Draft"]
    );
    let draft = server_ref(&repo, "refs/heads/drafts/web/ws").expect("the draft branch");
    let kptfile = server_git(&repo, &["show", &format!("{draft}:web/Kptfile")]);
    assert!(
        kptfile.contains("name: web") && kptfile.contains("description: A web app"),
        "{kptfile}"
    );

    let table = cli.ok("rita", &["list", "root"]);
    assert!(table.starts_with("NAME"), "{table}");
    cli.ok("alice", &["propose", "root", "root.web.ws"]);
    assert!(server_ref(&repo, "refs/heads/proposed/web/ws").is_some());

    // Publishing needs an approver: the author is refused with exit 1.
    let err = cli.fails("alice", &["approve", "root", "root.web.ws"], 1);
    assert!(err.contains("approver"), "{err}");
    let approved = cli.run("bob", &["approve", "root", "root.web.ws"]);
    assert!(approved.status.success(), "{}", stderr(&approved));
    assert_eq!(
        row(&stdout(&approved), "root.web.ws")[3..6],
        ["1", "Published", "yes"]
    );
    assert!(
        stderr(&approved).contains("published web v1"),
        "{}",
        stderr(&approved)
    );
    assert_eq!(
        server_ref(&repo, "refs/tags/web/v1"),
        server_ref(&repo, "refs/heads/main")
    );

    // A second workspace from the published revision, then dropped.
    let out = cli.ok("alice", &["copy", "root", "web", "ws2"]);
    assert_eq!(row(&out, "root.web.ws2")[3..5], ["0", "Draft"]);
    cli.ok("alice", &["delete", "root", "root.web.ws2"]);
    assert!(server_ref(&repo, "refs/heads/drafts/web/ws2").is_none());

    // Another package cloned from it.
    let out = cli.ok(
        "alice",
        &["clone", "root", "site", "first", "--from", "root/web@1"],
    );
    assert_eq!(row(&out, "root.site.first")[4], "Draft");
    let json: serde_json::Value =
        serde_json::from_str(&cli.ok("rita", &["get", "root", "root.site.first", "--json"]))
            .expect("JSON");
    assert_eq!(json["upstreamLock"]["git"]["ref"], "web/v1");
    let details = cli.ok("rita", &["get", "root", "root.site.first"]);
    assert!(details.contains("lifecycle: Draft"), "{details}");

    // Deletion: proposed, kept, proposed again, approved.
    cli.ok("alice", &["propose-delete", "root", "root.web.ws"]);
    assert!(server_ref(&repo, "refs/heads/deletionProposed/web/v1").is_some());
    cli.ok("bob", &["reject-delete", "root", "root.web.ws"]);
    assert!(server_ref(&repo, "refs/heads/deletionProposed/web/v1").is_none());
    cli.ok("alice", &["propose-delete", "root", "root.web.ws"]);
    cli.ok("bob", &["delete", "root", "root.web.ws"]);
    assert!(server_ref(&repo, "refs/tags/web/v1").is_none());
}

#[test]
fn mistakes_get_clear_messages_and_exit_codes() {
    let host = CadgateServer::start("");
    let cli = Cli {
        server: &host.server,
    };
    let before = server_git(&host.server.repo_dir("root"), &["for-each-ref"]);
    let err = cli.fails("rita", &["get", "root", "root.nope.ws"], 1);
    assert!(err.contains("no package revision 'root.nope.ws'"), "{err}");
    let err = cli.fails("rita", &["list", "nope"], 1);
    assert!(err.contains("not registered"), "{err}");
    let err = cli.fails("rita", &["list", "root", "--lifecycle", "published"], 1);
    assert!(err.contains("Published"), "{err}");
    let err = cli.fails("rita", &["init", "root", "web", "ws"], 1);
    assert!(err.contains("author"), "{err}");
    cli.fails("alice", &["frobnicate"], 2);
    let out = Command::new(cadgate_bin())
        .args(["pkg", "list", "root", "--server", "http://127.0.0.1:1"])
        .env_remove("CADGATE_SERVER")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
    assert_eq!(
        server_git(&host.server.repo_dir("root"), &["for-each-ref"]),
        before
    );
}
