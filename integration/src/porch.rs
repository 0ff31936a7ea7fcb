//! A Porch emulation: the git operations Porch performs on a repository it
//! writes, with the same refs, commit shapes, messages and NON-atomic pushes,
//! so tests can run Porch's lifecycle through cadgate.
//!
//! Written from nephio-project/porch at commit
//! 74d82d569e3745235ce34a7db71fa7e958c508ff; every step names the file and
//! lines it follows (paths below `pkg/externalrepo/git/`). Porch pushes with
//! go-git's `Push` without `Atomic` (git.go 1449–1455, `pushAndCleanup`), so
//! every push here is a plain, non-atomic `git push`.

use std::process::Output;

use crate::{kptfile, GitClient};

/// A Porch instance writing to one repository through `url`, with its own
/// clone (`porch` in the client's home) as go-git's cached repository.
pub struct Porch {
    client: GitClient,
    url: String,
    branch: String,
}

/// Porch's annotation line (annotation.go 31–45, 73–81): `kpt:` followed by
/// the JSON of `gitAnnotation`, keys in struct order.
fn annotation(package: &str, workspace: &str, revision: Option<u64>) -> String {
    match revision {
        Some(n) => format!(
            "kpt:{{\"package\":\"{package}\",\"workspaceName\":\"{workspace}\",\"revision\":\"{n}\"}}"
        ),
        None => format!("kpt:{{\"package\":\"{package}\",\"workspaceName\":\"{workspace}\"}}"),
    }
}

/// The message of a commit Porch makes on a draft (git.go 1770–1830,
/// `UpdateDraftResources`): the task type's title (`formatCommitMessage`,
/// git.go 80–105) and a newline, then `annotateCommitMessage`
/// (annotation.go 73–81) appends `"\n\nkpt:" + json + "\n"`; the draft's
/// revision is `Revision2Str(0)` = `"0"` and the task is the one that caused
/// the commit (`task`, its JSON).
fn draft_message(title: &str, package: &str, workspace: &str, task: &str) -> String {
    format!(
        "{title}\n\n\nkpt:{{\"package\":\"{package}\",\"workspaceName\":\"{workspace}\",\"revision\":\"0\",\"task\":{task}}}\n"
    )
}

/// Porch's render task (`porchctl rpkg push`, and the render of a proposal:
/// engine.go 567, task/generictaskhandler.go 164, 227).
const RENDER_TASK: &str = r#"{"type":"render"}"#;

impl Porch {
    /// Porch with its cached clone of `url` (branch `branch`).
    pub fn new(url: &str, branch: &str) -> Self {
        Self::with_client(GitClient::new(), url, branch)
    }

    /// [`Porch::new`] with `client` (e.g. one that names the pusher for a
    /// hook-mode host).
    pub fn with_client(client: GitClient, url: &str, branch: &str) -> Self {
        client.git(&["clone", "-q", url, "porch"]);
        client.git_in("porch", &["config", "user.name", "porch"]);
        client.git_in("porch", &["config", "user.email", "porch@example.com"]);
        Self {
            client,
            url: url.to_string(),
            branch: branch.to_string(),
        }
    }

    /// Fetch everything before each operation, as `pushAndCleanup` does
    /// (git.go 1420–1430).
    fn fetch(&self) {
        self.client.git_in(
            "porch",
            &[
                "fetch",
                "-q",
                "--prune",
                "--prune-tags",
                "origin",
                "+refs/heads/*:refs/remotes/origin/*",
                "+refs/tags/*:refs/tags/*",
            ],
        );
    }

    /// The remote ref's current value, if any.
    pub fn remote_ref(&self, name: &str) -> Option<String> {
        let out = self
            .client
            .command(&["-C", "porch", "ls-remote", &self.url, name])
            .output()
            .expect("run git");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.ends_with(&format!("\t{name}")))
            .map(|l| l.split('\t').next().unwrap_or("").to_string())
    }

    /// A non-atomic push of `specs` (go-git `Push` without `Atomic`).
    fn push(&self, specs: &[String]) -> Output {
        let mut args = vec!["-C", "porch", "push", "--porcelain", "origin"];
        args.extend(specs.iter().map(String::as_str));
        self.client.command(&args).output().expect("run git")
    }

    fn commit_on(&self, parent: &str, files: &[(&str, &[u8])], message: &str) -> String {
        self.client
            .git_in("porch", &["checkout", "-q", "--detach", parent]);
        self.client.commit_files("porch", files, message)
    }

    /// init: a first draft of `package` on top of the branch (git.go 455–507
    /// `CreatePackageRevisionDraft`, pushed by `ClosePackageRevisionDraft`
    /// 1891–1903: `drafts/F/ws`, deleting no base).
    pub fn init(&self, package: &str, workspace: &str) -> Output {
        self.fetch();
        let kpt = kptfile(package);
        // `porchctl rpkg init` sends an init task with its default
        // description (cli/commands/rpkg/init/command.go).
        let message = draft_message(
            "Creating new empty revision",
            package,
            workspace,
            r#"{"type":"init","init":{"description":"sample description"}}"#,
        );
        let commit = self.commit_on(
            &format!("origin/{}", self.branch),
            &[(&format!("{package}/Kptfile"), kpt.as_bytes())],
            &message,
        );
        self.push(&[format!("{commit}:refs/heads/drafts/{package}/{workspace}")])
    }

    /// update: new resources (`porchctl rpkg push`), rendered and committed
    /// as `Rendering package` with the render task (task/
    /// generictaskhandler.go 170–227 `DoPRResourceMutations`), a child of the
    /// draft tip pushed to the same draft (draft.go `UpdateResources`;
    /// git.go 1891–1903).
    pub fn update(&self, package: &str, workspace: &str, file: &str, content: &str) -> Output {
        self.fetch();
        let path = format!("{package}/{file}");
        let message = draft_message("Rendering package", package, workspace, RENDER_TASK);
        let commit = self.commit_on(
            &format!("origin/drafts/{package}/{workspace}"),
            &[(&path, content.as_bytes())],
            &message,
        );
        self.push(&[format!("{commit}:refs/heads/drafts/{package}/{workspace}")])
    }

    /// edit: a new draft of a published package, copied from its revision
    /// `revision` — a commit on the branch tip (git.go 470–481: a draft's
    /// base is the branch) holding the revision's `F/`, message
    /// `Creating new revision by copying previous revision` (git.go 81,
    /// 1796–1813), pushed to `drafts/F/ws` (git.go 1891–1903).
    pub fn edit(&self, package: &str, workspace: &str, revision: u64) -> Output {
        self.fetch();
        self.client.git_in(
            "porch",
            &[
                "checkout",
                "-q",
                "--detach",
                &format!("origin/{}", self.branch),
            ],
        );
        self.client
            .git_in("porch", &["rm", "-rq", "--ignore-unmatch", "--", package]);
        self.client.git_in(
            "porch",
            &[
                "checkout",
                &format!("refs/tags/{package}/v{revision}"),
                "--",
                package,
            ],
        );
        let message = format!(
            "Creating new revision by copying previous revision\n\n{}\n",
            annotation(package, workspace, None)
        );
        self.client
            .git_in("porch", &["commit", "-q", "--allow-empty", "-m", &message]);
        let commit = self.last_commit();
        self.push(&[format!("{commit}:refs/heads/drafts/{package}/{workspace}")])
    }

    /// propose: Porch renders the draft, committing `Rendering package`
    /// (git.go 80, 89–95) as a child of the draft tip changing only `F/`, then
    /// pushes it to `proposed/F/ws` and deletes the draft base in the same
    /// push (git.go 1875–1889). Returns the push and the render commit.
    pub fn propose(&self, package: &str, workspace: &str) -> (Output, String) {
        self.fetch();
        let message = draft_message("Rendering package", package, workspace, RENDER_TASK);
        // The render's output differs with each draft it renders.
        let draft = format!("origin/drafts/{package}/{workspace}");
        let draft_tip = self.client.git_in("porch", &["rev-parse", &draft]);
        let rendered = format!("rendered-from: {draft_tip}\n");
        let render = self.commit_on(
            &draft,
            &[(&format!("{package}/.rendered"), rendered.as_bytes())],
            &message,
        );
        let out = self.push(&[
            format!("{render}:refs/heads/proposed/{package}/{workspace}"),
            format!(":refs/heads/drafts/{package}/{workspace}"),
        ]);
        (out, render)
    }

    /// reject: back to Draft — the proposal's commit pushed to `drafts/F/ws`,
    /// the base `proposed/F/ws` deleted in the same push (git.go 1891–1903).
    pub fn reject(&self, package: &str, workspace: &str) -> Output {
        self.fetch();
        let tip = self.client.git_in(
            "porch",
            &[
                "rev-parse",
                &format!("origin/proposed/{package}/{workspace}"),
            ],
        );
        self.push(&[
            format!("{tip}:refs/heads/drafts/{package}/{workspace}"),
            format!(":refs/heads/proposed/{package}/{workspace}"),
        ])
    }

    /// approve as revision `revision`: Porch's own approval commit M
    /// (git.go 1263–1316 `commitPackageToMainInRepo`: parents branch tip and
    /// proposal tip (commit.go 247, 414), the branch's tree with `F/`
    /// replaced, message `Approving package revision F/N` (git.go 85) plus
    /// the `kpt:` line), then `branch` → M and `refs/tags/F/vN` → M
    /// (git.go 1380–1381, tag name ref.go 144–150) and the deletion of the
    /// proposal (git.go 1852–1873), in one non-atomic push. Returns the push
    /// and M.
    pub fn approve(&self, package: &str, workspace: &str, revision: u64) -> (Output, String) {
        self.fetch();
        self.approve_from_cache(package, workspace, revision)
    }

    /// [`Porch::approve`] from the refs this Porch fetched last: another
    /// replica's view, which may be stale.
    pub fn approve_without_fetch(
        &self,
        package: &str,
        workspace: &str,
        revision: u64,
    ) -> (Output, String) {
        self.approve_from_cache(package, workspace, revision)
    }

    /// The git client holding Porch's cached clone (`porch` in its home).
    pub fn git(&self) -> &GitClient {
        &self.client
    }

    fn approve_from_cache(
        &self,
        package: &str,
        workspace: &str,
        revision: u64,
    ) -> (Output, String) {
        let proposal = self.client.git_in(
            "porch",
            &[
                "rev-parse",
                &format!("origin/proposed/{package}/{workspace}"),
            ],
        );
        let tip = self
            .client
            .git_in("porch", &["rev-parse", &format!("origin/{}", self.branch)]);
        self.client
            .git_in("porch", &["checkout", "-q", "--detach", &tip]);
        self.client
            .git_in("porch", &["rm", "-rq", "--ignore-unmatch", "--", package]);
        self.client
            .git_in("porch", &["checkout", &proposal, "--", package]);
        let tree = self.client.git_in("porch", &["write-tree"]);
        let message = format!(
            "Approving package revision {package}/{revision}\n\n{}\n",
            annotation(package, workspace, Some(revision))
        );
        let merge = self.client.git_in(
            "porch",
            &[
                "commit-tree",
                &tree,
                "-p",
                &tip,
                "-p",
                &proposal,
                "-m",
                &message,
            ],
        );
        self.client
            .git_in("porch", &["reset", "-q", "--hard", &tip]);
        let out = self.push(&[
            format!("{merge}:refs/heads/{}", self.branch),
            format!("{merge}:refs/tags/{package}/v{revision}"),
            format!(":refs/heads/proposed/{package}/{workspace}"),
        ]);
        (out, merge)
    }

    /// propose-delete: the revision's commit pushed to
    /// `deletionProposed/F/vN` (git.go 1741–1748; ref.go 129–135).
    pub fn propose_delete(&self, package: &str, revision: u64) -> Output {
        self.fetch();
        let commit = self.client.git_in(
            "porch",
            &["rev-parse", &format!("refs/tags/{package}/v{revision}")],
        );
        self.push(&[format!(
            "{commit}:refs/heads/deletionProposed/{package}/v{revision}"
        )])
    }

    /// reject a deletion proposal (back to Published): the deletion of
    /// `deletionProposed/F/vN` alone (git.go 1749–1757).
    pub fn reject_delete(&self, package: &str, revision: u64) -> Output {
        self.fetch();
        self.push(&[format!(
            ":refs/heads/deletionProposed/{package}/v{revision}"
        )])
    }

    /// The commit Porch made last (its cached clone's `HEAD`): the draft
    /// commit of [`Porch::init`] and [`Porch::update`].
    pub fn last_commit(&self) -> String {
        self.client.git_in("porch", &["rev-parse", "HEAD"])
    }

    /// delete of a DeletionProposed revision: the tag and the deletion
    /// proposal deleted in one push (git.go 609–625).
    pub fn delete(&self, package: &str, revision: u64) -> Output {
        self.fetch();
        self.push(&[
            format!(":refs/tags/{package}/v{revision}"),
            format!(":refs/heads/deletionProposed/{package}/v{revision}"),
        ])
    }

    /// propose-delete of the placeholder revision of `package` (revision −1,
    /// workspace = the branch's name, listed from the branch: git.go 374–453,
    /// 832–877; package_tree.go 97–104): the commit Porch listed it at — the
    /// branch tip it fetched — pushed to `deletionProposed/F/<branch>`
    /// (git.go 1741–1748; ref.go 129–135, the `Revision <= 0` case).
    pub fn propose_delete_placeholder(&self, package: &str) -> Output {
        self.fetch();
        let tip = self
            .client
            .git_in("porch", &["rev-parse", &format!("origin/{}", self.branch)]);
        self.push(&[format!(
            "{tip}:refs/heads/deletionProposed/{package}/{}",
            self.branch
        )])
    }

    /// delete of the placeholder revision of `package` (Porch's API requires
    /// it DeletionProposed first: pkg/registry/porch/packagecommon.go
    /// 447–455): a `Delete F` commit — child of the branch tip, its tree
    /// without `F` (git.go 1318–1365 `createPackageDeleteCommitInRepo`,
    /// message line 1359) — pushed to the branch (git.go 1386–1398), and the
    /// deletion of `deletionProposed/F/<branch>` (git.go 638–641), in one
    /// non-atomic push. Returns the push and the `Delete F` commit.
    pub fn delete_placeholder(&self, package: &str) -> (Output, String) {
        self.fetch();
        let tip = self
            .client
            .git_in("porch", &["rev-parse", &format!("origin/{}", self.branch)]);
        self.client
            .git_in("porch", &["checkout", "-q", "--detach", &tip]);
        self.client.git_in("porch", &["rm", "-rq", "--", package]);
        let tree = self.client.git_in("porch", &["write-tree"]);
        let delete = self.client.git_in(
            "porch",
            &[
                "commit-tree",
                &tree,
                "-p",
                &tip,
                "-m",
                &format!("Delete {package}"),
            ],
        );
        self.client
            .git_in("porch", &["reset", "-q", "--hard", &tip]);
        let out = self.push(&[
            format!(":refs/heads/deletionProposed/{package}/{}", self.branch),
            format!("{delete}:refs/heads/{}", self.branch),
        ]);
        (out, delete)
    }

    /// delete of a draft or proposal: its ref deleted (git.go 626–637).
    pub fn delete_branch(&self, name: &str) -> Output {
        self.fetch();
        self.push(&[format!(":{name}")])
    }
}
