//! The naming rules: repository names, branches, package directories, users.

/// First URL segments that cannot start a repository name (contract §4).
pub const RESERVED_FIRST_SEGMENTS: &[&str] = &["published", "api", "healthz", "metrics", "ui"];

/// Branch namespaces that belong to the package lifecycle.
const LIFECYCLE_NAMESPACES: &[&str] = &["drafts/", "proposed/", "deletionProposed/"];

/// Check a repository name: `/`-separated segments of `[A-Za-z0-9._-]`, not
/// starting with `.` or `-`, not ending in `.lock`; the whole not ending in
/// `.git` (URLs add it) and not starting with a reserved segment.
pub fn validate_repository_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a repository name cannot be empty".into());
    }
    if name.len() > 200 {
        return Err("a repository name is at most 200 characters".into());
    }
    for segment in name.split('/') {
        check_segment(segment).map_err(|e| format!("{name:?}: {e}"))?;
    }
    if name.ends_with(".git") {
        return Err(format!(
            "{name:?} ends in .git; name it {:?} (URLs work with and without .git)",
            name.trim_end_matches(".git")
        ));
    }
    let first = name.split('/').next().unwrap_or(name);
    if RESERVED_FIRST_SEGMENTS.contains(&first) {
        return Err(format!(
            "{name:?} starts with `{first}`, which is reserved for the server's own URLs ({})",
            RESERVED_FIRST_SEGMENTS.join(", ")
        ));
    }
    Ok(())
}

fn check_segment(segment: &str) -> Result<(), String> {
    if segment.is_empty() {
        return Err("has an empty path segment (`//` or a leading or trailing `/`)".into());
    }
    if segment.starts_with('.') || segment.starts_with('-') {
        return Err(format!("segment {segment:?} starts with `.` or `-`"));
    }
    if segment.ends_with(".lock") {
        return Err(format!("segment {segment:?} ends in .lock"));
    }
    if let Some(c) = segment
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "segment {segment:?} contains {c:?}; use letters, digits, `.`, `_` and `-`"
        ));
    }
    Ok(())
}

/// Check the registered branch: a valid branch name (git-check-ref-format)
/// outside the lifecycle's namespaces.
pub fn validate_branch(branch: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{branch:?} is not a valid branch name: {why}"));
    if branch.is_empty() {
        return bad("it is empty");
    }
    if branch.starts_with('-') || branch.starts_with('/') || branch.ends_with('/') {
        return bad("it starts with `-` or `/`, or ends with `/`");
    }
    if branch.ends_with('.') || branch.ends_with(".lock") {
        return bad("it ends with `.` or `.lock`");
    }
    if branch.contains("..") || branch.contains("@{") || branch.contains("//") || branch == "@" {
        return bad("it contains `..`, `@{` or `//`");
    }
    if branch.chars().any(|c| {
        c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    }) {
        return bad("it contains a space, a control character or one of ~^:?*[\\");
    }
    if branch.split('/').any(|c| c.starts_with('.')) {
        return bad("a component starts with `.`");
    }
    if let Some(ns) = LIFECYCLE_NAMESPACES
        .iter()
        .find(|ns| branch.starts_with(**ns))
    {
        return Err(format!(
            "{branch:?} is inside `{ns}`, which holds package drafts and proposals; pick another branch"
        ));
    }
    Ok(())
}

/// Normalise and check a package directory: leading and trailing `/` are
/// trimmed; segments follow the repository-name rules.
pub fn normalize_directory(directory: &str) -> Result<String, String> {
    let trimmed = directory.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for segment in trimmed.split('/') {
        check_segment(segment).map_err(|e| format!("directory {directory:?}: {e}"))?;
    }
    Ok(trimmed.to_string())
}

/// Check a user name: `[A-Za-z0-9._@-]+`.
pub fn validate_user_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 128 {
        return Err("a user name has 1 to 128 characters".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-')))
    {
        return Err(format!(
            "user name {name:?} contains {c:?}; use letters, digits, `.`, `_`, `@` and `-`"
        ));
    }
    Ok(())
}

/// The rule new package path segments and workspaces follow (Porch's): a
/// DNS-1123 label.
pub const DNS_LABEL_RULE: &str = "a DNS-1123 label: 1 to 63 lowercase letters, digits and `-`, starting and ending with a letter or digit";

/// The longest package path, in bytes.
pub const MAX_PACKAGE_PATH: usize = 512;

/// Whether `name` is a DNS-1123 label ([`DNS_LABEL_RULE`]).
pub fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// Check the name of a new workspace: a DNS-1123 label, as Porch requires
/// of `spec.workspaceName` (`pkg/registry/porch/strategy.go` line 164 and
/// `pkg/engine/engine.go` line 154, both `util.ValidateK8SName`, which is
/// `validation.IsDNS1123Label`). Workspaces that exist already are read
/// with [`is_existing_workspace`].
pub fn validate_workspace(workspace: &str) -> Result<(), String> {
    if is_dns_label(workspace) {
        Ok(())
    } else {
        Err(format!(
            "workspace {workspace:?} is not valid for a new workspace: a workspace is {DNS_LABEL_RULE} (Porch's rule for workspaceName), e.g. \"ws-1\""
        ))
    }
}

/// Whether `path` names a package that may already exist: `/`-separated
/// segments of `[A-Za-z0-9._-]`, none empty, none starting with `.` or `-`
/// (no `..`, hidden directories or option-like names), none ending in
/// `.lock`, at most [`MAX_PACKAGE_PATH`] bytes. Foreign repositories (Porch's
/// own, older pushes) hold such names; they are listed and move through the
/// lifecycle, but new packages follow [`validate_new_package_path`].
pub fn is_existing_package_path(path: &str) -> bool {
    path.len() <= MAX_PACKAGE_PATH
        && !path.is_empty()
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && !segment.starts_with('.')
                && !segment.starts_with('-')
                && !segment.ends_with(".lock")
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
}

/// Whether `name` is a workspace that may already exist in a lifecycle ref
/// (`drafts/F/<name>`, `proposed/F/<name>`): one segment of the
/// [`is_existing_package_path`] rule (`[A-Za-z0-9._-]`, not starting with
/// `.` or `-`, not ending in `.lock`). Porch lists a draft or proposal
/// whatever its last segment (`pkg/externalrepo/git/git.go` reads the
/// workspace from the ref name), so refs made before the rule, by hand or
/// by other tools stay listed and move through the lifecycle; new
/// workspaces follow [`validate_workspace`].
pub fn is_existing_workspace(name: &str) -> bool {
    !name.contains('/') && is_existing_package_path(name)
}

/// Check the path of a package being created: every `/`-separated segment
/// a DNS-1123 label (Porch's rule), at most [`MAX_PACKAGE_PATH`] bytes.
pub fn validate_new_package_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("a package path cannot be empty".into());
    }
    if path.len() > MAX_PACKAGE_PATH {
        return Err(format!(
            "a package path is at most {MAX_PACKAGE_PATH} bytes; this one has {}",
            path.len()
        ));
    }
    if let Some(segment) = path.split('/').find(|s| !is_dns_label(s)) {
        return Err(format!(
            "package path {path:?} is not valid for a new package: segment {segment:?} must be {DNS_LABEL_RULE}"
        ));
    }
    Ok(())
}

/// The part of an API revision name (`repo.<this>.ws`) a package's path
/// below the repository's directory (its API `packageName`, as Porch names
/// objects) maps to: its `/` become `.`, so `x.y` and `x/y` map alike; two
/// packages of one repository with one key cannot both exist.
pub fn api_name_key(package: &str) -> String {
    package.replace('/', ".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in ["demo", "org/blueprints", "a.b_c-d", "x/y/z"] {
            assert!(validate_repository_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a//b",
            "/a",
            "a/",
            "../x",
            "a/../b",
            ".hidden",
            "-x",
            "a.git",
            "x.lock",
            "published/x",
            "api",
            "healthz",
            "metrics",
            "ui/x",
            "a b",
            "a%2e",
        ] {
            assert!(validate_repository_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn branches() {
        for ok in ["main", "release/1.0", "nested/release"] {
            assert!(validate_branch(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "drafts/x",
            "proposed/x",
            "deletionProposed/x",
            "a..b",
            "-a",
            "a.lock",
            "a b",
            "a@{1}",
            ".a",
            "a/",
        ] {
            assert!(validate_branch(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn new_names_are_dns_labels_and_existing_ones_are_not_option_like() {
        for ok in ["basens", "k01", "catalog/gcp/bucket", "a-b/c1"] {
            assert_eq!(validate_new_package_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "-x",
            "x.y",
            "Upper",
            "a_b",
            "a/",
            "/a",
            "a//b",
            "x-",
            "",
            &"a".repeat(64),
        ] {
            let e = validate_new_package_path(bad).expect_err(bad);
            assert!(e.contains("DNS-1123") || e.contains("empty"), "{e}");
        }
        assert!(validate_new_package_path(&"a/".repeat(300)).is_err());
        for ok in ["x.y", "Upper/a_b", "basens"] {
            assert!(is_existing_package_path(ok), "{ok}");
        }
        for bad in ["-x", "a/-x", ".x", "a/../b", "a.lock", "a b", ""] {
            assert!(!is_existing_package_path(bad), "{bad}");
        }
        assert_eq!(validate_workspace("ws-1"), Ok(()));
        for bad in ["-w", "w-", "W", "w.1", "w_1", ""] {
            assert!(validate_workspace(bad).is_err(), "{bad}");
        }
        assert_eq!(api_name_key("x/y"), api_name_key("x.y"));
    }

    #[test]
    fn directories() {
        assert_eq!(
            normalize_directory("/blueprints/").as_deref(),
            Ok("blueprints")
        );
        assert_eq!(normalize_directory("").as_deref(), Ok(""));
        assert!(normalize_directory("a/../b").is_err());
        assert!(normalize_directory("a//b").is_err());
    }
}
