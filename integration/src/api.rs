//! The JSON API (contract §11) seen from outside: calls over real HTTP, and
//! the listing a repository's refs imply, worked out independently of the
//! server's code from the ref layout of contract §5.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{basic, server_git, Server, TestUser};

/// `POST path` with a JSON `body` as `user`: status and JSON answer (null
/// when the answer is not JSON).
pub fn post(server: &Server, user: &TestUser, path: &str, body: &str) -> (u16, serde_json::Value) {
    let response = server.request(
        "POST",
        path,
        &[
            ("Authorization", &basic(user)),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    );
    let json = serde_json::from_slice(&response.body).unwrap_or(serde_json::Value::Null);
    (response.status, json)
}

/// `GET path` as `user` (anonymous with `None`): the status and the JSON body
/// (`Null` when there is none).
pub fn call(server: &Server, user: Option<&TestUser>, path: &str) -> (u16, serde_json::Value) {
    let auth = user.map(basic);
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    let response = server.request("GET", path, &headers, b"");
    let json = if response.body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&response.body)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {}", response.text()))
    };
    (response.status, json)
}

/// The `items` of `GET /api/v1/repositories/{repository}/revisions?{query}`,
/// which must answer 200.
pub fn revisions(
    server: &Server,
    user: &TestUser,
    repository: &str,
    query: &str,
) -> Vec<serde_json::Value> {
    let path = format!("/api/v1/repositories/{repository}/revisions?{query}");
    let (status, body) = call(server, Some(user), &path);
    assert_eq!(status, 200, "GET {path}: {body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

/// One package revision reduced to what the refs decide: package (the API's
/// `packageName`, the path below the repository's directory), revision (−1
/// for Porch's placeholder of a package on the branch), lifecycle, commit,
/// latest.
pub type Row = (String, i64, String, String, bool);

/// The rows of API items, sorted.
pub fn rows(items: &[serde_json::Value]) -> Vec<Row> {
    let mut rows: Vec<Row> = items
        .iter()
        .map(|r| {
            (
                r["packageName"].as_str().unwrap_or_default().to_string(),
                r["revision"].as_i64().unwrap_or(i64::MIN),
                r["lifecycle"].as_str().unwrap_or_default().to_string(),
                r["commit"].as_str().unwrap_or_default().to_string(),
                r["latest"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// The rows the refs of the bare repository `repo` imply for a repository
/// whose packages live under `directory`: a draft or proposal per
/// `drafts/F/ws` and `proposed/F/ws` branch whose commit holds
/// `F/Kptfile`; a published revision per
/// `F/vN` tag whose commit holds `F/Kptfile`, DeletionProposed when
/// `deletionProposed/F/vN` exists; latest = the highest N of each package;
/// and Porch's placeholder (revision −1, never latest) per package on the
/// branch `main` — a top-most directory holding a `Kptfile` — at the
/// branch's tip, DeletionProposed when `deletionProposed/F/main` exists
/// (porch pkg/externalrepo/git/git.go lines 374–453, 832–877, 1700–1714).
/// Packages are named by their path below `directory`.
pub fn rows_from_refs(repo: &Path, directory: &str) -> Vec<Row> {
    let directory = directory.trim_matches('/');
    let below = |package: &str| -> String {
        if directory.is_empty() {
            package.to_string()
        } else {
            package
                .strip_prefix(&format!("{directory}/"))
                .unwrap_or(package)
                .to_string()
        }
    };
    let listing = server_git(
        repo,
        &[
            "for-each-ref",
            "--format=%(refname) %(objectname) %(*objectname)",
        ],
    );
    let inside = |package: &str| {
        directory.is_empty() || package.starts_with(&format!("{}/", directory.trim_matches('/')))
    };
    let mut rows = Vec::new();
    let mut deletion = std::collections::HashSet::new();
    let mut tags = Vec::new();
    for line in listing.lines() {
        let mut parts = line.split(' ');
        let (name, object, peeled) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let commit = if peeled.is_empty() { object } else { peeled };
        for (prefix, lifecycle) in [
            ("refs/heads/drafts/", "Draft"),
            ("refs/heads/proposed/", "Proposed"),
        ] {
            if let Some((package, _ws)) = name.strip_prefix(prefix).and_then(|r| r.rsplit_once('/'))
            {
                // Like a tag, a draft is a package revision only when its
                // commit holds `F/Kptfile` (Porch's `loadDraft`).
                if inside(package) && holds_kptfile(repo, commit, package) {
                    rows.push((
                        below(package),
                        0,
                        lifecycle.to_string(),
                        commit.to_string(),
                        false,
                    ));
                }
            }
        }
        if let Some(rest) = name.strip_prefix("refs/heads/deletionProposed/") {
            deletion.insert(rest.to_string());
        }
        if let Some((package, version)) = name
            .strip_prefix("refs/tags/")
            .and_then(|r| r.rsplit_once('/'))
        {
            let number = version
                .strip_prefix('v')
                .filter(|n| !n.starts_with('0'))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(n) = number.filter(|_| inside(package)) {
                if holds_kptfile(repo, commit, package) {
                    tags.push((package.to_string(), n, commit.to_string()));
                }
            }
        }
    }
    let tip = server_git(
        repo,
        &["for-each-ref", "--format=%(objectname)", "refs/heads/main"],
    );
    let tip = tip.lines().next().unwrap_or_default().trim();
    if !tip.is_empty() {
        let files = server_git(repo, &["ls-tree", "-r", "--name-only", tip]);
        let kptfiles: Vec<&str> = files
            .lines()
            .filter_map(|f| f.strip_suffix("/Kptfile"))
            .collect();
        for package in &kptfiles {
            let nested = kptfiles
                .iter()
                .any(|outer| package.starts_with(&format!("{outer}/")));
            if nested || !inside(package) {
                continue;
            }
            let lifecycle = if deletion.contains(&format!("{package}/main")) {
                "DeletionProposed"
            } else {
                "Published"
            };
            rows.push((
                below(package),
                -1,
                lifecycle.to_string(),
                tip.to_string(),
                false,
            ));
        }
    }
    let mut latest: BTreeMap<String, u64> = BTreeMap::new();
    for (package, n, _) in &tags {
        let entry = latest.entry(package.clone()).or_insert(0);
        *entry = (*entry).max(*n);
    }
    for (package, n, commit) in tags {
        let lifecycle = if deletion.contains(&format!("{package}/v{n}")) {
            "DeletionProposed"
        } else {
            "Published"
        };
        let is_latest = latest.get(&package) == Some(&n);
        let revision = i64::try_from(n).unwrap_or(i64::MAX);
        rows.push((
            below(&package),
            revision,
            lifecycle.to_string(),
            commit,
            is_latest,
        ));
    }
    rows.sort();
    rows
}

/// `commit` holds the file `package/Kptfile`.
fn holds_kptfile(repo: &Path, commit: &str, package: &str) -> bool {
    std::process::Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args([
            "-c",
            "safe.directory=*",
            "cat-file",
            "-e",
            &format!("{commit}:{package}/Kptfile"),
        ])
        .status()
        .is_ok_and(|s| s.success())
}

/// The API's full listing of `repository` equals what its refs imply.
pub fn assert_listing_matches_refs(
    server: &Server,
    user: &TestUser,
    repository: &str,
    directory: &str,
    context: &str,
) {
    let listed = rows(&revisions(server, user, repository, ""));
    let expected = rows_from_refs(&server.repo_dir(repository), directory);
    assert_eq!(
        listed, expected,
        "{context}: the API's listing of {repository} differs from its refs"
    );
}
