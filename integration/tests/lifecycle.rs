//! The package lifecycle over plain `git push` through the server (contract
//! §6): the scenario list of [`cadgate_integration::scenarios`] with the
//! cadgate server as the transport, in every layout, and the role matrix.

use cadgate_integration::scenarios::{self, CadgateServer, DIRECTORY, NESTED, ROOT};

#[test]
fn every_transition_at_the_repository_root() {
    scenarios::run_all(&CadgateServer::start(""), ROOT);
}

#[test]
fn every_transition_for_nested_package_paths() {
    scenarios::run_all(&CadgateServer::start(""), NESTED);
}

#[test]
fn every_transition_below_a_repository_directory() {
    scenarios::run_all(&CadgateServer::start(""), DIRECTORY);
}

#[test]
fn each_role_may_make_exactly_its_transitions() {
    scenarios::role_matrix(&CadgateServer::start(""), NESTED);
}

/// A server with so many repositories that the list of them (which the hook
/// needs for the downstream rule) would exceed Linux's 128 KiB limit on one
/// environment string: pushes are still judged, and an approved deletion
/// still sees a pin in another repository (hooks/src/downstreams.rs).
#[test]
fn a_server_whose_repository_list_exceeds_an_environment_string_still_judges_pushes() {
    use cadgate_integration::kptfile;
    use cadgate_integration::scenarios::{Lab, Transport as _};

    // Long names (at most 200 characters), long branches and a long data
    // directory make each entry about 2.9 KiB, so 50 repositories are
    // enough and start in seconds.
    let fillers = 50;
    let mut config = scenarios::cadgate_config_with(|_| String::new());
    let mut entries = Vec::new();
    let long = "a".repeat(188);
    let branch = ["b", "c", "d", "e", "f", "g", "h", "i"]
        .map(|c| c.repeat(240))
        .join("/");
    for i in 0..fillers {
        let name = format!("fleet/{long}/r{i:04}");
        config.push_str(&format!(
            "[[repository]]\nname = \"{name}\"\nbranch = \"{branch}\"\n\n"
        ));
        entries.push((name, branch.clone()));
    }
    let scratch = tempfile::tempdir().expect("temp dir");
    let data = scratch.path().join("x".repeat(240)).join("y".repeat(240));
    let host = CadgateServer {
        server: cadgate_integration::Server::start_with_data(&config, &data),
    };
    // What the old CADGATE_DOWNSTREAMS held for a push to `root`: every
    // other repository as {"name","path","branch"} JSON.
    let json_len: usize = entries
        .iter()
        .map(|(name, branch)| {
            let path = host.repository_dir(name);
            format!(
                r#"{{"name":"{name}","path":"{}","branch":"{branch}"}},"#,
                path.display()
            )
            .len()
        })
        .sum();
    assert!(
        json_len > 128 * 1024,
        "only {json_len} bytes: too few to matter"
    );

    // A push is judged: a release goes draft → proposal → published.
    let root = Lab::new(&host, ROOT, "fleet-pinned");
    let f = root.f();
    root.release(&f, "ws", "n: 1\n");
    let pinned = root.server_git(&["rev-parse", &format!("refs/tags/{f}/v1^{{commit}}")]);
    let loose = root.other("loose");
    root.release(&loose, "ws", "n: 1\n");

    // Another repository's package pins v1 of F.
    let catalog = Lab::new(&host, DIRECTORY, "fleet-follower");
    let follower = catalog.f();
    let lock = format!(
        "{}upstream:\n  type: git\n  git:\n    repo: https://example.com/root.git\n    directory: /{f}\n    ref: {f}/v1\n  updateStrategy: resource-merge\nupstreamLock:\n  type: git\n  git:\n    repo: https://example.com/root.git\n    directory: /{f}\n    ref: {f}/v1\n    commit: {pinned}\n",
        kptfile(&follower)
    );
    catalog.commit(
        "alice",
        Some("origin/main"),
        &[(format!("{follower}/Kptfile"), Some(lock))],
    );
    catalog.accept(
        "alice",
        &[&format!("HEAD:refs/heads/drafts/{follower}/ws")],
        "saved draft",
    );
    catalog.propose("alice", &follower, "ws");
    catalog.publish("bob", &follower, "ws");

    // Deleting the pinned revision is refused, naming the pin; deleting an
    // unpinned one is approved.
    root.propose_deletion("alice", &f, 1);
    let err = root.refuse(
        "bob",
        &[&format!(":refs/tags/{f}/v1")],
        "revision-is-pinned",
    );
    assert!(err.contains(&format!("catalog:{follower}")), "{err}");
    root.propose_deletion("alice", &loose, 1);
    root.accept(
        "bob",
        &[&format!(":refs/tags/{loose}/v1")],
        &format!("deleted {loose} v1"),
    );
    assert!(root.server_ref(&format!("refs/tags/{loose}/v1")).is_none());
    assert!(root.server_ref(&format!("refs/tags/{f}/v1")).is_some());

    // A garbled list refuses the push, naming the file, and changes nothing.
    let list = host.server.data_dir().join("repositories.json");
    std::fs::write(&list, "{\"version\":1,\"repositories\":[{\"na").expect("garble the list");
    let garbled = root.other("garbled");
    root.package_commit("alice", &garbled, "n: 1\n");
    let out = root.push("alice", &[&format!("HEAD:refs/heads/drafts/{garbled}/ws")]);
    let err = cadgate_integration::stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&list.display().to_string()) && err.contains("restart the server"),
        "{err}"
    );
    assert!(root
        .server_ref(&format!("refs/heads/drafts/{garbled}/ws"))
        .is_none());
}
