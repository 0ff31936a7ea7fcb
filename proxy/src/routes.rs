//! Where a request goes: from a URL path to a [`Route`].
//!
//! This is pure string work with no I/O, so it is easy to test. A repository
//! part that is not a valid repository name (the config's one rule) is no
//! route at all; valid names are matched exactly against the registry later,
//! so a path that does not name a registered repository never reaches the
//! disk.

/// Which face of a repository a URL addresses (contract §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// `/<repo>.git`: every ref; fetch and push; needs a user.
    Authoring,
    /// `/published/<repo>.git`: published content only, read-only.
    Published,
}

/// The two Git services of the smart-HTTP protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GitService {
    /// Fetch and clone.
    UploadPack,
    /// Push.
    ReceivePack,
}

impl GitService {
    /// The service name as it appears on the wire (`git-upload-pack`).
    pub fn wire_name(self) -> &'static str {
        match self {
            GitService::UploadPack => "git-upload-pack",
            GitService::ReceivePack => "git-receive-pack",
        }
    }

    /// The git subcommand that implements it (`upload-pack`).
    pub fn subcommand(self) -> &'static str {
        match self {
            GitService::UploadPack => "upload-pack",
            GitService::ReceivePack => "receive-pack",
        }
    }

    /// Parse `service=` of `info/refs`.
    pub fn from_wire(name: &str) -> Option<Self> {
        match name {
            "git-upload-pack" => Some(GitService::UploadPack),
            "git-receive-pack" => Some(GitService::ReceivePack),
            _ => None,
        }
    }
}

/// What a Git URL asks for below the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitEndpoint {
    /// `GET …/info/refs?service=…`: the ref advertisement.
    InfoRefs,
    /// `POST …/git-upload-pack` or `POST …/git-receive-pack`.
    Rpc(GitService),
    /// A dumb-HTTP path (`HEAD`, `objects/…`, `info/packs`): not served.
    Dumb,
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/healthz`
    Health,
    /// `/metrics`
    Metrics,
    /// `/api/…` (the JSON API).
    Api(String),
    /// A Git endpoint of a repository in one of its views.
    Git {
        /// Authoring or published.
        view: View,
        /// The repository name as written in the URL, `.git` removed.
        repository: String,
        /// What is asked of it.
        endpoint: GitEndpoint,
    },
    /// Nothing lives here.
    Unknown,
}

/// Longest path considered; anything longer is not a route.
const MAX_PATH: usize = 1024;

/// Route a URL path (without the query string).
pub fn route(path: &str) -> Route {
    if path.len() > MAX_PATH || !path.starts_with('/') {
        return Route::Unknown;
    }
    match path {
        "/healthz" => return Route::Health,
        "/metrics" => return Route::Metrics,
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/api/") {
        return Route::Api(rest.to_string());
    }
    let (repo_part, endpoint) = if let Some(p) = path.strip_suffix("/info/refs") {
        (p, GitEndpoint::InfoRefs)
    } else if let Some(p) = path.strip_suffix("/git-upload-pack") {
        (p, GitEndpoint::Rpc(GitService::UploadPack))
    } else if let Some(p) = path.strip_suffix("/git-receive-pack") {
        (p, GitEndpoint::Rpc(GitService::ReceivePack))
    } else if let Some(p) = dumb_prefix(path) {
        (p, GitEndpoint::Dumb)
    } else {
        return Route::Unknown;
    };
    let Some(name) = repo_part.strip_prefix('/') else {
        return Route::Unknown;
    };
    let (view, name) = match name.strip_prefix("published/") {
        Some(rest) => (View::Published, rest),
        None => (View::Authoring, name),
    };
    let name = name.strip_suffix(".git").unwrap_or(name);
    // Only a name the config could register is a repository: no `..`,
    // `.` or empty segment, no `%`, `\\` or control characters, nothing
    // reserved. Anything else is no route, before any lookup or disk access.
    if cadgate_config::validate_repository_name(name).is_err() {
        return Route::Unknown;
    }
    Route::Git {
        view,
        repository: name.to_string(),
        endpoint,
    }
}

/// The repository part of a dumb-HTTP path, if it is one.
fn dumb_prefix(path: &str) -> Option<&str> {
    if let Some(i) = path.find("/objects/") {
        return Some(&path[..i]);
    }
    for suffix in [
        "/HEAD",
        "/info/packs",
        "/info/alternates",
        "/info/http-alternates",
    ] {
        if let Some(p) = path.strip_suffix(suffix) {
            return Some(p);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(view: View, repo: &str, endpoint: GitEndpoint) -> Route {
        Route::Git {
            view,
            repository: repo.into(),
            endpoint,
        }
    }

    #[test]
    fn git_endpoints_with_and_without_dot_git() {
        use GitEndpoint::*;
        assert_eq!(
            route("/demo.git/info/refs"),
            git(View::Authoring, "demo", InfoRefs)
        );
        assert_eq!(
            route("/demo/info/refs"),
            git(View::Authoring, "demo", InfoRefs)
        );
        assert_eq!(
            route("/org/blueprints.git/git-upload-pack"),
            git(
                View::Authoring,
                "org/blueprints",
                Rpc(GitService::UploadPack)
            )
        );
        assert_eq!(
            route("/published/demo/git-receive-pack"),
            git(View::Published, "demo", Rpc(GitService::ReceivePack))
        );
        assert_eq!(route("/demo.git/HEAD"), git(View::Authoring, "demo", Dumb));
        assert_eq!(
            route("/demo.git/objects/info/packs"),
            git(View::Authoring, "demo", Dumb)
        );
    }

    #[test]
    fn fixed_endpoints_and_unknowns() {
        assert_eq!(route("/healthz"), Route::Health);
        assert_eq!(route("/metrics"), Route::Metrics);
        assert_eq!(
            route("/api/v1/repositories"),
            Route::Api("v1/repositories".into())
        );
        assert_eq!(route("/"), Route::Unknown);
        assert_eq!(route("/.git/info/refs"), Route::Unknown);
        assert_eq!(route("/info/refs"), Route::Unknown);
        assert_eq!(route("demo/info/refs"), Route::Unknown);
        assert_eq!(
            route(&format!("/{}/info/refs", "a".repeat(2000))),
            Route::Unknown
        );
    }
}

/// Property tests: hostile paths (issue 12, fuzzing).
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use std::path::{Component, Path};

    /// Where a routed repository would live, under a data directory.
    fn check(path: &str) -> Result<(), TestCaseError> {
        if let Route::Git { repository, .. } = route(path) {
            prop_assert!(cadgate_config::validate_repository_name(&repository).is_ok());
            for bad in ["..", "%", "\\", "\0", "//"] {
                prop_assert!(
                    !repository.contains(bad),
                    "{:?} routed to {:?}",
                    path,
                    repository
                );
            }
            let data = Path::new("/data/repositories");
            let joined = data.join(format!("{repository}.git"));
            prop_assert!(joined.starts_with(data));
            prop_assert!(joined
                .strip_prefix(data)
                .map(|rest| rest.components().all(|c| matches!(c, Component::Normal(_))))
                .unwrap_or(false));
        }
        Ok(())
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9]{1,8}",
            "[a-z]{1,4}\\.git",
            Just("..".to_string()),
            Just(".".to_string()),
            Just(String::new()),
            Just("%2e%2e".to_string()),
            Just("%2F".to_string()),
            Just("%2f..".to_string()),
            Just("..%5c".to_string()),
            Just("a\\..\\b".to_string()),
            Just("published".to_string()),
            Just("api".to_string()),
            Just("-x".to_string()),
            Just("objects".to_string()),
            Just("info".to_string()),
            "\\PC{1,6}",
        ]
    }

    fn suffix() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("/info/refs"),
            Just("/git-upload-pack"),
            Just("/git-receive-pack"),
            Just("/HEAD"),
            Just("/objects/info/packs"),
            Just("/info/packs"),
            Just(""),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_paths_never_panic_or_escape(path in "\\PC{0,300}") {
            check(&path)?;
            check(&format!("/{path}"))?;
        }

        #[test]
        fn path_shaped_input_never_escapes(segments in vec(segment(), 0..8), tail in suffix()) {
            let path = format!("/{}{tail}", segments.join("/"));
            check(&path)?;
        }

        #[test]
        fn valid_names_route_to_themselves(name in "[a-z][a-z0-9-]{0,10}(/[a-z][a-z0-9_-]{0,10}){0,2}") {
            prop_assume!(cadgate_config::validate_repository_name(&name).is_ok());
            prop_assert_eq!(
                route(&format!("/{name}.git/info/refs")),
                Route::Git {
                    view: View::Authoring,
                    repository: name.clone(),
                    endpoint: GitEndpoint::InfoRefs,
                }
            );
            prop_assert_eq!(
                route(&format!("/published/{name}/git-upload-pack")),
                Route::Git {
                    view: View::Published,
                    repository: name,
                    endpoint: GitEndpoint::Rpc(GitService::UploadPack),
                }
            );
        }
    }
}
