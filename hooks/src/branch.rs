//! The registered branch, created when a repository does not have it yet:
//! by the server on start, and by `cadgate hook install` in hook mode. Every
//! publish needs the branch, and nobody can create it by pushing (a push to
//! it must publish a proposal), so a repository without it would be a dead
//! end. Forward mode never creates it: the branch is the upstream's.

use crate::git::{GitError, RefEdit, Repo, Signature};

/// Content of the first commit on a newly created registered branch.
pub const README: &str = "Created by cadgate.\n\nPackages (directories with a Kptfile) are published here by cadgate;\npush drafts to refs/heads/drafts/<package>/<workspace>.\n";

/// Create `refs/heads/<branch>` in `repo` with cadgate's initial commit (a
/// `README.md`, no package) when the branch does not exist. Returns the new
/// commit, or `None` when the branch was there. Never overwrites a branch:
/// the ref is created only if still absent.
pub fn create_if_missing(repo: &Repo, branch: &str) -> Result<Option<String>, GitError> {
    let name = format!("refs/heads/{branch}");
    if !repo.refs_under(&[&name])?.is_empty() {
        return Ok(None);
    }
    let tree = repo.tree_with_files(None, &[("README.md".into(), README.as_bytes().to_vec())])?;
    let cadgate = Signature {
        name: "cadgate".into(),
        email: "cadgate@localhost".into(),
    };
    let commit = repo.commit_tree(
        &tree,
        &[],
        &format!("Initial commit: Creating {branch} branch"),
        &cadgate,
    )?;
    repo.update_refs(
        &[RefEdit::Create {
            name,
            new: commit.clone(),
        }],
        "cadgate: create the registered branch",
    )?;
    Ok(Some(commit))
}
