//! Cloning: a new package's first draft made from a published upstream
//! revision, its Kptfile recording where it came from the way `kpt pkg get`
//! writes it (`upstream` as asked, `upstreamLock` as resolved, with the
//! commit), so kpt, Porch and cadgate's own pin check can follow the link.

use crate::annotation::{draft_task, Task};
use crate::git::{GitError, Repo, Signature};
use crate::kptfile::KPTFILE;
use crate::refs::{Layout, PackagePath};

/// Where a clone comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The upstream repository's URL.
    pub repo: String,
    /// The package directory in it (no leading or trailing `/`).
    pub directory: String,
    /// The ref, e.g. `basens/v2`.
    pub reference: String,
    /// The commit it resolved to.
    pub commit: String,
}

/// Why a clone cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum CloneError {
    /// The source has no package there.
    #[error("{0}")]
    NotAPackage(String),
    /// The target package exists already.
    #[error("{0}")]
    Exists(String),
    /// The source Kptfile cannot be read as YAML.
    #[error("the upstream Kptfile cannot be read: {0}")]
    Kptfile(String),
    /// The upstream holds a path or an object git refuses (a `.git`
    /// entry, a `.gitmodules` URL that is an option…).
    #[error("{0}")]
    Unsafe(String),
    /// Reading or writing objects failed.
    #[error(transparent)]
    Git(#[from] GitError),
}

/// Check a path the server is about to write into a tree it builds itself
/// (relative to the package): no empty, `.` or `..` segment, and no segment
/// git would take for its own directory — `.git` in any case, with the
/// trailing dots and spaces Windows drops, its 8.3 short name `GIT~1`, or
/// with the characters HFS+ ignores — as git's `verify_path` refuses them.
pub fn check_tree_path(path: &str) -> Result<(), CloneError> {
    let refuse = |why: &str| {
        Err(CloneError::Unsafe(format!(
            "the upstream path {path:?} {why}"
        )))
    };
    if path.is_empty() {
        return refuse("is empty");
    }
    for segment in path.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return refuse("has an empty, '.' or '..' segment");
        }
        if segment.chars().any(char::is_control) {
            return refuse("holds control characters");
        }
        if is_dotgit(segment) {
            return refuse("names git's own directory (.git)");
        }
    }
    Ok(())
}

/// Is `name` `.git` as git's NTFS and HFS+ protections see it?
fn is_dotgit(name: &str) -> bool {
    // HFS+ ignores these code points when comparing names.
    let hfs: String = name
        .chars()
        .filter(
            |c| !matches!(*c as u32, 0x200c..=0x200f | 0x202a..=0x202e | 0x206a..=0x206f | 0xfeff),
        )
        .collect();
    // NTFS drops trailing dots and spaces and reads a `:stream` suffix.
    let ntfs = hfs.split(':').next().unwrap_or_default();
    let ntfs = ntfs.trim_end_matches(['.', ' ']).to_ascii_lowercase();
    ntfs == ".git" || ntfs == "git~1"
}

/// Check the objects a tree the server built itself brought into the
/// repository at `git_dir` (those `commit` reaches and its parents do not)
/// with git's own object checks, as a push with `receive.fsckObjects` would
/// be: they are packed and indexed with `index-pack --fsck-objects` in an
/// empty repository under `scratch_root`, `.git`-like entries counted as
/// errors.
pub fn check_new_objects(
    git: &std::path::Path,
    git_dir: &std::path::Path,
    commit: &str,
    scratch_root: &std::path::Path,
) -> Result<(), CloneError> {
    use crate::process::GitCommand;
    let listed = GitCommand::new(git)
        .git_dir(git_dir)
        .args(["rev-list", "--objects", commit, "--not"])
        .arg(format!("{commit}^@"))
        .run()?;
    let objects: String = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|oid| format!("{oid}\n"))
        .collect();
    let pack = GitCommand::new(git)
        .git_dir(git_dir)
        .args(["pack-objects", "--stdout", "-q"])
        .output(Some(objects.as_bytes()))?;
    if !pack.success {
        return Err(GitError::new("pack-objects", git_dir, pack.stderr.trim()).into());
    }
    std::fs::create_dir_all(scratch_root)
        .map_err(|e| GitError::new("create scratch", scratch_root, e))?;
    let checking = scratch_root.join(format!(
        "check-{}-{}",
        std::process::id(),
        &commit[..commit.len().min(16)]
    ));
    let _ = std::fs::remove_dir_all(&checking);
    let result = (|| {
        GitCommand::new(git)
            .args(["init", "--bare", "--quiet"])
            .arg(&checking)
            .run()?;
        GitCommand::new(git)
            .git_dir(&checking)
            .args(["index-pack", "--stdin", "--fsck-objects=hasDotgit=error"])
            .output(Some(&pack.stdout))
    })();
    let _ = std::fs::remove_dir_all(&checking);
    let indexed = result?;
    if indexed.success {
        return Ok(());
    }
    let reason = indexed
        .stderr
        .lines()
        .find(|l| l.starts_with("error: object"))
        .map(|l| l.trim_start_matches("error: ").to_string());
    match reason {
        Some(reason) => Err(CloneError::Unsafe(format!(
            "the package holds an object git refuses: {reason}"
        ))),
        None => Err(GitError::new("index-pack", git_dir, indexed.stderr.trim()).into()),
    }
}

/// The files of the package at `directory` in `commit` of `source`, by path
/// relative to the package.
pub fn package_files(
    source: &Repo,
    commit: &str,
    directory: &str,
) -> Result<Vec<(String, Vec<u8>)>, CloneError> {
    let directory = directory.trim_matches('/');
    if source
        .file_id(commit, &format!("{directory}/{KPTFILE}"))?
        .is_none()
    {
        return Err(CloneError::NotAPackage(format!(
            "there is no package at {directory} in {}: no {directory}/Kptfile",
            &commit[..commit.len().min(12)]
        )));
    }
    let mut files = Vec::new();
    for path in source.files_under(commit, directory)? {
        let Some(blob) = source.file_id(commit, &path)? else {
            continue;
        };
        let data = source.read_blob(&blob)?.unwrap_or_default();
        let relative = path
            .strip_prefix(directory)
            .unwrap_or(&path)
            .trim_start_matches('/')
            .to_string();
        check_tree_path(&relative)?;
        files.push((relative, data));
    }
    Ok(files)
}

/// The Kptfile of a clone named `name`: the upstream's, with
/// `metadata.name`, `upstream` and `upstreamLock` set as `kpt pkg get`
/// sets them.
pub fn cloned_kptfile(
    upstream_text: &str,
    name: &str,
    origin: &Origin,
) -> Result<String, CloneError> {
    // Porch (and `kpt pkg get` through it) records the directory without a
    // leading `/`.
    let directory = origin.directory.trim_matches('/').to_string();
    cadgate_merge::kptfile::with_upstream(
        upstream_text,
        name,
        &cadgate_merge::kptfile::UpstreamLink {
            repo: &origin.repo,
            directory: &directory,
            reference: &origin.reference,
            commit: &origin.commit,
        },
    )
    .map_err(CloneError::Kptfile)
}

/// Write the clone's draft commit: the registered branch's tip with
/// `package` added from `files` (its Kptfile rewritten for `origin`).
/// `registered` is the object name of the cloned revision when it is a
/// revision of a registered repository (the task line then names it, as
/// Porch's clone of a registered upstream does); `None` for a Git URL.
/// Nothing refers to it yet; pushing it to `drafts/F/ws` is the caller's.
#[allow(clippy::too_many_arguments)]
pub fn draft_commit(
    target: &Repo,
    layout: &Layout,
    package: &PackagePath,
    workspace: &str,
    files: Vec<(String, Vec<u8>)>,
    origin: &Origin,
    registered: Option<&str>,
    author: &Signature,
) -> Result<String, CloneError> {
    let tip = new_package_base(target, layout, package)?;
    let mut written = Vec::new();
    for (path, data) in files {
        let data = if path == KPTFILE {
            let text = String::from_utf8_lossy(&data);
            cloned_kptfile(&text, package.leaf(), origin)?.into_bytes()
        } else {
            data
        };
        written.push((format!("{package}/{path}"), data));
    }
    let tree = target.tree_with_files(Some(&tip), &written)?;
    // Porch's clone task line (see `crate::annotation`), so Porch lists the
    // draft's `spec.tasks` and stops its history walk here; a registered
    // upstream by its object name, so Porch's deletion guard sees the clone.
    let task = match registered {
        Some(source) => Task::clone_registered(source),
        None => Task::clone_git(&origin.repo, &origin.reference, &origin.directory),
    };
    let task = draft_task(package.as_str(), workspace, task);
    let message = format!(
        "Clone {package} from {}@{}\n\nUpstream: {} {}\n\n{}\n",
        origin.directory,
        origin.reference,
        origin.repo,
        origin.commit,
        task.line()
    );
    Ok(target.commit_tree(&tree, &[&tip], &message, author)?)
}

/// What an upgrade made.
#[derive(Debug)]
pub enum Upgrade {
    /// The draft commit moving the package to the new upstream revision.
    Draft(String),
    /// The changes that could not be merged; nothing was written.
    Conflicts(Vec<cadgate_merge::Conflict>),
}

/// Move `package` (as it is on the registered branch) from the upstream
/// revision `base` (files of the old upstream revision) to `upstream` (files
/// of the new one, which `origin` names) by a three-way merge that keeps
/// the local changes. A clean merge becomes a draft commit on top of the
/// branch, its Kptfile pointing at `origin`; any conflict writes nothing
/// and is returned. `task` is Porch's upgrade task for the draft's
/// workspace `workspace` ([`Task::upgrade`]), when the revisions it names
/// have object names (a registered upstream); the commit then carries its
/// line, as Porch's `UpdateDraftResources` writes it.
#[allow(clippy::too_many_arguments)]
pub fn upgrade_commit(
    target: &Repo,
    layout: &Layout,
    package: &PackagePath,
    workspace: &str,
    base: Vec<(String, Vec<u8>)>,
    upstream: Vec<(String, Vec<u8>)>,
    origin: &Origin,
    task: Option<Task>,
    author: &Signature,
) -> Result<Upgrade, CloneError> {
    let branch = layout.branch_ref();
    let tip = branch_tip(target, layout)?;
    let local = package_files(target, &tip, package.as_str()).map_err(|_| {
        CloneError::NotAPackage(format!(
            "{package} is not on {branch}: only a published package can be upgraded"
        ))
    })?;
    let merged = cadgate_merge::merge(
        &base.into_iter().collect(),
        &upstream.into_iter().collect(),
        &local.into_iter().collect(),
    );
    if !merged.conflicts.is_empty() {
        return Ok(Upgrade::Conflicts(merged.conflicts));
    }
    let mut files = Vec::new();
    for (path, data) in merged.files {
        let data = if path == KPTFILE {
            cloned_kptfile(&String::from_utf8_lossy(&data), package.leaf(), origin)?.into_bytes()
        } else {
            data
        };
        files.push((path, data));
    }
    let tree = target.tree_with_directory(&tip, package.as_str(), &files)?;
    let mut message = format!(
        "Upgrade {package} to {}@{}\n\nUpstream: {} {}\n",
        origin.directory, origin.reference, origin.repo, origin.commit
    );
    if let Some(task) = task {
        message.push_str(&format!(
            "\n{}\n",
            draft_task(package.as_str(), workspace, task).line()
        ));
    }
    Ok(Upgrade::Draft(target.commit_tree(
        &tree,
        &[&tip],
        &message,
        author,
    )?))
}

/// The Kptfile `kpt pkg init` writes for a package named `name`.
pub fn init_kptfile(name: &str, description: &str) -> String {
    use serde_norway::{Mapping, Value};
    let text = |s: &str| Value::String(s.to_string());
    let mut annotations = Mapping::new();
    annotations.insert(text("config.kubernetes.io/local-config"), text("true"));
    let mut metadata = Mapping::new();
    metadata.insert(text("name"), text(name));
    metadata.insert(text("annotations"), Value::Mapping(annotations));
    let mut info = Mapping::new();
    info.insert(text("description"), text(description));
    let mut kptfile = Mapping::new();
    kptfile.insert(text("apiVersion"), text("kpt.dev/v1"));
    kptfile.insert(text("kind"), text("Kptfile"));
    kptfile.insert(text("metadata"), Value::Mapping(metadata));
    kptfile.insert(text("info"), Value::Mapping(info));
    serde_norway::to_string(&Value::Mapping(kptfile)).unwrap_or_default()
}

/// The draft commit of a new, empty package (`kpt pkg init`): a Kptfile
/// and a README on top of the registered branch.
pub fn init_commit(
    target: &Repo,
    layout: &Layout,
    package: &PackagePath,
    workspace: &str,
    description: &str,
    author: &Signature,
) -> Result<String, CloneError> {
    let tip = new_package_base(target, layout, package)?;
    let files = vec![
        (
            format!("{package}/{KPTFILE}"),
            init_kptfile(package.leaf(), description).into_bytes(),
        ),
        (
            format!("{package}/README.md"),
            format!("# {}\n\n{description}\n", package.leaf()).into_bytes(),
        ),
    ];
    let tree = target.tree_with_files(Some(&tip), &files)?;
    let task = draft_task(package.as_str(), workspace, Task::init(description));
    let message = format!("Initialize {package}\n\n{}\n", task.line());
    Ok(target.commit_tree(&tree, &[&tip], &message, author)?)
}

/// The draft commit of a new workspace `workspace` of `package` holding
/// published revision `commit`'s content (Porch's copy, an `edit` task from
/// the revision named `source`), on top of the branch.
#[allow(clippy::too_many_arguments)]
pub fn copy_commit(
    target: &Repo,
    layout: &Layout,
    package: &PackagePath,
    workspace: &str,
    commit: &str,
    revision: u64,
    source: &str,
    author: &Signature,
) -> Result<String, CloneError> {
    let tip = branch_tip(target, layout)?;
    let tree = target.tree_with_package(&tip, package.as_str(), Some(commit))?;
    let task = draft_task(package.as_str(), workspace, Task::edit(source));
    Ok(target.commit_tree(
        &tree,
        &[&tip],
        &format!(
            "Copy {package} v{revision} into a new draft\n\n{}\n",
            task.line()
        ),
        author,
    )?)
}

fn branch_tip(target: &Repo, layout: &Layout) -> Result<String, CloneError> {
    let branch = layout.branch_ref();
    target
        .refs_under(&[branch.as_str()])?
        .pop()
        .map(|r| r.commit)
        .ok_or_else(|| CloneError::Exists(format!("{branch} does not exist")))
}

/// The branch tip a new package starts from; refused when the package is
/// there already.
fn new_package_base(
    target: &Repo,
    layout: &Layout,
    package: &PackagePath,
) -> Result<String, CloneError> {
    let tip = branch_tip(target, layout)?;
    if target.object_at(&tip, package.as_str())?.is_some() {
        return Err(CloneError::Exists(format!(
            "{package} exists on {} already; use a new package name",
            layout.branch_ref()
        )));
    }
    Ok(tip)
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_init_kptfile_reads_back_whatever_the_description() {
        for description in ["", "A web app", "x: y\n- z", "'quoted' \"and\" #hash", "on"] {
            let text = super::init_kptfile("web", description);
            let value: serde_norway::Value = serde_norway::from_str(&text).expect("YAML");
            assert_eq!(
                value["info"]["description"].as_str(),
                Some(description),
                "{text}"
            );
            assert_eq!(value["metadata"]["name"].as_str(), Some("web"));
            assert_eq!(value["kind"].as_str(), Some("Kptfile"));
        }
    }

    #[test]
    fn paths_git_would_take_for_its_own_are_refused() {
        for path in [
            ".git/config",
            ".GIT",
            "a/.Git/x",
            "GIT~1",
            "a/git~1/b",
            ".git.",
            ".git ",
            ".git::$INDEX_ALLOCATION",
            ".g\u{200c}it",
            "\u{feff}.git",
            "",
            "a//b",
            "a/../b",
            "./a",
            "a\nb",
        ] {
            assert!(
                super::check_tree_path(path).is_err(),
                "{path:?} was accepted"
            );
        }
        for path in [
            "Kptfile",
            ".gitignore",
            "a/.github/x",
            "git",
            "a.git/b",
            ".gitmodules",
        ] {
            super::check_tree_path(path).expect(path);
        }
    }

    #[test]
    fn objects_a_push_would_refuse_are_refused_in_trees_the_server_builds() {
        use crate::process::GitCommand;
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = dir.path().join("r.git");
        let git = std::path::Path::new("git");
        GitCommand::new(git)
            .args(["init", "--bare", "--quiet"])
            .arg(&repo)
            .run()
            .expect("init");
        let run = |args: &[&str], input: &str| {
            GitCommand::new(git)
                .git_dir(&repo)
                .args(args)
                .run_with_input(Some(input.as_bytes()))
                .expect("git")
                .trim()
                .to_string()
        };
        let commit_with = |name: &str, content: &str| {
            let blob = run(&["hash-object", "-w", "--stdin"], content);
            let kpt = run(&["hash-object", "-w", "--stdin"], "kind: Kptfile\n");
            let package = run(
                &["mktree"],
                &format!("100644 blob {kpt}\tKptfile\n100644 blob {blob}\t{name}\n"),
            );
            let root = run(&["mktree"], &format!("040000 tree {package}\tpkg\n"));
            run(&["commit-tree", &root, "-m", "x"], "")
        };
        let scratch = dir.path().join("scratch");
        let good = commit_with("data.yaml", "a: 1\n");
        super::check_new_objects(git, &repo, &good, &scratch).expect("a plain package");
        for (name, content, why) in [
            (
                ".gitmodules",
                "[submodule \"x\"]\n\tpath = x\n\turl = --upload-pack=touch owned;\n",
                "gitmodulesUrl",
            ),
            (".git", "x", "hasDotgit"),
            ("GIT~1", "x", "hasDotgit"),
        ] {
            let bad = commit_with(name, content);
            let error = super::check_new_objects(git, &repo, &bad, &scratch)
                .expect_err(name)
                .to_string();
            assert!(error.contains(why), "{name}: {error}");
        }
        // A commit on top of another: only the new objects are checked, and
        // the parent missing from the check's pack is no error.
        let tree = run(&["rev-parse", &format!("{good}^{{tree}}")], "");
        let child = run(&["commit-tree", &tree, "-p", &good, "-m", "again"], "");
        super::check_new_objects(git, &repo, &child, &scratch).expect("a child commit");
    }
}
