//! The `Kptfile` that marks a directory as a kpt package (kpt.dev/v1), and
//! the checks a package revision's Kptfile must pass.
//!
//! Only the fields cadgate reads are modelled; everything else in a Kptfile
//! (pipeline, info, inventory, status, …) is allowed and left alone.

use cadgate_merge::limits::{self, LimitError, Limits};
use serde::{Deserialize, Serialize};

use crate::refs::PackagePath;

/// The file name that marks a package.
pub const KPTFILE: &str = "Kptfile";

/// The fields of a Kptfile that cadgate reads.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Kptfile {
    /// Must be `kpt.dev/v1`.
    pub api_version: String,
    /// Must be `Kptfile`.
    pub kind: String,
    /// `metadata.name` must be the package's last path segment.
    pub metadata: Metadata,
    /// Where the package was cloned from, as the user asked for it.
    #[serde(default)]
    pub upstream: Option<Upstream>,
    /// Exactly which upstream revision the package was cloned from.
    #[serde(default)]
    pub upstream_lock: Option<UpstreamLock>,
}

/// `metadata`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Metadata {
    /// The package name.
    #[serde(default)]
    pub name: String,
}

/// `upstream`: `{type: git, git: {repo, directory, ref}}`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Serialize)]
pub struct Upstream {
    /// `git` (the only type cadgate follows).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The Git location.
    #[serde(default)]
    pub git: Option<GitLocation>,
}

/// `upstreamLock`: `{type: git, git: {repo, directory, ref, commit}}`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Serialize)]
pub struct UpstreamLock {
    /// `git`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The Git location, with the commit.
    #[serde(default)]
    pub git: Option<GitLocation>,
}

/// A Git location as kpt writes it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, Serialize)]
pub struct GitLocation {
    /// Repository URL.
    #[serde(default)]
    pub repo: String,
    /// Package directory in that repository.
    #[serde(default)]
    pub directory: String,
    /// The ref as typed (`upstream`) or resolved (`upstreamLock`), e.g. `basens/v1`.
    #[serde(rename = "ref", default)]
    pub reference: String,
    /// The commit (upstreamLock only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub commit: String,
}

/// Why a Kptfile is not acceptable. Each message says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KptfileError {
    /// Not YAML of the right shape.
    #[error("{path}/Kptfile does not parse: {detail}")]
    Unparsable {
        /// The package.
        path: String,
        /// The parser's message.
        detail: String,
    },
    /// Beyond the bounds on a Kptfile ([`cadgate_merge::limits::Limits::KPTFILE`]).
    #[error("{path}/Kptfile is refused: {detail} (a Kptfile is at most 1 MiB, nests at most 64 deep, has at most 16 aliases and 50000 nodes)")]
    OutOfBounds {
        /// The package.
        path: String,
        /// The bound it broke.
        detail: String,
    },
    /// Wrong apiVersion or kind.
    #[error("{path}/Kptfile must have apiVersion: kpt.dev/v1 and kind: Kptfile (found {api_version} {kind})")]
    NotAKptfile {
        /// The package.
        path: String,
        /// Found apiVersion.
        api_version: String,
        /// Found kind.
        kind: String,
    },
    /// metadata.name is not the package's last path segment.
    #[error("{path}/Kptfile has metadata.name {found:?}; it must be {expected:?}, the package directory's name")]
    WrongName {
        /// The package.
        path: String,
        /// What it says.
        found: String,
        /// What it must say.
        expected: String,
    },
    /// upstreamLock is present but incomplete.
    #[error("{path}/Kptfile has a malformed upstreamLock: {detail}")]
    BadUpstreamLock {
        /// The package.
        path: String,
        /// What is wrong.
        detail: String,
    },
}

/// The `upstreamLock` of a Kptfile's text, read leniently (a listing shows
/// what is there; the push rules already judged the Kptfile).
pub fn upstream_lock_of(text: &str) -> Option<UpstreamLock> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Lock {
        #[serde(default)]
        upstream_lock: Option<UpstreamLock>,
    }
    bounded::<Lock>(text).ok()?.ok()?.upstream_lock
}

/// Parse a Kptfile's text once it is within the bounds on a Kptfile: the
/// outer error is the bound it broke, the inner one the parser's. The bound
/// check is one linear pass; the parser then sees a text it handles in
/// linear time (no deep nesting, no alias expansion beyond the bound).
fn bounded<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<Result<T, serde_norway::Error>, LimitError> {
    match limits::check(text, &Limits::KPTFILE) {
        Ok(()) => Ok(serde_norway::from_str(text)),
        // Malformed, not hostile: the event parser's message says where,
        // and the tree parser never sees it.
        Err(LimitError::Syntax(detail)) => Ok(Err(serde::de::Error::custom(detail))),
        Err(e) => Err(e),
    }
}

impl Kptfile {
    /// Parse and check the Kptfile of `package`.
    pub fn parse_for(package: &PackagePath, text: &str) -> Result<Kptfile, KptfileError> {
        let path = package.as_str().to_string();
        let kptfile: Kptfile = bounded(text)
            .map_err(|e| KptfileError::OutOfBounds {
                path: path.clone(),
                detail: e.to_string(),
            })?
            .map_err(|e| KptfileError::Unparsable {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        if kptfile.api_version != "kpt.dev/v1" || kptfile.kind != "Kptfile" {
            return Err(KptfileError::NotAKptfile {
                path,
                api_version: kptfile.api_version,
                kind: kptfile.kind,
            });
        }
        if kptfile.metadata.name != package.leaf() {
            return Err(KptfileError::WrongName {
                path,
                found: kptfile.metadata.name,
                expected: package.leaf().to_string(),
            });
        }
        if let Some(lock) = &kptfile.upstream_lock {
            check_lock(lock).map_err(|detail| KptfileError::BadUpstreamLock { path, detail })?;
        }
        Ok(kptfile)
    }
}

fn check_lock(lock: &UpstreamLock) -> Result<(), String> {
    if lock.kind != "git" {
        return Err(format!(
            "type is {:?}; cadgate understands type: git",
            lock.kind
        ));
    }
    let git = lock.git.as_ref().ok_or("type: git needs a git: section")?;
    if git.repo.is_empty() {
        return Err("git.repo is empty".into());
    }
    if git.reference.is_empty() {
        return Err("git.ref is empty".into());
    }
    let full_sha = git.commit.len() == 40 && git.commit.bytes().all(|b| b.is_ascii_hexdigit());
    if !full_sha {
        return Err(format!(
            "git.commit {:?} is not a full 40-hex commit id",
            git.commit
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refs::Layout;

    fn package(path: &str) -> PackagePath {
        Layout::new("main", "").package(path).expect("valid path")
    }

    const GOOD: &str = "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: bucket\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\npipeline:\n  mutators: []\n";

    #[test]
    fn accepts_a_kptfile_named_after_its_directory() {
        let k = Kptfile::parse_for(&package("catalog/gcp/bucket"), GOOD).expect("valid");
        assert_eq!(k.metadata.name, "bucket");
        assert!(k.upstream_lock.is_none());
    }

    #[test]
    fn refuses_with_a_message_that_says_what_to_fix() {
        let wrong_name = Kptfile::parse_for(&package("other"), GOOD).expect_err("wrong name");
        assert!(
            wrong_name.to_string().contains("must be \"other\""),
            "{wrong_name}"
        );
        let not_yaml =
            Kptfile::parse_for(&package("bucket"), "apiVersion: [").expect_err("bad yaml");
        assert!(matches!(not_yaml, KptfileError::Unparsable { .. }));
        let wrong_kind = Kptfile::parse_for(
            &package("bucket"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bucket\n",
        )
        .expect_err("not a Kptfile");
        assert!(matches!(wrong_kind, KptfileError::NotAKptfile { .. }));
    }

    #[test]
    fn checks_the_upstream_lock() {
        let with_lock = |commit: &str| {
            format!("{GOOD}upstream:\n  type: git\n  git:\n    repo: https://example.com/b.git\n    directory: /bucket\n    ref: bucket/v1\nupstreamLock:\n  type: git\n  git:\n    repo: https://example.com/b.git\n    directory: /bucket\n    ref: bucket/v1\n    commit: {commit}\n")
        };
        let ok = Kptfile::parse_for(&package("bucket"), &with_lock(&"a".repeat(40)))
            .expect("valid lock");
        let lock = ok.upstream_lock.and_then(|l| l.git).expect("lock");
        assert_eq!(lock.reference, "bucket/v1");
        assert!(Kptfile::parse_for(&package("bucket"), &with_lock("abc")).is_err());
    }

    fn refused(text: &str) -> String {
        let e = Kptfile::parse_for(&package("bucket"), text).expect_err("refused");
        assert!(matches!(e, KptfileError::OutOfBounds { .. }), "{e}");
        e.to_string()
    }

    #[test]
    fn hostile_kptfiles_are_refused_by_the_bound_they_break() {
        assert!(refused(&"[".repeat(200 * 1024)).contains("nests collections more than 64 deep"));
        assert!(refused(&"{a: ".repeat(100 * 1024)).contains("more than 64 deep"));
        let mut laughs = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..9 {
            let items = vec![format!("*a{}", i - 1); 9].join(", ");
            laughs.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        assert!(refused(&laughs).contains("aliases"));
        let huge = format!("{GOOD}description: {}\n", "x".repeat(60 * 1024 * 1024));
        assert!(refused(&huge).contains("at most 1048576 are accepted"));
        let keys = |n: usize| -> String { (0..n).map(|i| format!("k{i}: v\n")).collect() };
        // 200,000 keys are over the size bound already; 60,000 fit in it.
        assert!(refused(&format!("{GOOD}{}", keys(200_000))).contains("bytes; at most"));
        assert!(refused(&format!("{GOOD}{}", keys(60_000))).contains("more than 50000 nodes"));
        assert!(upstream_lock_of(&"[".repeat(200 * 1024)).is_none());
    }
}
