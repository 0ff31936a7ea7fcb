//! Hook mode (contract §9): cadgate installed into bare repositories that
//! another Git host serves. The lifecycle scenario list runs unchanged over
//! `file://`, with the pusher named by an environment variable, and install,
//! reinstall and uninstall leave the repository and its own hooks intact.

use std::path::{Path, PathBuf};

use cadgate_integration::scenarios::{self, Transport, DIRECTORY, LAYOUTS, NESTED, ROOT};
use cadgate_integration::*;

/// The variable the installed hook reads the pusher's name from.
const PUSHER: &str = "CADGATE_TEST_PUSHER";

/// The scenario repositories in `dir`, each with cadgate installed by `bin`.
fn hosted_repositories(bin: &Path, config: &Path, dir: &Path, extra: &[&str]) {
    std::fs::write(config, scenarios::cadgate_config()).expect("config");
    for layout in LAYOUTS {
        let repo = dir.join(format!("{}.git", layout.repository));
        bare_repository(&repo);
        let out = install_with(bin, config, layout.repository, &repo, extra);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Bare repositories with cadgate installed, pushed to over `file://`.
struct FileHost {
    dir: tempfile::TempDir,
}

/// A bare repository with an initial commit on `main`, as a host would have.
fn bare_repository(path: &Path) {
    let client = GitClient::new();
    client.git(&[
        "init",
        "-q",
        "--bare",
        "-b",
        "main",
        &path.display().to_string(),
    ]);
    client.git(&["init", "-q", "-b", "main", "seed"]);
    client.commit_files("seed", &[("README.md", b"hosted elsewhere\n")], "initial");
    client.git(&[
        "-C",
        "seed",
        "push",
        "-q",
        &path.display().to_string(),
        "main",
    ]);
}

fn install(config: &Path, name: &str, repo: &Path, extra: &[&str]) -> std::process::Output {
    install_with(&cadgate_bin(), config, name, repo, extra)
}

/// `cadgate hook install` with the given cadgate binary.
fn install_with(
    bin: &Path,
    config: &Path,
    name: &str,
    repo: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut command = std::process::Command::new(bin);
    command
        .args(["hook", "install", "--config"])
        .arg(config)
        .args(["--repository", name])
        .args(extra)
        .arg(repo);
    command.output().expect("run cadgate hook install")
}

impl FileHost {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        hosted_repositories(
            &cadgate_bin(),
            &dir.path().join("cadgate.toml"),
            dir.path(),
            &["--user-variable", PUSHER],
        );
        Self { dir }
    }
}

impl Transport for FileHost {
    fn name(&self) -> String {
        "file:// with the hook".into()
    }

    fn clone_as(&self, user: &str, repository: &str) -> GitClient {
        let client = GitClient::new().with_env(PUSHER, user);
        let url = format!("file://{}", self.repository_dir(repository).display());
        client.git(&["clone", "-q", &url, "w"]);
        client
    }

    fn repository_dir(&self, repository: &str) -> PathBuf {
        self.dir.path().join(format!("{repository}.git"))
    }
}

#[test]
fn every_transition_over_file_urls_at_the_root() {
    scenarios::run_all(&FileHost::start(), ROOT);
}

#[test]
fn every_transition_over_file_urls_nested_and_below_a_directory() {
    let host = FileHost::start();
    scenarios::run_all(&host, NESTED);
    scenarios::run_all(&host, DIRECTORY);
}

#[test]
fn each_role_over_file_urls() {
    scenarios::role_matrix(&FileHost::start(), ROOT);
}

#[test]
fn a_push_without_an_identity_or_by_a_stranger_is_refused() {
    let host = FileHost::start();
    let url = format!("file://{}", host.repository_dir("root").display());
    for (who, expect) in [
        (None, "no authenticated user"),
        (Some("mallory"), "user 'mallory' has no role"),
    ] {
        let client = match who {
            Some(name) => GitClient::new().with_env(PUSHER, name),
            None => GitClient::new(),
        };
        client.git(&["clone", "-q", &url, "w"]);
        client.commit_package("w", "pkg", &[], "pkg");
        let out = client.git_fails(&["-C", "w", "push", "origin", "HEAD:refs/heads/drafts/pkg/ws"]);
        assert!(stderr(&out).contains(expect), "{}", stderr(&out));
        assert!(server_ref(&host.repository_dir("root"), "refs/heads/drafts/pkg/ws").is_none());
    }
}

#[test]
fn publishing_keeps_the_published_sibling_in_step() {
    let host = FileHost::start();
    let lab = scenarios::Lab::new(&host, ROOT, "sibling");
    let f = lab.f();
    lab.release(&f, "ws", "n: 1\n");
    lab.draft("alice", &f, "secret", "secret: 1\n");
    let sibling = host.dir.path().join("root.published.git");
    let refs = server_git(&sibling, &["for-each-ref", "--format=%(refname)"]);
    assert_eq!(refs, format!("refs/heads/main\nrefs/tags/{f}/v1"));
    assert_eq!(
        server_git(&sibling, &["rev-parse", "main"]),
        lab.server_ref("refs/heads/main").expect("main")
    );
    assert_eq!(
        server_git(&sibling, &["config", "http.receivepack"]),
        "false"
    );
}

#[test]
fn install_reinstall_and_uninstall_keep_the_repository_and_its_own_hooks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("cadgate.toml");
    std::fs::write(&config, scenarios::cadgate_config()).expect("config");
    let repo = dir.path().join("root.git");
    bare_repository(&repo);
    // The host's own hook: logs every push.
    let log = dir.path().join("pushes.log");
    let own = repo.join("hooks/post-receive");
    std::fs::write(&own, format!("#!/bin/sh\ncat >> '{}'\n", log.display())).expect("hook");
    std::fs::set_permissions(&own, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    server_git(&repo, &["config", "receive.fsckObjects", "false"]);
    let config_before = server_git(&repo, &["config", "--list", "--local"]);

    for _ in 0..2 {
        let out = install(&config, "root", &repo, &["--user-variable", PUSHER]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("published view"));
    }
    // Enforced, and the host's hook still runs.
    let client = GitClient::new().with_env(PUSHER, "alice");
    let url = format!("file://{}", repo.display());
    client.git(&["clone", "-q", &url, "w"]);
    client.commit_package("w", "pkg", &[], "pkg");
    let out = client.git_fails(&["-C", "w", "push", "origin", "HEAD:main"]);
    assert!(
        stderr(&out).contains("[direct-push-to-branch]"),
        "{}",
        stderr(&out)
    );
    client.git(&[
        "-C",
        "w",
        "push",
        "-q",
        "origin",
        "HEAD:refs/heads/drafts/pkg/ws",
    ]);
    let logged = std::fs::read_to_string(&log).expect("the host's hook ran");
    assert!(logged.contains("refs/heads/drafts/pkg/ws"), "{logged}");
    assert_eq!(
        std::fs::read_to_string(&own).expect("hook").lines().count(),
        2
    );

    // A foreign proc-receive is never overwritten.
    let other = tempfile::tempdir().expect("tempdir");
    let foreign_repo = other.path().join("x.git");
    bare_repository(&foreign_repo);
    std::fs::write(
        foreign_repo.join("hooks/proc-receive"),
        "#!/bin/sh\nexit 0\n",
    )
    .expect("hook");
    let out = install(&config, "root", &foreign_repo, &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another program's proc-receive"));
    assert_eq!(
        std::fs::read_to_string(foreign_repo.join("hooks/proc-receive")).expect("hook"),
        "#!/bin/sh\nexit 0\n"
    );

    // Uninstall: no cadgate hook, settings as before, the host's hook stays.
    let out = install(&config, "root", &repo, &["--uninstall"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!repo.join("hooks/proc-receive").exists());
    assert_eq!(
        server_git(&repo, &["config", "--list", "--local"]),
        config_before
    );
    for leftover in ["cadgate.lock", "cadgate-install.record"] {
        assert!(!repo.join(leftover).exists(), "{leftover} left behind");
    }
    client.git(&[
        "-C",
        "w",
        "push",
        "-q",
        "origin",
        "HEAD:refs/heads/anything",
    ]);
    assert!(std::fs::read_to_string(&log)
        .expect("log")
        .contains("refs/heads/anything"));
    // Unknown repository names and broken configs are refused clearly.
    let out = install(&config, "nope", &repo, &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("repository 'nope' is not in the config"));
    assert!(!repo.join("hooks/proc-receive").exists());
}

// ---- Apache + git http-backend --------------------------------------------

/// Repositories served by Apache + `git http-backend` with cadgate installed.
struct ApacheHost {
    apache: cadgate_integration::apache::Apache,
}

impl ApacheHost {
    fn start() -> Self {
        let apache = cadgate_integration::apache::Apache::new();
        let scratch = apache.scratch();
        // The hook runs as Apache's user: give it its own copy of cadgate.
        let bin = scratch.join("cadgate");
        std::fs::copy(cadgate_bin(), &bin).expect("copy cadgate");
        hosted_repositories(&bin, &scratch.join("cadgate.toml"), &apache.root(), &[]);
        let users: Vec<TestUser> = scenarios::USERS
            .iter()
            .map(|(u, _)| TestUser::new(u))
            .collect();
        apache.start(&users);
        Self { apache }
    }
}

impl Transport for ApacheHost {
    fn name(&self) -> String {
        "Apache + git http-backend with the hook".into()
    }

    fn clone_as(&self, user: &str, repository: &str) -> GitClient {
        let client = GitClient::new();
        client.git(&[
            "clone",
            "-q",
            &self.apache.url_as(&TestUser::new(user), repository),
            "w",
        ]);
        client
    }

    fn repository_dir(&self, repository: &str) -> PathBuf {
        self.apache.root().join(format!("{repository}.git"))
    }
}

#[test]
fn every_transition_through_apache_at_the_root() {
    scenarios::run_all(&ApacheHost::start(), ROOT);
}

#[test]
fn every_transition_through_apache_nested_and_below_a_directory() {
    let host = ApacheHost::start();
    scenarios::run_all(&host, NESTED);
    scenarios::run_all(&host, DIRECTORY);
}

#[test]
fn each_role_through_apache() {
    scenarios::role_matrix(&ApacheHost::start(), NESTED);
}

#[test]
fn config_sync_clones_the_published_sibling_through_apache() {
    use cadgate_integration::config_sync::{git_sync_poll, git_sync_root, synced_file};
    let host = ApacheHost::start();
    let lab = scenarios::Lab::new(&host, ROOT, "deployed");
    let f = lab.f();
    lab.release(&f, "one", "n: 1\n");
    lab.release(&f, "two", "n: 2\n");
    lab.draft("alice", &f, "secret", "secret: 1\n");
    let draft = lab
        .server_ref(&format!("refs/heads/drafts/{f}/secret"))
        .expect("draft");
    let url = host.apache.url_as(&TestUser::new("rita"), "root.published");
    let reader = GitClient::new();
    let refs: Vec<String> = stdout(&reader.git(&["ls-remote", &url]))
        .lines()
        .map(|l| l.split('\t').nth(1).unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        refs,
        vec![
            "HEAD".to_string(),
            "refs/heads/main".into(),
            format!("refs/tags/{f}/v1"),
            format!("refs/tags/{f}/v2")
        ]
    );
    let (client, root) = git_sync_root(&url);
    let v1 = lab.server_ref(&format!("refs/tags/{f}/v1")).expect("v1");
    assert_eq!(
        git_sync_poll(&client, &root, &url, &format!("{f}/v1"), 500),
        v1
    );
    assert_eq!(
        synced_file(&root, &format!("{f}/data.yaml")).as_deref(),
        Some("n: 1\n")
    );
    let main = lab.server_ref("refs/heads/main").expect("main");
    assert_eq!(git_sync_poll(&client, &root, &url, "main", 1), main);
    // kpt: the nested tag by name over a URL without .git, then by SHA.
    let kpt = GitClient::new();
    kpt.git(&["init", "-q", "c"]);
    kpt.git(&[
        "-C",
        "c",
        "remote",
        "add",
        "origin",
        url.trim_end_matches(".git"),
    ]);
    kpt.git(&[
        "-C",
        "c",
        "fetch",
        "-q",
        "origin",
        "--depth=1",
        &format!("{f}/v2"),
    ]);
    kpt.git(&["-C", "c", "fetch", "-q", "origin", "--depth=1", &v1]);
    // The draft never reached the sibling; pushing to it is refused.
    let fresh = GitClient::new();
    fresh.git(&["init", "-q", "f"]);
    let err = stderr(&fresh.git_fails(&["-C", "f", "fetch", "-q", &url, &draft]));
    assert!(
        err.contains("not our ref") || err.contains("unadvertised"),
        "{err}"
    );
    let pusher = host.clone_as("ada", "root");
    let err = stderr(&pusher.git_fails(&["-C", "w", "push", &url, "HEAD:refs/heads/x"]));
    assert!(err.contains("403"), "{err}");
}

#[test]
fn the_config_can_name_the_variable_that_carries_the_pusher() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("cadgate.toml");
    std::fs::write(
        &config,
        format!(
            "[hook]\nuser_variable = \"CONFIGURED_PUSHER\"\n\n{}",
            scenarios::cadgate_config()
        ),
    )
    .expect("config");
    let repo = dir.path().join("root.git");
    bare_repository(&repo);
    let out = install(&config, "root", &repo, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = format!("file://{}", repo.display());
    let client = GitClient::new().with_env("CONFIGURED_PUSHER", "alice");
    client.git(&["clone", "-q", &url, "w"]);
    client.commit_package("w", "pkg", &[], "pkg");
    let out = client.git(&["-C", "w", "push", "origin", "HEAD:refs/heads/drafts/pkg/ws"]);
    assert!(
        stderr(&out).contains("saved draft pkg workspace ws"),
        "{}",
        stderr(&out)
    );
    // A reader named the same way is still only a reader.
    let reader = GitClient::new().with_env("CONFIGURED_PUSHER", "rita");
    reader.git(&["clone", "-q", &url, "w"]);
    reader.commit_package("w", "pkg", &[], "pkg");
    let out = reader.git_fails(&[
        "-C",
        "w",
        "push",
        "origin",
        "HEAD:refs/heads/drafts/pkg/other",
    ]);
    assert!(stderr(&out).contains("'reader'"), "{}", stderr(&out));
}

#[test]
fn installing_into_a_repository_named_relatively_puts_the_hook_in_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("cadgate.toml");
    std::fs::write(&config, scenarios::cadgate_config()).expect("config");
    let repo = dir.path().join("root.git");
    bare_repository(&repo);
    // `cadgate hook install … root.git` run in the repository's parent.
    let out = std::process::Command::new(cadgate_bin())
        .current_dir(dir.path())
        .args(["hook", "install", "--config"])
        .arg(&config)
        .args([
            "--repository",
            "root",
            "--user-variable",
            PUSHER,
            "root.git",
        ])
        .output()
        .expect("run cadgate hook install");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(repo.join("hooks/proc-receive").exists());
    assert!(
        !repo.join("root.git").exists(),
        "installed below the repository"
    );
    let client = GitClient::new().with_env(PUSHER, "alice");
    client.git(&["clone", "-q", &format!("file://{}", repo.display()), "w"]);
    client.commit_package("w", "pkg", &[], "pkg");
    let out = client.git_fails(&["-C", "w", "push", "origin", "HEAD:main"]);
    assert!(
        stderr(&out).contains("[direct-push-to-branch]"),
        "{}",
        stderr(&out)
    );
    // Uninstalling by the same relative name removes it.
    let out = std::process::Command::new(cadgate_bin())
        .current_dir(dir.path())
        .args(["hook", "install", "--uninstall", "--config"])
        .arg(&config)
        .args(["--repository", "root", "root.git"])
        .output()
        .expect("run cadgate hook install --uninstall");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!repo.join("hooks/proc-receive").exists());
}

#[test]
fn installing_into_an_empty_repository_creates_the_registered_branch_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("cadgate.toml");
    std::fs::write(&config, scenarios::cadgate_config()).expect("config");
    let repo = dir.path().join("root.git");
    GitClient::new().git(&[
        "init",
        "-q",
        "--bare",
        "-b",
        "trunk",
        &repo.display().to_string(),
    ]);
    let out = install(&config, "root", &repo, &["--user-variable", PUSHER]);
    assert!(out.status.success(), "{}", stderr(&out));
    // As the server creates it on start: one commit with a README, no package.
    let main = server_ref(&repo, "refs/heads/main").expect("the branch was created");
    assert_eq!(
        server_git(&repo, &["log", "--format=%s", "main"]),
        "Initial commit: Creating main branch"
    );
    assert_eq!(
        server_git(&repo, &["ls-tree", "--name-only", "main"]),
        "README.md"
    );
    // HEAD named git's default branch, which does not exist: now ours.
    assert_eq!(
        server_git(&repo, &["symbolic-ref", "HEAD"]),
        "refs/heads/main"
    );
    let sibling = dir.path().join("root.published.git");
    assert_eq!(server_ref(&sibling, "refs/heads/main"), Some(main.clone()));
    // Installing again leaves it as it is.
    let out = install(&config, "root", &repo, &["--user-variable", PUSHER]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server_ref(&repo, "refs/heads/main"), Some(main));
    // And the lifecycle runs on it: a draft is proposed and published.
    let host = FileHostAt(repo.clone());
    let lab = scenarios::Lab::new(&host, ROOT, "first");
    let f = lab.f();
    assert_eq!(lab.release(&f, "ws", "n: 1\n"), 1);
}

/// One hosted repository, pushed to over `file://` as the user `PUSHER` names.
struct FileHostAt(PathBuf);

impl Transport for FileHostAt {
    fn name(&self) -> String {
        "file:// with the hook, one repository".into()
    }

    fn clone_as(&self, user: &str, _repository: &str) -> GitClient {
        let client = GitClient::new().with_env(PUSHER, user);
        client.git(&["clone", "-q", &format!("file://{}", self.0.display()), "w"]);
        client
    }

    fn repository_dir(&self, _repository: &str) -> PathBuf {
        self.0.clone()
    }
}

/// M3 in hook mode: Porch's removal of a package the branch holds without
/// revisions (porch pkg/externalrepo/git/git.go 1741–1748, 1318–1365,
/// 638–641) is judged by the installed hook as over the server.
#[test]
fn porch_removes_a_package_from_the_branch_over_file_urls() {
    let host = FileHost::start();
    let repo = host.repository_dir("root");
    // A package put on main before cadgate guarded the repository.
    let seed = GitClient::new();
    seed.git(&["clone", "-q", &format!("file://{}", repo.display()), "s"]);
    seed.commit_package("s", "legacy", &[("data.yaml", b"n: 1\n")], "legacy");
    server_git(
        &repo,
        &[
            "fetch",
            "-q",
            &seed.path("s").display().to_string(),
            "+refs/heads/main:refs/heads/main",
        ],
    );
    let url = format!("file://{}", repo.display());
    let porch = |user: &str| {
        cadgate_integration::porch::Porch::with_client(
            GitClient::new().with_env(PUSHER, user),
            &url,
            "main",
        )
    };
    let (alice, bob) = (porch("alice"), porch("bob"));
    let out = alice.propose_delete_placeholder("legacy");
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let (out, _) = alice.delete_placeholder("legacy");
    assert!(!out.status.success(), "an author removed a package");
    let text = format!("{}\n{}", stdout(&out), stderr(&out));
    assert!(text.contains("[role]"), "{text}");
    let (out, delete) = bob.delete_placeholder("legacy");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server_ref(&repo, "refs/heads/main"), Some(delete));
    assert_eq!(
        server_ref(&repo, "refs/heads/deletionProposed/legacy/main"),
        None
    );
}
