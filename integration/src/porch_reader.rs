//! A Porch reader: Porch's listing rules applied to a bare repository with
//! plain git (`for-each-ref`, `ls-tree`, `cat-file`), so tests can compare
//! what Porch would list with what cadgate's API lists.
//!
//! Written from nephio-project/porch at commit
//! 74d82d569e3745235ce34a7db71fa7e958c508ff; every rule names the file and
//! lines it follows (paths below `pkg/` unless they start with `api/`).
//! Porch fetches the remote's `refs/heads/*` into `refs/remotes/origin/*` and
//! its tags into `refs/tags/*` (externalrepo/git/ref.go 32–38); on the
//! server's bare repository those are `refs/heads/*` and `refs/tags/*`, and
//! nothing else is read.

use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::path::Path;
use std::process::Command;

mod compare;
pub use compare::{
    as_cadgate_lists_it, assert_cadgate_lists_as_porch, compared_fields, porch_and_cadgate,
};

/// One package revision as Porch lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PorchRevision {
    /// The ref it was read from (`refs/heads/drafts/F/ws`, `refs/tags/F/vN`,
    /// or the registered branch for a placeholder).
    pub ref_name: String,
    /// `PackageKey.ToFullPathname()`: the path in the tree, with the
    /// repository's directory (repository/repository.go 162–164).
    pub full_path: String,
    /// `spec.packageName`: `PackageKey.ToPkgPathname()`, without the
    /// repository's directory (externalrepo/git/package.go 113,
    /// repository/repository.go 158–160).
    pub package_name: String,
    /// `PackageKey.Package`, the leaf name `latest` is keyed by.
    pub leaf: String,
    /// `metadata.name`: `ComposePkgRevObjName` (util/util.go 160–167).
    pub name: String,
    /// `spec.workspaceName`.
    pub workspace: String,
    /// `spec.revision`: 0 for drafts and proposals, `Revision2Int` of a
    /// tag, −1 for the placeholder of the registered branch.
    pub revision: i64,
    /// `spec.lifecycle`.
    pub lifecycle: &'static str,
    /// The `latest-revision` label (cache/crcache/util.go 26–62).
    pub latest: bool,
    /// `spec.tasks`, each the JSON of a `Task` (externalrepo/git/git.go
    /// 1497–1563, `loadTasks`).
    pub tasks: Vec<serde_json::Value>,
    /// The commit the revision is read from.
    pub commit: String,
    /// `status.publishedBy` (externalrepo/git/package.go 88–96).
    pub published_by: Option<String>,
    /// `status.publishedAt`, seconds since the epoch.
    pub published_at: Option<i64>,
}

impl PorchRevision {
    /// The placeholder revision Porch lists for each package on the
    /// registered branch (revision −1).
    pub fn is_placeholder(&self) -> bool {
        self.revision == -1 && self.ref_name.starts_with("refs/heads/")
    }
}

/// Where Porch's `Repository` points: its name, branch and directory.
#[derive(Debug, Clone, Copy)]
pub struct Registration<'a> {
    /// The `Repository` object's name.
    pub name: &'a str,
    /// `spec.git.branch`.
    pub branch: &'a str,
    /// `spec.git.directory` (`RepositoryKey.Path`).
    pub directory: &'a str,
}

fn git(repo: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(["-c", "safe.directory=*"])
        .arg("--git-dir")
        .arg(repo)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A commit as Porch reads it.
#[derive(Debug, Clone, Default)]
struct Commit {
    parents: Vec<String>,
    author_email: String,
    author_time: i64,
    committer_time: i64,
    message: String,
}

/// One `kpt:` annotation (externalrepo/git/annotation.go 31–47).
#[derive(Debug, Clone, Default)]
struct Annotation {
    package: String,
    workspace: String,
    revision: String,
    task: Option<serde_json::Value>,
}

/// `extractGitAnnotations` (annotation.go 52–70): every line that starts
/// with `kpt:` after trimming, JSON-decoded into `gitAnnotation`; a line
/// that does not decode is skipped (its error only logged by the callers).
fn annotations(message: &str) -> Vec<Annotation> {
    let mut out = Vec::new();
    for line in message.split('\n').map(str::trim) {
        let Some(json) = line.strip_prefix("kpt:") else {
            continue;
        };
        let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(json)
        else {
            continue;
        };
        // Go decodes a string field from a string (or null); anything else
        // fails the whole line.
        let text = |key: &str| match map.get(key) {
            None | Some(serde_json::Value::Null) => Some(String::new()),
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(_) => None,
        };
        let (Some(package), Some(workspace), Some(revision)) =
            (text("package"), text("workspaceName"), text("revision"))
        else {
            continue;
        };
        let task = match map.get("task") {
            None | Some(serde_json::Value::Null) => None,
            Some(t @ serde_json::Value::Object(_)) => Some(t.clone()),
            Some(_) => continue,
        };
        out.push(Annotation {
            package,
            workspace,
            revision,
            task,
        });
    }
    out
}

/// Reads commits and trees of one repository, remembering commits.
struct Reader<'a> {
    repo: &'a Path,
    registration: Registration<'a>,
    commits: HashMap<String, Commit>,
}

impl<'a> Reader<'a> {
    fn commit(&mut self, oid: &str) -> Commit {
        if let Some(c) = self.commits.get(oid) {
            return c.clone();
        }
        let raw = git(self.repo, &["cat-file", "commit", oid]).unwrap_or_default();
        let (header, message) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
        let mut c = Commit {
            message: message.to_string(),
            ..Commit::default()
        };
        let signature = |rest: &str| -> (String, i64) {
            let email = rest
                .split_once('<')
                .and_then(|(_, r)| r.split_once('>'))
                .map(|(e, _)| e.to_string())
                .unwrap_or_default();
            let time = rest
                .rsplit(' ')
                .nth(1)
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            (email, time)
        };
        for line in header.lines() {
            if let Some(p) = line.strip_prefix("parent ") {
                c.parents.push(p.to_string());
            } else if let Some(rest) = line.strip_prefix("author ") {
                (c.author_email, c.author_time) = signature(rest);
            } else if let Some(rest) = line.strip_prefix("committer ") {
                c.committer_time = signature(rest).1;
            }
        }
        self.commits.insert(oid.to_string(), c.clone());
        c
    }

    /// go-git's `Log` with `LogOrderCommitterTime` (used by git.go 1503–1506
    /// and 1643–1646): a heap of the commits reached so far, newest
    /// committer time first; `visit` returns false to stop.
    fn walk(&mut self, start: &str, mut visit: impl FnMut(&str, &Commit) -> bool) {
        let mut seen = HashSet::new();
        let mut heap = BinaryHeap::new();
        let mut order = 0u64;
        let first = self.commit(start);
        heap.push((first.committer_time, u64::MAX, start.to_string()));
        seen.insert(start.to_string());
        while let Some((_, _, oid)) = heap.pop() {
            let c = self.commit(&oid);
            if !visit(&oid, &c) {
                return;
            }
            for parent in &c.parents {
                if seen.insert(parent.clone()) {
                    let p = self.commit(parent);
                    order += 1;
                    heap.push((p.committer_time, u64::MAX - order, parent.clone()));
                }
            }
        }
    }

    /// The entries of the tree at `path` in `commit` (name → mode), or None
    /// when there is no such directory.
    fn tree(&self, commit: &str, path: &str) -> Option<BTreeMap<String, String>> {
        let spec = format!("{commit}:{path}");
        let out = git(self.repo, &["ls-tree", "-z", &spec])?;
        Some(
            out.split('\0')
                .filter_map(|entry| {
                    let (meta, name) = entry.split_once('\t')?;
                    Some((name.to_string(), meta.split(' ').next()?.to_string()))
                })
                .collect(),
        )
    }

    /// `discoverPackages` (externalrepo/git/package_tree.go 148–187): a
    /// directory with a `Kptfile` that is a file (go-git `IsFile`: regular,
    /// executable, deprecated or symlink mode) is a package, and the walk
    /// does not go below it; otherwise, with `recurse`, every subdirectory
    /// (mode `040000`) is searched.
    fn discover(&self, commit: &str, tree_path: &str, recurse: bool, out: &mut Vec<String>) {
        let Some(entries) = self.tree(commit, tree_path) else {
            // package_tree.go is reached through discoverPackagesInTree
            // (git.go 2008–2018): a missing filter directory is no package.
            return;
        };
        let is_file = |mode: &str| matches!(mode, "100644" | "100755" | "100664" | "120000");
        if entries.get("Kptfile").is_some_and(|m| is_file(m)) {
            out.push(tree_path.to_string());
            return;
        }
        if recurse {
            for (name, mode) in &entries {
                if mode == "040000" {
                    let below = if tree_path.is_empty() {
                        name.clone()
                    } else {
                        format!("{tree_path}/{name}")
                    };
                    self.discover(commit, &below, recurse, out);
                }
            }
        }
    }

    /// `PackageKey` of a package found at `tree_path`:
    /// `FromFullPathname(repoKey, TrimPrefix(treePath, repoKey.Path))`
    /// (package_tree.go 160) and `SplitPackagePathName`
    /// (repository/repository.go 172–191): (path, package).
    fn key(&self, tree_path: &str) -> (String, String) {
        let relative = tree_path
            .strip_prefix(self.registration.directory)
            .unwrap_or(tree_path);
        let trimmed = relative.trim_matches('/');
        match trimmed.rsplit_once('/') {
            Some((path, name)) => (path.to_string(), name.to_string()),
            None => (String::new(), trimmed.to_string()),
        }
    }

    /// `findLatestPackageCommit` (git.go 1637–1672): the first commit, in
    /// committer-time order from `start`, with an annotation naming the
    /// package.
    fn latest_package_commit(&mut self, start: &str, full_path: &str) -> Option<Commit> {
        let mut found = None;
        self.walk(start, |_, c| {
            if annotations(&c.message)
                .iter()
                .any(|a| a.package == full_path)
            {
                found = Some(c.clone());
                return false;
            }
            true
        });
        found
    }

    /// `loadTasks` (git.go 1497–1563): walk from the revision's commit;
    /// annotations of the package whose workspace matches (or, without a
    /// workspace, whose revision equals the workspace: 1525–1527) replace the
    /// task list with their task when it is a valid first task (init, edit,
    /// clone, upgrade: api/porch/v1alpha1/util.go 60–64); an init or clone
    /// task ends the walk. So at most one task is listed.
    fn tasks(&mut self, start: &str, full_path: &str, workspace: &str) -> Vec<serde_json::Value> {
        let mut tasks = Vec::new();
        self.walk(start, |_, c| {
            for a in annotations(&c.message) {
                let matches = a.package == full_path
                    && (a.workspace == workspace
                        || (a.revision == workspace && a.workspace.is_empty()));
                if !matches {
                    continue;
                }
                let kind = a
                    .task
                    .as_ref()
                    .and_then(|t| t["type"].as_str())
                    .unwrap_or_default()
                    .to_string();
                if let Some(task) = &a.task {
                    if ["init", "edit", "clone", "upgrade"].contains(&kind.as_str()) {
                        tasks = vec![task.clone()];
                    }
                }
                if kind == "init" || kind == "clone" {
                    return false;
                }
            }
            true
        });
        tasks
    }

    /// `buildGitPackageRevision` (package_tree.go 59–134), with the
    /// lifecycle of `getLifecycle` (git.go 1687–1714) and the published
    /// fields of `GetPackageRevision` (package.go 88–96).
    #[allow(clippy::too_many_arguments)]
    fn build(
        &mut self,
        tree_path: &str,
        revision_str: &str,
        workspace: String,
        ref_name: &str,
        commit_oid: &str,
        deletion_proposed: &HashSet<String>,
    ) -> PorchRevision {
        let (path, package) = self.key(tree_path);
        let full_path = join(&[self.registration.directory, &path, &package]);
        let on_branch = !ref_name.starts_with("refs/tags/")
            && !ref_name.starts_with("refs/heads/drafts/")
            && !ref_name.starts_with("refs/heads/proposed/");
        // 65–91: the ref's own commit for tags, drafts and proposals; on the
        // branch the latest commit annotated with the package.
        // Without such a commit `updated` stays Go's zero time, which
        // package.go 90 leaves out; any found commit's time is reported.
        let (updated_by, updated) = if on_branch {
            match self.latest_package_commit(commit_oid, &full_path) {
                Some(c) => (c.author_email, Some(c.author_time)),
                None => (String::new(), None),
            }
        } else {
            let c = self.commit(commit_oid);
            (c.author_email, Some(c.author_time))
        };
        // 97–104: a numeric revision keeps the workspace (or `vN` without
        // one); −1 takes the ref's last segment as the workspace.
        let revision = revision2int(revision_str);
        let workspace = if revision != -1 {
            if workspace.is_empty() {
                format!("v{revision}")
            } else {
                workspace
            }
        } else {
            revision_str.to_string()
        };
        let tasks = self.tasks(commit_oid, &full_path, &workspace);
        // git.go 1687–1714: drafts/ and proposed/ by their prefix; anything
        // else is Published, or DeletionProposed when the branch
        // `createDeletionProposedName` names exists (ref.go 129–135:
        // `deletionProposed/<full path>/v<N>` for N > 0, else
        // `deletionProposed/<full path>/<workspace>`).
        let lifecycle = if ref_name.starts_with("refs/heads/drafts/") {
            "Draft"
        } else if ref_name.starts_with("refs/heads/proposed/") {
            "Proposed"
        } else {
            let marker = if revision > 0 {
                join(&[&full_path, &format!("v{revision}")])
            } else {
                join(&[&full_path, &workspace])
            };
            if deletion_proposed.contains(&marker) {
                "DeletionProposed"
            } else {
                "Published"
            }
        };
        let published = matches!(lifecycle, "Published" | "DeletionProposed");
        PorchRevision {
            ref_name: ref_name.to_string(),
            name: object_name(self.registration.name, &path, &package, &workspace),
            package_name: join(&[&path, &package]),
            leaf: package,
            full_path,
            workspace,
            revision,
            lifecycle,
            latest: false,
            tasks,
            commit: commit_oid.to_string(),
            published_by: (published && !updated_by.is_empty()).then_some(updated_by),
            published_at: updated.filter(|_| published),
        }
    }
}

/// `filepath.Join` of non-empty parts (Go's Join skips empty elements).
fn join(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

/// `ComposePkgRevObjName` (util/util.go 160–167): `repo.<path.package
/// dotted>.<workspace>`, empty when a part is empty.
pub fn object_name(repository: &str, path: &str, package: &str, workspace: &str) -> String {
    if repository.is_empty() || package.is_empty() || workspace.is_empty() {
        return String::new();
    }
    let dotted = join(&[path, package]).replace('/', ".");
    format!("{repository}.{}.{workspace}", dotted.trim_matches('.'))
}

/// `Revision2Int` (repository/util.go 96–104): trim one leading `v`, then
/// Go's `strconv.Atoi` (an optional sign, decimal digits, 64 bits), else −1.
pub fn revision2int(s: &str) -> i64 {
    let s = s.strip_prefix('v').unwrap_or(s);
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return -1;
    }
    s.parse().unwrap_or(-1)
}

/// `packageInDirectory` (externalrepo/git/dir.go 20–33).
fn package_in_directory(package: &str, directory: &str) -> bool {
    directory.is_empty()
        || package
            .strip_prefix(directory)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Porch's listing of the bare repository `repo` registered as
/// `registration`: `listPackageRevisions` (externalrepo/git/git.go 374–453)
/// and the cache's `latest` (cache/crcache/util.go 26–62). An error is what
/// fails Porch's whole listing.
pub fn list(repo: &Path, registration: Registration) -> Result<Vec<PorchRevision>, String> {
    let refs = git(
        repo,
        &[
            "for-each-ref",
            "--format=%(refname)%00%(objectname)%00%(*objectname)",
            "refs/heads/",
            "refs/tags/",
        ],
    )
    .ok_or("for-each-ref failed")?;
    let mut reader = Reader {
        repo,
        registration,
        commits: HashMap::new(),
    };
    // updateDeletionProposedCache (git.go 933–967): the names of the
    // deletionProposed/ branches, read as they are.
    let deletion_proposed: HashSet<String> = refs
        .lines()
        .filter_map(|l| l.split('\0').next())
        .filter_map(|name| name.strip_prefix("refs/heads/deletionProposed/"))
        .map(str::to_string)
        .collect();
    let branch_ref = format!("refs/heads/{}", registration.branch);
    let mut main = None;
    let mut drafts = Vec::new();
    let mut result = Vec::new();
    for line in refs.lines() {
        let mut fields = line.split('\0');
        let (name, object, peeled) = (
            fields.next().unwrap_or_default(),
            fields.next().unwrap_or_default(),
            fields.next().unwrap_or_default(),
        );
        let commit = if peeled.is_empty() { object } else { peeled };
        if name == branch_ref {
            main = Some(commit.to_string());
        } else if let Some(suffix) = name
            .strip_prefix("refs/heads/drafts/")
            .or_else(|| name.strip_prefix("refs/heads/proposed/"))
        {
            // loadDraft (git.go 880–920) and parseDraftName (969–986): the
            // last `/` separates package and workspace; a name without one
            // fails the listing (git.go 409–411).
            let (package, workspace) = suffix
                .rsplit_once('/')
                .filter(|(p, _)| !p.is_empty())
                .ok_or_else(|| {
                    format!("invalid draft ref name; missing workspaceName suffix: {name}")
                })?;
            if !package_in_directory(package, registration.directory) {
                continue;
            }
            // findPackage (git.go 1985–1991): `F/Kptfile` must be there,
            // else the draft is skipped (git.go 412–416).
            let mut found = Vec::new();
            reader.discover(commit, package, false, &mut found);
            if found.is_empty() {
                continue;
            }
            drafts.push(reader.build(
                package,
                "0",
                workspace.to_string(),
                name,
                commit,
                &deletion_proposed,
            ));
        } else if let Some(tag) = name.strip_prefix("refs/tags/") {
            // loadTaggedPackage (git.go 988–1054): `path/version` at the last
            // `/`; tags without one, outside the directory, or whose commit
            // has no `path/Kptfile` are not package revisions.
            let Some((path, version)) = tag.rsplit_once('/') else {
                continue;
            };
            if !package_in_directory(path, registration.directory) {
                continue;
            }
            let mut found = Vec::new();
            reader.discover(commit, path, false, &mut found);
            if found.is_empty() {
                continue;
            }
            // getPkgWorkspace (git.go 2045–2071): for a tag, the first
            // annotation of its commit naming the package with a workspace.
            let full = join(&[path]);
            let workspace = annotations(&reader.commit(commit).message)
                .into_iter()
                .find(|a| a.package == full && !a.workspace.is_empty())
                .map(|a| a.workspace)
                .unwrap_or_default();
            result.push(reader.build(path, version, workspace, name, commit, &deletion_proposed));
        }
    }
    // discoverFinalizedPackages (git.go 832–877): every package on the
    // registered branch, recursively below the directory, as revision
    // `Revision2Int(<branch name>)` = −1 with the branch name as workspace
    // (package_tree.go 97–104): the placeholder revisions.
    if let Some(tip) = main {
        let mut found = Vec::new();
        reader.discover(&tip, registration.directory, true, &mut found);
        for tree_path in found {
            let placeholder = reader.build(
                &tree_path,
                registration.branch,
                String::new(),
                &branch_ref,
                &tip,
                &deletion_proposed,
            );
            result.push(placeholder);
        }
    }
    result.extend(drafts);
    mark_latest(&mut result);
    result.sort_by(|a, b| {
        (&a.full_path, a.revision, &a.workspace, &a.ref_name).cmp(&(
            &b.full_path,
            b.revision,
            &b.workspace,
            &b.ref_name,
        ))
    });
    Ok(result)
}

/// `identifyLatestRevisions` (cache/crcache/util.go 26–62): among Published
/// and DeletionProposed revisions (api/porch/v1alpha1/util.go 23–25), keyed
/// by `PkgKey.Package` — the leaf name, so `a/web` and `b/web` share one —
/// the highest revision other than −1 is the latest. Porch walks a Go map,
/// so between two revisions with the same number (`F/v1`, `F/v01`) it picks
/// one at random; here both are marked.
fn mark_latest(revisions: &mut [PorchRevision]) {
    let mut highest: HashMap<String, i64> = HashMap::new();
    for r in revisions.iter() {
        if matches!(r.lifecycle, "Published" | "DeletionProposed") && r.revision != -1 {
            let entry = highest.entry(r.leaf.clone()).or_insert(r.revision);
            *entry = (*entry).max(r.revision);
        }
    }
    for r in revisions.iter_mut() {
        r.latest = matches!(r.lifecycle, "Published" | "DeletionProposed")
            && r.revision != -1
            && highest.get(&r.leaf) == Some(&r.revision);
    }
}

/// Seconds since the epoch as RFC 3339 UTC (`2026-11-26T05:10:00Z`).
pub fn rfc3339(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let rest = seconds.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_numbers_as_porchs_test_revision2int() {
        for (s, n) in [
            ("v1", 1),
            ("7", 7),
            ("v01", 1),
            ("v+3", 3),
            ("v-3", -3),
            ("V3", -1),
            ("v1.0", -1),
            ("main", -1),
            ("", -1),
        ] {
            assert_eq!(revision2int(s), n, "{s}");
        }
    }

    #[test]
    fn object_names_leave_out_the_directory() {
        assert_eq!(object_name("r", "a/b", "web", "ws"), "r.a.b.web.ws");
        assert_eq!(object_name("r", "", "web", "ws"), "r.web.ws");
        assert_eq!(object_name("r", "", "web", ""), "");
    }

    #[test]
    fn timestamps_in_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_669_800), "2026-11-26T05:10:00Z");
    }
}
