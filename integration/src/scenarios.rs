//! The lifecycle scenario list of contract §6, written once and run against
//! any way of reaching a repository (a [`Transport`]): through the cadgate
//! server today, and through other hosts running cadgate's hooks.
//!
//! Each scenario drives real `git push`es as the users of [`USERS`] and
//! checks what a user would see: the refs on the server, the trees of the
//! registered branch, the `remote:` lines and the `[rule]` of a refusal. A
//! refusal must also leave every ref of the repository as it was.
//!
//! Every scenario works on its own package (named after the scenario), in one
//! of three [`Layout`]s: packages at the repository root, nested packages
//! (`x/b/c`), and packages below a repository `directory`.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Output;
use std::rc::Rc;

use crate::{kptfile, stderr, GitClient};

/// The users every transport must know, with their role on every repository.
pub const USERS: &[(&str, &str)] = &[
    ("rita", "reader"),
    ("alice", "author"),
    ("bob", "approver"),
    ("carol", "approver"),
    ("ada", "admin"),
];

/// The registered branch of every scenario repository.
pub const BRANCH: &str = "main";

/// How scenarios reach a repository.
pub trait Transport {
    /// A short name for failure messages.
    fn name(&self) -> String;
    /// A git client acting as `user` that has cloned `repository` into `w`
    /// (with `origin` pointing at it).
    fn clone_as(&self, user: &str, repository: &str) -> GitClient;
    /// The repository's bare directory on the host, for checking refs.
    fn repository_dir(&self, repository: &str) -> PathBuf;
    /// Called after every push a scenario makes, accepted or refused (a
    /// transport that also serves an API checks it against the refs here).
    fn after_push(&self, _repository: &str) {}
}

/// Git over HTTP through a running cadgate server.
pub struct CadgateServer {
    /// The server.
    pub server: crate::Server,
}

impl CadgateServer {
    /// Start a server with [`cadgate_config`] plus `extra` config text.
    pub fn start(extra: &str) -> Self {
        Self {
            server: crate::Server::start(&format!("{}{extra}", cadgate_config())),
        }
    }
}

impl Transport for CadgateServer {
    fn name(&self) -> String {
        "cadgate server".into()
    }

    fn clone_as(&self, user: &str, repository: &str) -> GitClient {
        let client = GitClient::new();
        client.git(&[
            "clone",
            "-q",
            &self.server.url_as(&crate::TestUser::new(user), repository),
            "w",
        ]);
        client
    }

    fn repository_dir(&self, repository: &str) -> PathBuf {
        self.server.repo_dir(repository)
    }
}

/// Where a scenario's packages live.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// The repository's name.
    pub repository: &'static str,
    /// Its `directory` ("" for the root).
    pub directory: &'static str,
    /// Package paths are `<slug>/b/c` rather than `<slug>`.
    pub nested: bool,
}

/// Packages at the root of repository `root`.
pub const ROOT: Layout = Layout {
    repository: "root",
    directory: "",
    nested: false,
};
/// Nested packages `<slug>/b/c` in repository `nested`.
pub const NESTED: Layout = Layout {
    repository: "nested",
    directory: "",
    nested: true,
};
/// Packages below `catalog/` in repository `catalog`.
pub const DIRECTORY: Layout = Layout {
    repository: "catalog",
    directory: "catalog",
    nested: false,
};
/// All three.
pub const LAYOUTS: [Layout; 3] = [ROOT, NESTED, DIRECTORY];

impl Layout {
    /// The package path `F` of the package named `slug`.
    pub fn package(&self, slug: &str) -> String {
        let below = if self.nested {
            format!("{slug}/b/c")
        } else {
            slug.to_string()
        };
        if self.directory.is_empty() {
            below
        } else {
            format!("{}/{below}", self.directory)
        }
    }
}

/// The `[[repository]]` blocks and `[[user]]` table the scenarios expect,
/// for a cadgate config (self-approval off, the default).
pub fn cadgate_config() -> String {
    cadgate_config_with(|_| String::new())
}

/// [`cadgate_config`] with `extra` lines in each `[[repository]]` block.
pub fn cadgate_config_with(extra: impl Fn(&Layout) -> String) -> String {
    let mut config = String::from("[policy]\nself_approval = false\n\n");
    for layout in LAYOUTS {
        config.push_str(&format!(
            "[[repository]]\nname = \"{}\"\nbranch = \"{BRANCH}\"\ndirectory = \"{}\"\n{}\n",
            layout.repository,
            layout.directory,
            extra(&layout)
        ));
    }
    for (user, role) in USERS {
        config.push_str(&crate::TestUser::new(user).config(&[role], &[]));
        config.push('\n');
    }
    config
}

/// One scenario.
pub type Scenario = fn(&Lab);

/// Every row of contract §6, allowed and refused, plus the rules around it.
pub const SCENARIOS: &[(&str, Scenario)] = &[
    ("drafts", drafts),
    ("draft-refusals", draft_refusals),
    ("nesting", nesting),
    ("proposing", proposing),
    ("rejecting", rejecting),
    ("publishing", publishing),
    ("stale", stale_proposal),
    ("deleting-drafts", deleting_drafts),
    ("deletion-review", deletion_review),
    ("approving-deletion", approving_deletion),
    ("pinned", pinned_revision),
    ("other-refs", other_refs),
    ("atomic", atomic_push),
];

/// Run every scenario in `layout`.
pub fn run_all(transport: &dyn Transport, layout: Layout) {
    for (name, scenario) in SCENARIOS {
        let lab = Lab::new(transport, layout, name);
        scenario(&lab);
    }
}

/// A scenario's world: a transport, a layout, and one package.
pub struct Lab<'t> {
    transport: &'t dyn Transport,
    layout: Layout,
    slug: String,
    clients: RefCell<HashMap<String, Rc<GitClient>>>,
}

impl<'t> Lab<'t> {
    /// A lab for the package named `slug`.
    pub fn new(transport: &'t dyn Transport, layout: Layout, slug: &str) -> Self {
        Self {
            transport,
            layout,
            slug: slug.to_string(),
            clients: RefCell::new(HashMap::new()),
        }
    }

    fn context(&self) -> String {
        format!(
            "[{} / {} / {}]",
            self.transport.name(),
            self.layout.repository,
            self.slug
        )
    }

    /// The scenario's package `F`.
    pub fn f(&self) -> String {
        self.layout.package(&self.slug)
    }

    /// Another package of this scenario: `F` of `<slug>-<suffix>`.
    pub fn other(&self, suffix: &str) -> String {
        self.layout.package(&format!("{}-{suffix}", self.slug))
    }

    /// `user`'s client, cloning on first use.
    fn handle(&self, user: &str) -> Rc<GitClient> {
        let existing = self.clients.borrow().get(user).cloned();
        match existing {
            Some(client) => client,
            None => {
                let client = Rc::new(self.transport.clone_as(user, self.layout.repository));
                self.clients
                    .borrow_mut()
                    .insert(user.to_string(), client.clone());
                client
            }
        }
    }

    /// `user`'s client, fetched up to date with the server (`origin/*`, and
    /// tags pruned to the server's).
    pub fn client(&self, user: &str) -> Rc<GitClient> {
        let client = self.handle(user);
        client.git_in(
            "w",
            &[
                "fetch",
                "-q",
                "--prune",
                "--prune-tags",
                "--force",
                "origin",
            ],
        );
        client
    }

    /// Commit `writes` (path → content, `None` deletes) on top of `base`
    /// (after a fetch; `None`: a commit without parents) in `user`'s work
    /// tree, leaving it checked out; returns the commit.
    pub fn commit(
        &self,
        user: &str,
        base: Option<&str>,
        writes: &[(String, Option<String>)],
    ) -> String {
        let client = self.client(user);
        client.git_in(
            "w",
            &["checkout", "-q", "--detach", base.unwrap_or("origin/main")],
        );
        if base.is_none() {
            client.git_in("w", &["rm", "-rqf", "--ignore-unmatch", "."]);
        }
        for (path, content) in writes {
            let full = client.path("w").join(path);
            match content {
                Some(text) => {
                    if let Some(parent) = full.parent() {
                        std::fs::create_dir_all(parent).expect("mkdir");
                    }
                    std::fs::write(&full, text).expect("write");
                }
                None => {
                    let _ = std::fs::remove_file(&full);
                }
            }
        }
        client.git_in("w", &["add", "-A"]);
        let tree = client.git_in("w", &["write-tree"]);
        let mut args = vec!["commit-tree", tree.as_str(), "-m", "scenario change"];
        if base.is_some() {
            args.extend(["-p", "HEAD"]);
        }
        let commit = client.git_in("w", &args);
        client.git_in("w", &["checkout", "-q", "--detach", &commit]);
        commit
    }

    /// A commit on `origin/main` that writes package `package` with a valid
    /// Kptfile and `data.yaml` = `content`.
    pub fn package_commit(&self, user: &str, package: &str, content: &str) -> String {
        self.commit(
            user,
            Some("origin/main"),
            &[
                (format!("{package}/Kptfile"), Some(kptfile(package))),
                (format!("{package}/data.yaml"), Some(content.to_string())),
            ],
        )
    }

    /// Push `refspecs` as `user` and return what git did.
    pub fn push(&self, user: &str, refspecs: &[&str]) -> Output {
        let client = self.handle(user);
        let mut args = vec!["-C", "w", "push", "origin"];
        args.extend_from_slice(refspecs);
        let out = client.command(&args).output().expect("run git push");
        self.transport.after_push(self.layout.repository);
        out
    }

    /// Push and require success with `expect` among git's output.
    pub fn accept(&self, user: &str, refspecs: &[&str], expect: &str) -> String {
        let out = self.push(user, refspecs);
        let err = stderr(&out);
        assert!(
            out.status.success(),
            "{} push {refspecs:?} as {user} failed:\n{err}",
            self.context()
        );
        assert!(
            err.contains(expect),
            "{} push {refspecs:?} as {user}: expected {expect:?} in:\n{err}",
            self.context()
        );
        err
    }

    /// Push and require a refusal naming `[rule]`, with no ref changed.
    pub fn refuse(&self, user: &str, refspecs: &[&str], rule: &str) -> String {
        let before = self.refs();
        let out = self.push(user, refspecs);
        let err = stderr(&out);
        assert!(
            !out.status.success(),
            "{} push {refspecs:?} as {user} should be refused by [{rule}]:\n{err}",
            self.context()
        );
        assert!(
            err.contains(&format!("[{rule}]")),
            "{} push {refspecs:?} as {user}: expected [{rule}] in:\n{err}",
            self.context()
        );
        assert_eq!(
            before,
            self.refs(),
            "{} a refused push changed refs",
            self.context()
        );
        err
    }

    /// Push and require a refusal because `user`'s role is below `needed`,
    /// with no ref changed.
    pub fn refuse_role(&self, user: &str, refspecs: &[&str], needed: &str) {
        let before = self.refs();
        let out = self.push(user, refspecs);
        let err = stderr(&out);
        let held = role_of(user);
        assert!(
            !out.status.success()
                && err.contains(&format!("'{held}'"))
                // A host may turn a reader away before looking at the refs:
                // then the role named is the one any push needs.
                && (err.contains(&format!("'{needed}'")) || (held == "reader" && err.contains("'author'"))),
            "{} push {refspecs:?} as {user} ({held}) should be refused for needing '{needed}':\n{err}",
            self.context()
        );
        assert_eq!(
            before,
            self.refs(),
            "{} a refused push changed refs",
            self.context()
        );
    }

    /// Every ref of the repository on the host.
    pub fn refs(&self) -> BTreeMap<String, String> {
        let dir = self.transport.repository_dir(self.layout.repository);
        crate::server_git(&dir, &["for-each-ref", "--format=%(refname) %(objectname)"])
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(name, oid)| (name.to_string(), oid.to_string()))
            .collect()
    }

    /// One ref on the host.
    pub fn server_ref(&self, name: &str) -> Option<String> {
        self.refs().remove(name)
    }

    /// The refs under `prefix` on the host.
    pub fn refs_under(&self, prefix: &str) -> Vec<String> {
        self.refs()
            .into_keys()
            .filter(|name| name.starts_with(prefix))
            .collect()
    }

    /// `git` on the host's repository; trimmed stdout.
    pub fn server_git(&self, args: &[&str]) -> String {
        crate::server_git(&self.transport.repository_dir(self.layout.repository), args)
    }

    /// The object at `rev:path` on the host, if any.
    pub fn object(&self, rev: &str, path: &str) -> Option<String> {
        let dir = self.transport.repository_dir(self.layout.repository);
        let out = std::process::Command::new("git")
            .args(["-c", "safe.directory=*", "--git-dir"])
            .arg(&dir)
            .args(["rev-parse", "--verify", "-q", &format!("{rev}:{path}")])
            .output()
            .expect("run git");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    // ---- lifecycle steps that must succeed ------------------------------

    /// `user` saves a draft of `package` in `ws` with `content`; returns the commit.
    pub fn draft(&self, user: &str, package: &str, ws: &str, content: &str) -> String {
        let commit = self.package_commit(user, package, content);
        self.accept(
            user,
            &[&format!("+HEAD:refs/heads/drafts/{package}/{ws}")],
            &format!("saved draft {package} workspace {ws}"),
        );
        commit
    }

    /// `user` proposes the current draft `package`/`ws`.
    pub fn propose(&self, user: &str, package: &str, ws: &str) -> String {
        let tip = self
            .server_ref(&format!("refs/heads/drafts/{package}/{ws}"))
            .expect("a draft to propose");
        self.client(user);
        self.accept(
            user,
            &[&format!("{tip}:refs/heads/proposed/{package}/{ws}")],
            &format!("proposed {package} workspace {ws}"),
        );
        tip
    }

    /// `user` publishes the proposal `package`/`ws`; returns its revision.
    pub fn publish(&self, user: &str, package: &str, ws: &str) -> u64 {
        let tip = self
            .server_ref(&format!("refs/heads/proposed/{package}/{ws}"))
            .expect("a proposal to publish");
        self.client(user);
        let err = self.accept(
            user,
            &[&format!("+{tip}:refs/heads/{BRANCH}")],
            &format!("published {package} v"),
        );
        let marker = format!("published {package} v");
        let rest = &err[err.find(&marker).map(|i| i + marker.len()).unwrap_or(0)..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a revision number in the publish message")
    }

    /// alice drafts and proposes, bob publishes; returns the revision.
    pub fn release(&self, package: &str, ws: &str, content: &str) -> u64 {
        self.draft("alice", package, ws, content);
        self.propose("alice", package, ws);
        self.publish("bob", package, ws)
    }

    /// `user` proposes deleting `package` vN.
    pub fn propose_deletion(&self, user: &str, package: &str, revision: u64) {
        self.client(user);
        self.accept(
            user,
            &[&format!(
                "refs/tags/{package}/v{revision}:refs/heads/deletionProposed/{package}/v{revision}"
            )],
            &format!("proposed deleting {package} v{revision}"),
        );
    }
}

/// The role of a scenario user.
pub fn role_of(user: &str) -> &'static str {
    USERS
        .iter()
        .find(|(u, _)| *u == user)
        .map(|(_, r)| *r)
        .expect("a scenario user")
}

fn yes(text: &str) -> Option<String> {
    Some(text.to_string())
}

// ---- the scenarios ------------------------------------------------------

/// Row 1 allowed: create, fast-forward and force-push a draft.
fn drafts(lab: &Lab) {
    let f = lab.f();
    let draft = format!("refs/heads/drafts/{f}/ws1");
    let first = lab.draft("alice", &f, "ws1", "n: 1\n");
    assert_eq!(lab.server_ref(&draft), Some(first.clone()));
    // Fast-forward.
    let second = lab.commit(
        "alice",
        Some(&first),
        &[(format!("{f}/more.yaml"), yes("n: 2\n"))],
    );
    lab.accept(
        "alice",
        &[&format!("{second}:{draft}")],
        &format!("saved draft {f} workspace ws1"),
    );
    assert_eq!(lab.server_ref(&draft), Some(second));
    // Force-push of a rewritten draft.
    let rewritten = lab.package_commit("alice", &f, "n: 3\n");
    lab.accept(
        "alice",
        &[&format!("+{rewritten}:{draft}")],
        &format!("saved draft {f} workspace ws1"),
    );
    assert_eq!(lab.server_ref(&draft), Some(rewritten));
    // Nothing is published by saving drafts.
    assert!(lab.refs_under(&format!("refs/tags/{f}/")).is_empty());
}

/// Row 1 refused: every package rule of a draft.
fn draft_refusals(lab: &Lab) {
    let f = lab.f();
    let to = |ws: &str| format!("HEAD:refs/heads/drafts/{f}/{ws}");
    let kpt = format!("{f}/Kptfile");
    // No Kptfile.
    lab.commit(
        "alice",
        Some("origin/main"),
        &[(format!("{f}/data.yaml"), yes("a: 1\n"))],
    );
    lab.refuse("alice", &[&to("nokpt")], "draft-needs-kptfile");
    // A Kptfile that is not YAML, not a Kptfile, misnamed, or has a broken lock.
    let leaf = f.rsplit('/').next().unwrap_or(&f).to_string();
    for (ws, text) in [
        ("unparsable", "apiVersion: [kpt.dev/v1\n".to_string()),
        (
            "notkpt",
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {leaf}\n"),
        ),
        (
            "misnamed",
            "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: other\n".to_string(),
        ),
        (
            "badlock",
            format!("{}upstreamLock:\n  type: git\n  git:\n    repo: https://example.com/x.git\n    ref: x/v1\n    commit: abc\n", kptfile(&f)),
        ),
    ] {
        lab.commit("alice", Some("origin/main"), &[(kpt.clone(), Some(text))]);
        let err = lab.refuse("alice", &[&to(ws)], "kptfile");
        assert!(err.contains(&format!("{f}/Kptfile")), "{err}");
    }
    // Changes outside the package: a root file, or a second package.
    let base = lab.package_commit("alice", &f, "a: 1\n");
    lab.commit(
        "alice",
        Some(&base),
        &[("README.md".into(), yes("hello\n"))],
    );
    let err = lab.refuse("alice", &[&to("outside")], "draft-changes-one-package");
    assert!(err.contains("README.md"), "{err}");
    let two = lab.other("two");
    lab.commit(
        "alice",
        Some(&base),
        &[
            (format!("{two}/Kptfile"), Some(kptfile(&two))),
            (format!("{two}/data.yaml"), yes("b: 1\n")),
        ],
    );
    lab.refuse("alice", &[&to("twopackages")], "draft-changes-one-package");
    // No history shared with the branch.
    lab.commit("alice", None, &[(kpt.clone(), Some(kptfile(&f)))]);
    lab.refuse("alice", &[&to("orphan")], "draft-based-on-branch");
    // New workspace names are RFC 1123 labels (Porch's rule); names no
    // workspace can have are outside the layout.
    lab.package_commit("alice", &f, "a: 1\n");
    lab.refuse("alice", &[&to("Upper")], "workspace-name");
    lab.refuse("alice", &[&to("-dash")], "unknown-namespace");
    if !lab.layout.directory.is_empty() {
        // A package outside the repository's directory.
        lab.refuse(
            "alice",
            &[&format!("HEAD:refs/heads/drafts/elsewhere/{}/ws", lab.slug)],
            "unknown-namespace",
        );
    }
    // A workspace in use by a proposal or a published revision.
    lab.draft("alice", &f, "taken", "a: 2\n");
    lab.propose("alice", &f, "taken");
    lab.package_commit("alice", &f, "a: 3\n");
    lab.refuse("alice", &[&to("taken")], "workspace-is-proposed");
    lab.publish("bob", &f, "taken");
    lab.package_commit("alice", &f, "a: 4\n");
    lab.refuse("alice", &[&to("taken")], "workspace-is-unique");
}

/// Row 1: a package is not inside or around another.
fn nesting(lab: &Lab) {
    let f = lab.f();
    // A draft whose tree holds a second Kptfile below the package.
    lab.commit(
        "alice",
        Some("origin/main"),
        &[
            (format!("{f}/Kptfile"), Some(kptfile(&f))),
            (
                format!("{f}/sub/Kptfile"),
                Some(kptfile(&format!("{f}/sub"))),
            ),
        ],
    );
    lab.refuse(
        "alice",
        &[&format!("HEAD:refs/heads/drafts/{f}/around")],
        "packages-do-not-nest",
    );
    // With F/inner published, neither F (around it) nor F/inner/deeper
    // (inside it) can be drafted.
    let inner = format!("{f}/inner");
    lab.release(&inner, "ws", "inner: 1\n");
    lab.package_commit("alice", &f, "outer: 1\n");
    let err = lab.refuse(
        "alice",
        &[&format!("HEAD:refs/heads/drafts/{f}/outer")],
        "packages-do-not-nest",
    );
    assert!(err.contains(&inner), "{err}");
    let deeper = format!("{inner}/deeper");
    lab.package_commit("alice", &deeper, "deeper: 1\n");
    lab.refuse(
        "alice",
        &[&format!("HEAD:refs/heads/drafts/{deeper}/ws")],
        "packages-do-not-nest",
    );
    // The inner package itself can still get new revisions.
    lab.draft("alice", &inner, "ws2", "inner: 2\n");
}

/// Row 2: propose, and its refusals.
fn proposing(lab: &Lab) {
    let f = lab.f();
    let first = lab.draft("alice", &f, "ws", "n: 1\n");
    let second = lab.commit(
        "alice",
        Some(&first),
        &[(format!("{f}/data.yaml"), yes("n: 2\n"))],
    );
    lab.accept(
        "alice",
        &[&format!("{second}:refs/heads/drafts/{f}/ws")],
        "saved draft",
    );
    let proposed = format!("refs/heads/proposed/{f}/ws");
    // Only the current draft tip can be proposed.
    lab.refuse(
        "alice",
        &[&format!("{first}:{proposed}")],
        "propose-the-draft-tip",
    );
    // There must be a draft.
    lab.refuse(
        "alice",
        &[&format!("{second}:refs/heads/proposed/{f}/nodraft")],
        "propose-needs-a-draft",
    );
    // Proposing moves the draft to proposed/ in one step.
    lab.propose("alice", &f, "ws");
    assert_eq!(lab.server_ref(&proposed), Some(second.clone()));
    assert_eq!(lab.server_ref(&format!("refs/heads/drafts/{f}/ws")), None);
    // A proposal does not change.
    let third = lab.commit(
        "alice",
        Some(&second),
        &[(format!("{f}/data.yaml"), yes("n: 3\n"))],
    );
    lab.refuse(
        "alice",
        &[&format!("+{third}:{proposed}")],
        "proposal-is-immutable",
    );
}

/// Row 3: reject a proposal.
fn rejecting(lab: &Lab) {
    let f = lab.f();
    lab.draft("alice", &f, "ws", "n: 1\n");
    let tip = lab.propose("alice", &f, "ws");
    let draft = format!("refs/heads/drafts/{f}/ws");
    // Only the proposal's own commit can go back to drafts/.
    let other = lab.package_commit("bob", &f, "n: 2\n");
    lab.refuse(
        "bob",
        &[&format!("{other}:{draft}")],
        "workspace-is-proposed",
    );
    lab.accept(
        "bob",
        &[&format!("{tip}:{draft}")],
        &format!("rejected the proposal of {f} workspace ws"),
    );
    assert_eq!(lab.server_ref(&draft), Some(tip));
    assert_eq!(lab.server_ref(&format!("refs/heads/proposed/{f}/ws")), None);
    // The author can work on it again.
    lab.draft("alice", &f, "ws", "n: 3\n");
}

/// Row 4: publish — the approval commit, the tag, the branch — and what
/// may not be pushed to the branch or tags.
fn publishing(lab: &Lab) {
    let f = lab.f();
    let before = lab.server_ref("refs/heads/main").expect("main");
    lab.draft("alice", &f, "ws1", "n: 1\n");
    let proposal = lab.propose("alice", &f, "ws1");
    assert_eq!(lab.publish("bob", &f, "ws1"), 1);
    let main = lab.server_ref("refs/heads/main").expect("main");
    assert_eq!(
        lab.server_ref(&format!("refs/tags/{f}/v1")),
        Some(main.clone())
    );
    assert_eq!(
        lab.server_git(&["rev-parse", &format!("{main}^1"), &format!("{main}^2")]),
        format!("{before}\n{proposal}")
    );
    assert_eq!(lab.object(&main, &f), lab.object(&proposal, &f));
    let message = lab.server_git(&["log", "-1", "--format=%B", &main]);
    for line in [
        format!("Approving package revision {f}/1"),
        format!("kpt:{{\"package\":\"{f}\",\"workspaceName\":\"ws1\",\"revision\":\"1\"}}"),
        "Proposed-by: alice".to_string(),
        "Approved-by: bob".to_string(),
    ] {
        assert!(message.contains(&line), "{line:?} not in:\n{message}");
    }
    assert_eq!(lab.server_git(&["log", "-1", "--format=%an", &main]), "bob");
    // The approver's next fetch shows where the branch really went.
    let bob = lab.client("bob");
    assert_eq!(bob.git_in("w", &["rev-parse", "origin/main"]), main);
    assert!(lab
        .refs_under(&format!("refs/heads/proposed/{f}/"))
        .is_empty());
    // The next publish gets the next number.
    lab.draft("alice", &f, "ws2", "n: 2\n");
    lab.propose("alice", &f, "ws2");
    assert_eq!(lab.publish("carol", &f, "ws2"), 2);

    // Self-approval is off: bob cannot publish his own proposal; carol can.
    lab.draft("bob", &f, "ws3", "n: 3\n");
    let own = lab.propose("bob", &f, "ws3");
    lab.refuse(
        "bob",
        &[&format!("+{own}:refs/heads/main")],
        "no-self-approval",
    );
    assert_eq!(lab.publish("carol", &f, "ws3"), 3);

    // The branch only moves by publishing.
    let arbitrary = lab.package_commit("ada", &f, "n: 4\n");
    lab.refuse(
        "ada",
        &[&format!("+{arbitrary}:refs/heads/main")],
        "direct-push-to-branch",
    );
    lab.refuse("ada", &[":refs/heads/main"], "branch-is-registered");
    // Tags are made by publishing and never moved.
    lab.refuse(
        "ada",
        &[&format!("{arbitrary}:refs/tags/{f}/v4")],
        "tag-is-made-by-publishing",
    );
    lab.refuse(
        "ada",
        &[&format!("+{arbitrary}:refs/tags/{f}/v1")],
        "tag-is-made-by-publishing",
    );
}

/// A stale proposal is refused; rebased and proposed again, it publishes.
fn stale_proposal(lab: &Lab) {
    let f = lab.f();
    lab.release(&f, "base", "n: 0\n");
    // Two drafts from the same branch tip, changing different files.
    lab.commit(
        "alice",
        Some("origin/main"),
        &[(format!("{f}/a.yaml"), yes("a: 1\n"))],
    );
    lab.accept(
        "alice",
        &[&format!("HEAD:refs/heads/drafts/{f}/wsa")],
        "saved draft",
    );
    let b = lab.commit(
        "alice",
        Some("origin/main"),
        &[(format!("{f}/b.yaml"), yes("b: 1\n"))],
    );
    lab.accept(
        "alice",
        &[&format!("HEAD:refs/heads/drafts/{f}/wsb")],
        "saved draft",
    );
    lab.propose("alice", &f, "wsa");
    lab.propose("alice", &f, "wsb");
    assert_eq!(lab.publish("bob", &f, "wsa"), 2);
    let err = lab.refuse("bob", &[&format!("+{b}:refs/heads/main")], "stale-proposal");
    assert!(err.contains("rebase"), "{err}");
    // The author withdraws, rebases and proposes again.
    lab.accept(
        "alice",
        &[&format!(":refs/heads/proposed/{f}/wsb")],
        &format!("deleted {f} workspace wsb"),
    );
    let client = lab.client("alice");
    client.git_in("w", &["checkout", "-q", "--detach", &b]);
    client.git_in("w", &["rebase", "-q", "origin/main"]);
    lab.accept(
        "alice",
        &[&format!("+HEAD:refs/heads/drafts/{f}/wsb")],
        "saved draft",
    );
    lab.propose("alice", &f, "wsb");
    assert_eq!(lab.publish("bob", &f, "wsb"), 3);
    // Nothing was lost: the branch holds both changes.
    for file in ["a.yaml", "b.yaml", "data.yaml"] {
        assert!(
            lab.object("refs/heads/main", &format!("{f}/{file}"))
                .is_some(),
            "{f}/{file} missing on main"
        );
    }
}

/// Row 5: deleting a draft and a proposal.
fn deleting_drafts(lab: &Lab) {
    let f = lab.f();
    lab.draft("alice", &f, "gone", "n: 1\n");
    lab.accept(
        "alice",
        &[&format!(":refs/heads/drafts/{f}/gone")],
        &format!("deleted {f} workspace gone"),
    );
    lab.draft("alice", &f, "withdrawn", "n: 2\n");
    lab.propose("alice", &f, "withdrawn");
    lab.accept(
        "alice",
        &[&format!(":refs/heads/proposed/{f}/withdrawn")],
        &format!("deleted {f} workspace withdrawn"),
    );
    assert!(lab
        .refs_under(&format!("refs/heads/drafts/{f}/"))
        .is_empty());
    assert!(lab
        .refs_under(&format!("refs/heads/proposed/{f}/"))
        .is_empty());
    // The workspace can be used again.
    lab.draft("alice", &f, "gone", "n: 3\n");
}

/// Rows 6 and 7: proposing and rejecting a deletion.
fn deletion_review(lab: &Lab) {
    let f = lab.f();
    lab.release(&f, "ws", "n: 1\n");
    let tag = format!("refs/tags/{f}/v1");
    let marker = format!("refs/heads/deletionProposed/{f}/v1");
    // The deletion proposal points at the published commit.
    let other = lab.package_commit("alice", &f, "n: 2\n");
    lab.refuse(
        "alice",
        &[&format!("{other}:{marker}")],
        "deletion-proposal-at-the-tag",
    );
    lab.refuse(
        "alice",
        &[&format!("{tag}:refs/heads/deletionProposed/{f}/v9")],
        "no-such-revision",
    );
    lab.propose_deletion("alice", &f, 1);
    assert_eq!(lab.server_ref(&marker), lab.server_ref(&tag));
    lab.accept(
        "bob",
        &[&format!(":{marker}")],
        &format!("rejected deleting {f} v1"),
    );
    assert_eq!(lab.server_ref(&marker), None);
    assert!(lab.server_ref(&tag).is_some(), "the revision stays");
}

/// Row 8: approving deletions of the latest, an older, and the last revision.
fn approving_deletion(lab: &Lab) {
    let f = lab.f();
    lab.release(&f, "one", "n: 1\n");
    let v1 = lab.server_ref(&format!("refs/tags/{f}/v1")).expect("v1");
    lab.release(&f, "two", "n: 2\n");
    lab.release(&f, "three", "n: 3\n");
    let v3 = lab.server_ref(&format!("refs/tags/{f}/v3")).expect("v3");
    // Without a deletion proposal the tag stays.
    lab.refuse(
        "bob",
        &[&format!(":refs/tags/{f}/v3")],
        "deletion-needs-a-proposal",
    );

    // An older revision: the branch keeps deploying the latest.
    lab.propose_deletion("alice", &f, 2);
    let main = lab.server_ref("refs/heads/main");
    lab.accept(
        "bob",
        &[&format!(":refs/tags/{f}/v2")],
        &format!("deleted {f} v2"),
    );
    assert_eq!(lab.server_ref("refs/heads/main"), main);

    // The latest: the branch goes back to the previous revision's tree.
    lab.propose_deletion("alice", &f, 3);
    lab.accept(
        "bob",
        &[&format!(":refs/tags/{f}/v3")],
        &format!("deleted {f} v3; main now holds v1"),
    );
    assert_eq!(lab.object("refs/heads/main", &f), lab.object(&v1, &f));
    assert_ne!(lab.object(&v3, &f), lab.object(&v1, &f));
    let message = lab.server_git(&["log", "-1", "--format=%B", "refs/heads/main"]);
    assert!(message.contains(&format!("Delete {f}/v3")), "{message}");
    assert!(message.contains("Approved-by: bob"), "{message}");

    // The last one: the package leaves the branch.
    lab.propose_deletion("alice", &f, 1);
    lab.accept(
        "bob",
        &[&format!(":refs/tags/{f}/v1")],
        &format!("deleted {f} v1; main no longer holds {f}"),
    );
    assert_eq!(lab.object("refs/heads/main", &f), None);
    for namespace in [
        "refs/heads/drafts",
        "refs/heads/proposed",
        "refs/heads/deletionProposed",
        "refs/tags",
    ] {
        assert!(
            lab.refs_under(&format!("{namespace}/{f}/")).is_empty(),
            "orphaned refs under {namespace}/{f}/"
        );
    }
    // N is 1 + the highest existing revision (contract §7): with none left,
    // the package starts again at 1.
    assert_eq!(lab.release(&f, "again", "n: 4\n"), 1);
}

/// Row 8 refused: a revision another package's upstreamLock pins stays.
fn pinned_revision(lab: &Lab) {
    let f = lab.f();
    lab.release(&f, "ws", "n: 1\n");
    let pinned = lab.server_git(&["rev-parse", &format!("refs/tags/{f}/v1^{{commit}}")]);
    let downstream = lab.other("down");
    let lock = format!(
        "{}upstream:\n  type: git\n  git:\n    repo: https://example.com/blueprints.git\n    directory: /{f}\n    ref: {f}/v1\n  updateStrategy: resource-merge\nupstreamLock:\n  type: git\n  git:\n    repo: https://example.com/blueprints.git\n    directory: /{f}\n    ref: {f}/v1\n    commit: {pinned}\n",
        kptfile(&downstream)
    );
    lab.commit(
        "alice",
        Some("origin/main"),
        &[(format!("{downstream}/Kptfile"), Some(lock))],
    );
    lab.accept(
        "alice",
        &[&format!("HEAD:refs/heads/drafts/{downstream}/ws")],
        "saved draft",
    );
    lab.propose("alice", &downstream, "ws");
    lab.publish("bob", &downstream, "ws");
    lab.propose_deletion("alice", &f, 1);
    let err = lab.refuse(
        "bob",
        &[&format!(":refs/tags/{f}/v1")],
        "revision-is-pinned",
    );
    assert!(err.contains(&downstream), "{err}");
}

/// Everything outside the layout, and the server-owned audit trail.
fn other_refs(lab: &Lab) {
    let f = lab.f();
    let commit = lab.package_commit("ada", &f, "n: 1\n");
    for (refname, rule) in [
        ("refs/heads/feature".to_string(), "unknown-namespace"),
        (
            format!("refs/heads/{}-topic", lab.slug),
            "unknown-namespace",
        ),
        ("refs/tags/release".to_string(), "unknown-namespace"),
        ("refs/tags/v1.2.3".to_string(), "unknown-namespace"),
        ("refs/notes/cadgate".to_string(), "audit-is-server-owned"),
        ("refs/meta/config".to_string(), "unknown-namespace"),
    ] {
        lab.refuse("ada", &[&format!("+{commit}:{refname}")], rule);
    }
    // The audit trail records who proposed and approved.
    lab.release(&f, "ws", "n: 2\n");
    let note = |rev: &str| lab.server_git(&["notes", "--ref=cadgate", "show", rev]);
    let proposed = note("refs/heads/main^2");
    assert!(proposed.starts_with("proposed-by: alice "), "{proposed}");
    let approved = note("refs/heads/main");
    assert!(approved.starts_with("approved-by: bob "), "{approved}");
}

/// `git push --atomic`: one refused ref refuses the whole push.
fn atomic_push(lab: &Lab) {
    let f = lab.f();
    lab.package_commit("alice", &f, "n: 1\n");
    let before = lab.refs();
    let out = lab.push(
        "alice",
        &[
            "--atomic",
            &format!("HEAD:refs/heads/drafts/{f}/ok"),
            "HEAD:refs/heads/main",
        ],
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("[direct-push-to-branch]"), "{err}");
    assert_eq!(before, lab.refs(), "an atomic push half landed:\n{err}");
    // Without --atomic the good ref lands and the other is refused.
    let out = lab.push(
        "alice",
        &[
            &format!("HEAD:refs/heads/drafts/{f}/ok"),
            "HEAD:refs/heads/main",
        ],
    );
    assert!(!out.status.success());
    assert!(lab
        .server_ref(&format!("refs/heads/drafts/{f}/ok"))
        .is_some());
}

// ---- the role matrix ----------------------------------------------------

/// One transition of the role matrix: its name, the role it needs, how to
/// bring a fresh package into the state it starts from, and the push.
struct Step {
    name: &'static str,
    needs: &'static str,
    /// Prepare `F` (workspace `ws`) for the user who will push; returns
    /// what the push needs.
    setup: fn(&Lab, &str, &str, &str) -> String,
    /// The refspec, from what setup returned.
    refspec: fn(&str, &str, &str) -> String,
}

/// A draft of `f` in `ws` by alice; returns its commit.
fn drafted(lab: &Lab, f: &str, ws: &str, _: &str) -> String {
    lab.draft("alice", f, ws, &format!("ws: {ws}\n"))
}

/// A proposal of `f` in `ws` by alice; returns its commit.
fn proposed(lab: &Lab, f: &str, ws: &str, user: &str) -> String {
    drafted(lab, f, ws, user);
    lab.propose("alice", f, ws)
}

/// A published revision of `f` whose deletion alice proposed; returns N.
fn deletion_proposed(lab: &Lab, f: &str, ws: &str, _: &str) -> String {
    let n = lab.release(f, ws, "n: 1\n");
    lab.propose_deletion("alice", f, n);
    n.to_string()
}

const STEPS: &[Step] = &[
    Step {
        name: "save a draft",
        needs: "author",
        setup: |lab, f, _, user| lab.package_commit(user, f, "n: 1\n"),
        refspec: |f, ws, commit| format!("{commit}:refs/heads/drafts/{f}/{ws}"),
    },
    Step {
        name: "delete a draft",
        needs: "author",
        setup: drafted,
        refspec: |f, ws, _| format!(":refs/heads/drafts/{f}/{ws}"),
    },
    Step {
        name: "propose",
        needs: "author",
        setup: drafted,
        refspec: |f, ws, commit| format!("{commit}:refs/heads/proposed/{f}/{ws}"),
    },
    Step {
        name: "delete a proposal",
        needs: "author",
        setup: proposed,
        refspec: |f, ws, _| format!(":refs/heads/proposed/{f}/{ws}"),
    },
    Step {
        name: "propose a deletion",
        needs: "author",
        setup: |lab, f, ws, _| lab.release(f, ws, "n: 1\n").to_string(),
        refspec: |f, _, n| format!("refs/tags/{f}/v{n}:refs/heads/deletionProposed/{f}/v{n}"),
    },
    Step {
        name: "reject a proposal",
        needs: "approver",
        setup: proposed,
        refspec: |f, ws, commit| format!("{commit}:refs/heads/drafts/{f}/{ws}"),
    },
    Step {
        name: "publish",
        needs: "approver",
        setup: proposed,
        refspec: |_, _, commit| format!("+{commit}:refs/heads/{BRANCH}"),
    },
    Step {
        name: "reject a deletion",
        needs: "approver",
        setup: deletion_proposed,
        refspec: |f, _, n| format!(":refs/heads/deletionProposed/{f}/v{n}"),
    },
    Step {
        name: "approve a deletion",
        needs: "approver",
        setup: deletion_proposed,
        refspec: |f, _, n| format!(":refs/tags/{f}/v{n}"),
    },
];

const RANK: [&str; 4] = ["reader", "author", "approver", "admin"];

fn rank(role: &str) -> usize {
    RANK.iter().position(|r| *r == role).expect("a role")
}

/// Reader, author, approver and admin against every transition: each is
/// allowed exactly when the role is at least the one the transition needs,
/// and a refused attempt changes nothing.
pub fn role_matrix(transport: &dyn Transport, layout: Layout) {
    for (i, step) in STEPS.iter().enumerate() {
        let lab = Lab::new(transport, layout, &format!("roles{i}"));
        let f = lab.f();
        for (user, role) in [
            ("rita", "reader"),
            ("alice", "author"),
            ("bob", "approver"),
            ("ada", "admin"),
        ] {
            let ws = format!("as-{role}");
            let prepared = (step.setup)(&lab, &f, &ws, user);
            let refspec = (step.refspec)(&f, &ws, &prepared);
            lab.client(user);
            if rank(role) >= rank(step.needs) {
                let out = lab.push(user, &[&refspec]);
                assert!(
                    out.status.success(),
                    "{}: {role} may {} ({refspec}):\n{}",
                    lab.context(),
                    step.name,
                    stderr(&out)
                );
            } else {
                lab.refuse_role(user, &[&refspec], step.needs);
            }
        }
    }
}
