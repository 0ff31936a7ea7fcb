//! Emulations of the clients that deploy from a published view: Config
//! Sync's git-sync v4, command for command as `../shared/notes/git-clients.md`
//! records it.

use std::path::Path;

use crate::{stdout, GitClient};

/// git-sync v4's private environment and repository (`git init -b git-sync`).
pub fn git_sync_root(url: &str) -> (GitClient, std::path::PathBuf) {
    let client = GitClient::new();
    for (key, value) in [
        ("gc.autoDetach", "false"),
        ("gc.pruneExpire", "now"),
        ("core.askPass", "true"),
        ("safe.directory", "*"),
    ] {
        client.git(&["config", "--global", key, value]);
    }
    let root = client.path("root");
    let root_str = root.display().to_string();
    client.git(&["init", "-q", "-b", "git-sync", &root_str]);
    client.git(&["-C", &root_str, "remote", "add", "origin", url]);
    (client, root)
}

/// One git-sync poll: fetch `reference` at `depth`, and when it resolves to a
/// new commit, check it out into a worktree and swap the `rev` link. Returns
/// the synced commit.
pub fn git_sync_poll(
    client: &GitClient,
    root: &Path,
    url: &str,
    reference: &str,
    depth: u32,
) -> String {
    let root_str = root.display().to_string();
    let git = |args: &[&str]| {
        let mut full = vec!["-C", root_str.as_str()];
        full.extend_from_slice(args);
        stdout(&client.git(&full))
    };
    git(&["rev-parse", "--show-toplevel"]);
    git(&["fsck", "--no-progress", "--connectivity-only"]);
    let depth = depth.to_string();
    git(&[
        "fetch",
        url,
        reference,
        "--verbose",
        "--no-progress",
        "--prune",
        "--no-auto-gc",
        "--depth",
        &depth,
    ]);
    let head = git(&["rev-parse", "FETCH_HEAD^{}"]);
    let current = std::fs::read_link(root.join("rev"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    if current.as_deref() != Some(head.as_str()) {
        let worktree = root.join(".worktrees").join(&head);
        let worktree_str = worktree.display().to_string();
        git(&["reset", "--soft", &head, "--"]);
        git(&[
            "worktree",
            "add",
            "--force",
            "--detach",
            &worktree_str,
            &head,
            "--no-checkout",
        ]);
        client.git(&["-C", &worktree_str, "reset", "-q", "--hard", &head, "--"]);
        let link = root.join("tmp-link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(format!(".worktrees/{head}"), &link).expect("symlink");
        std::fs::rename(&link, root.join("rev")).expect("swap the rev link");
        git(&["worktree", "prune"]);
        git(&["reflog", "expire", "--expire-unreachable=all", "--all"]);
        git(&["gc", "--quiet"]);
    }
    head
}

pub fn synced_file(root: &Path, path: &str) -> Option<String> {
    std::fs::read_to_string(root.join("rev").join(path)).ok()
}
