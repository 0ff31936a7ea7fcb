//! Fetches the server makes itself: clone or upgrade from a Git URL that a
//! user (or a Kptfile a user wrote) named.
//!
//! Such a URL is hostile until checked, so every one goes through this
//! module, in this order:
//!
//! 1. [`check_url`], [`check_ref`]: `http://` or `https://` with a host, no
//!    leading `-`, no control characters or spaces; refs by git's
//!    `check-ref-format` rules. Nothing reaches git before this.
//! 2. [`destination`]: a URL naming this server (its listen address, its
//!    `public_url`, or the request's Host) is resolved to the registered
//!    repository and authorized as the caller — the authoring view needs the
//!    reader role, the published view the reader role or
//!    `published_anonymous` — and then fetched by path, so the caller
//!    reads nothing they could not read directly. Any other host is
//!    resolved with DNS and every address checked: loopback, private,
//!    link-local, unspecified, multicast and other non-public addresses are
//!    refused unless `[server] fetch_allow` lists them. The fetch is pinned
//!    to the checked address (`http.curloptResolve`) and follows no
//!    redirect, so a second DNS answer or a 302 cannot move it elsewhere.
//! 3. [`fetch`]: into a scratch repository under the data directory
//!    (removed afterwards; the served repository is never fetched into and
//!    so never becomes shallow), depth 1, with `fetch.fsckObjects` (and
//!    `.git`-like entries as errors), in a slot of the git pool, killed at
//!    `[server] fetch_timeout_secs`, on the clean environment (no HOME, no
//!    global config, no credential helper: the server's credentials never
//!    go to a URL a user chose).
//!
//! Every network failure answers the same "cannot fetch <url>" (without
//! its userinfo), so the answers do not tell open ports from closed ones;
//! the server log has the detail.
//!
//! Limits: the DNS check and the pin cover the connection git makes to the
//! named host; an allowed proxy or a public host that itself forwards to
//! the internal network is outside what the server can see.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cadgate_config::Role;
use cadgate_hooks::process::{check_user_value, GitCommand, Transports};
use http::{HeaderMap, StatusCode};

use crate::auth::{self, Principal};
use crate::error::HttpError;
use crate::repositories::Repository;
use crate::service::State;

fn invalid(message: impl Into<String>) -> HttpError {
    HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, message).json("invalid")
}

/// A checked `http(s)` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitUrl {
    /// As given (userinfo included: it is the user's own credential for
    /// that host).
    pub text: String,
    /// `http` or `https`.
    pub scheme: String,
    /// The host, lower case, IPv6 without brackets.
    pub host: String,
    /// The port (the scheme's default when not given).
    pub port: u16,
    /// The path, e.g. `/published/blueprints.git`.
    pub path: String,
}

impl GitUrl {
    /// The URL without `user:password@` (for messages, logs and Kptfiles).
    pub fn shown(&self) -> String {
        without_userinfo(&self.text)
    }
}

/// Check a URL a user or a Kptfile named (`what` names it in the error).
pub fn check_url(what: &str, text: &str) -> Result<GitUrl, HttpError> {
    check_user_value(what, text).map_err(|e| invalid(e.to_string()))?;
    if text.chars().any(char::is_whitespace) {
        return Err(invalid(format!("{what} must not hold spaces")));
    }
    let refuse = || {
        invalid(format!(
            "{what} must be an http:// or https:// URL with a host"
        ))
    };
    let uri: http::Uri = text.parse().map_err(|_| refuse())?;
    let scheme = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") => "http",
        Some(s) if s.eq_ignore_ascii_case("https") => "https",
        _ => return Err(refuse()),
    };
    let authority = uri.authority().ok_or_else(refuse)?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if host.is_empty() || host.starts_with('-') {
        return Err(refuse());
    }
    let port = authority
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    Ok(GitUrl {
        text: text.to_string(),
        scheme: scheme.to_string(),
        host,
        port,
        path: uri.path().to_string(),
    })
}

/// Check a ref name a user or a Kptfile named, by `git check-ref-format`'s
/// rules (a short name like `basens/v2` or a full `refs/…` one).
pub fn check_ref(what: &str, name: &str) -> Result<(), HttpError> {
    check_user_value(what, name).map_err(|e| invalid(e.to_string()))?;
    let bad = name.contains("..")
        || name.contains("@{")
        || name == "@"
        || name.contains("//")
        || name.starts_with('/')
        || name.ends_with('/')
        || name.ends_with('.')
        || name
            .chars()
            .any(|c| c.is_whitespace() || "~^:?*[\\".contains(c))
        || name
            .split('/')
            .any(|part| part.starts_with('.') || part.ends_with(".lock"));
    if bad {
        return Err(invalid(format!("{what} {name:?} is not a ref name")));
    }
    Ok(())
}

/// Check a package directory inside an upstream a user or a Kptfile named.
pub fn check_directory(what: &str, directory: &str) -> Result<(), HttpError> {
    let trimmed = directory.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(());
    }
    check_user_value(what, trimmed).map_err(|e| invalid(e.to_string()))?;
    if trimmed
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
        || trimmed.chars().any(|c| "*?[\\".contains(c))
    {
        return Err(invalid(format!(
            "{what} {directory:?} is not a package directory"
        )));
    }
    Ok(())
}

/// Is `address` one anybody on the internet could reach (not loopback,
/// private, link-local, unspecified, multicast, shared or reserved)?
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
                || (first == 0x64 && v6.segments()[1] == 0xff9b))
        }
    }
}

/// Where a checked URL leads.
pub enum Destination {
    /// One of this server's repositories, authorized for the caller: the
    /// directory to fetch from (the published sibling for a published URL).
    Local(PathBuf),
    /// Another host, at an address that was checked; git connects there.
    Remote {
        /// `host:port:address` for `http.curloptResolve`.
        pin: String,
    },
}

/// Where `url` leads for `principal` (see the module documentation).
pub async fn destination(
    state: &State,
    principal: &Principal,
    headers: &HeaderMap,
    url: &GitUrl,
) -> Result<Destination, HttpError> {
    if names_this_server(state, headers, url).await {
        return this_server(state, principal, url).map(Destination::Local);
    }
    let timeout = Duration::from_secs(state.config.server.fetch_timeout_secs);
    let lookup = tokio::net::lookup_host((url.host.as_str(), url.port));
    let addresses: Vec<SocketAddr> = match tokio::time::timeout(timeout, lookup).await {
        Ok(Ok(found)) => found.collect(),
        Ok(Err(e)) => {
            tracing::warn!(url = %url.shown(), error = %e, "cannot resolve a fetch's host");
            Vec::new()
        }
        Err(_) => {
            tracing::warn!(url = %url.shown(), "resolving a fetch's host timed out");
            Vec::new()
        }
    };
    let Some(first) = addresses.first() else {
        return Err(cannot_fetch(url));
    };
    let allow = &state.config.server.fetch_allow;
    if let Some(refused) = addresses.iter().find(|a| {
        !is_public(a.ip()) && !allow.iter().any(|e| e.allows(&url.host, url.port, a.ip()))
    }) {
        tracing::warn!(url = %url.shown(), address = %refused.ip(), "refused a fetch to a non-public address");
        return Err(invalid(format!(
            "the server does not fetch from {}: its host is a loopback, private or otherwise internal address; an admin can allow it with [server] fetch_allow",
            url.shown()
        )));
    }
    let address = match first.ip() {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    Ok(Destination::Remote {
        pin: format!("{}:{}:{address}", url.host, url.port),
    })
}

/// Does `url` name this server: its listen address, its `public_url`, or
/// the host the request came to?
async fn names_this_server(state: &State, headers: &HeaderMap, url: &GitUrl) -> bool {
    let same = |host: &str, port: u16| host.eq_ignore_ascii_case(&url.host) && port == url.port;
    let listen = state.config.server.listen;
    if let Some(public) = state.config.server.public_url.as_deref() {
        if let Ok(public) = check_url("public_url", public) {
            if same(&public.host, public.port) {
                return true;
            }
        }
    }
    if let Some(host) = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| check_url("Host", &format!("{}://{h}", url.scheme)).ok())
    {
        if same(&host.host, host.port) {
            return true;
        }
    }
    if url.port != listen.port() {
        return false;
    }
    // The listen address itself, or (listening on every interface) any
    // address of this machine the host resolves to.
    let resolved: Vec<IpAddr> = match url.host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((url.host.as_str(), url.port))
            .await
            .map(|found| found.map(|a| a.ip()).collect())
            .unwrap_or_default(),
    };
    resolved.iter().any(|ip| {
        *ip == listen.ip()
            || (listen.ip().is_unspecified() && (ip.is_loopback() || !is_public(*ip)))
    })
}

/// The directory of the registered repository `url` names on this server,
/// if the caller may read that view of it.
fn this_server(state: &State, principal: &Principal, url: &GitUrl) -> Result<PathBuf, HttpError> {
    let base = state
        .config
        .server
        .public_url
        .as_deref()
        .and_then(|p| check_url("public_url", p).ok())
        .map(|p| p.path.trim_end_matches('/').to_string())
        .unwrap_or_default();
    let path = url.path.strip_prefix(&base).unwrap_or(&url.path);
    let path = path.trim_matches('/');
    let (published, name) = match path.strip_prefix("published/") {
        Some(rest) => (true, rest),
        None => (false, path),
    };
    let name = name.strip_suffix(".git").unwrap_or(name);
    let repo: &Arc<Repository> = state.registry.get(name).ok_or_else(|| {
        invalid(format!(
            "{} names this server but no repository registered on it",
            url.shown()
        ))
    })?;
    let role = auth::authorize(
        &state.config,
        principal,
        name,
        Role::Reader,
        "cloning from it",
    );
    match (published, role) {
        (_, Ok(_)) if published => Ok(repo.published.clone()),
        (_, Ok(_)) => Ok(repo.path.clone()),
        (true, Err(_)) if repo.config.published_anonymous => Ok(repo.published.clone()),
        (_, Err(e)) => Err(e.json("forbidden")),
    }
}

/// The one answer to every failed fetch.
fn cannot_fetch(url: &GitUrl) -> HttpError {
    invalid(format!("cannot fetch {}", url.shown()))
}

/// A scratch repository under the data directory, removed when dropped.
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// A new empty bare repository under `data_dir/.scratch/`.
    pub fn create(git: &Path, data_dir: &Path) -> Result<Self, HttpError> {
        let mut random = [0u8; 12];
        getrandom::fill(&mut random).map_err(|e| HttpError::internal(e.to_string()))?;
        let dir = data_dir
            .join(".scratch")
            .join(format!("fetch-{}", hex::encode(random)));
        std::fs::create_dir_all(&dir).map_err(|e| {
            HttpError::internal(format!("cannot create {}: {e}", dir.display())).json("internal")
        })?;
        let scratch = Self { dir };
        GitCommand::new(git)
            .args(["init", "--bare", "--quiet"])
            .arg(&scratch.dir)
            .run()
            .map_err(|e| HttpError::internal(e.to_string()).json("internal"))?;
        Ok(scratch)
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fetch command for `url` (or the local path it was resolved to), on
/// the clean environment, allowed only the transports it needs, with git's
/// object checks, bounded by `[server] fetch_timeout_secs`.
fn remote_command(
    state: &State,
    destination: &Destination,
    url: &GitUrl,
) -> Result<(GitCommand, String), HttpError> {
    let timeout = state.config.server.fetch_timeout_secs;
    let command = GitCommand::new(state.runner.git())
        .config("http.followRedirects", "false")
        .config("http.lowSpeedLimit", "1")
        .config("http.lowSpeedTime", &timeout.to_string())
        .config("transfer.fsckObjects", "true")
        .config("fetch.fsckObjects", "true")
        .config("fetch.fsck.hasDotgit", "error")
        .config("protocol.version", "2")
        .timeout(Duration::from_secs(timeout));
    Ok(match destination {
        Destination::Local(path) => {
            let path = std::fs::canonicalize(path)
                .map_err(|e| HttpError::internal(e.to_string()).json("internal"))?;
            (
                command.transports(Transports::Local),
                path.to_string_lossy().into_owned(),
            )
        }
        Destination::Remote { pin } => (
            command
                .transports(Transports::Web)
                .config("http.curloptResolve", pin),
            url.text.clone(),
        ),
    })
}

/// Fetch `refs` (checked ref names) of `url` into a new scratch repository;
/// returns it and the commit each ref resolved to.
pub async fn fetch(
    state: &State,
    destination: &Destination,
    url: &GitUrl,
    refs: &[&str],
) -> Result<(Scratch, Vec<String>), HttpError> {
    for reference in refs {
        check_ref("the ref", reference)?;
    }
    let git = state.runner.git().to_path_buf();
    let data_dir = state.config.server.data_dir.clone();
    let scratch = tokio::task::spawn_blocking(move || Scratch::create(&git, &data_dir))
        .await
        .map_err(|e| HttpError::internal(e.to_string()).json("internal"))??;
    let (command, source) = remote_command(state, destination, url)?;
    let mut command = command
        .git_dir(scratch.dir())
        .args([
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--no-recurse-submodules",
            "--depth",
            "1",
        ])
        .user_arg("the URL", &source)
        .map_err(|e| invalid(e.to_string()))?;
    for (i, reference) in refs.iter().enumerate() {
        command = command.arg(format!("+{reference}:refs/fetched/{i}"));
    }
    let finished = state.runner.run(command).await?;
    if !finished.success {
        if finished.stderr.contains("fsck error") {
            let reason = finished
                .stderr
                .lines()
                .find(|l| l.starts_with("error: object"))
                .unwrap_or("an object is malformed");
            return Err(invalid(format!(
                "the objects of {} fail git's integrity checks: {}",
                url.shown(),
                reason.trim_start_matches("error: ")
            )));
        }
        tracing::warn!(url = %url.shown(), timed_out = finished.timed_out, stderr = %finished.stderr.trim(), "a server-side fetch failed");
        return Err(cannot_fetch(url));
    }
    let git = state.runner.git().to_path_buf();
    let dir = scratch.dir().to_path_buf();
    let count = refs.len();
    let resolved = tokio::task::spawn_blocking(move || {
        (0..count)
            .map(|i| {
                GitCommand::new(&git)
                    .git_dir(&dir)
                    .args(["rev-parse", "--verify", "--quiet"])
                    .arg(format!("refs/fetched/{i}^{{commit}}"))
                    .run()
                    .map(|c| c.trim().to_string())
                    .ok()
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| HttpError::internal(e.to_string()).json("internal"))?;
    let mut commits = Vec::new();
    for (reference, commit) in refs.iter().zip(resolved) {
        commits.push(
            commit.ok_or_else(|| {
                invalid(format!("{reference} of {} is not a commit", url.shown()))
            })?,
        );
    }
    Ok((scratch, commits))
}

/// The `directory/vN` tags at `url`: the highest N, with the same checks
/// and slot as a fetch.
pub async fn latest_revision(
    state: &State,
    destination: &Destination,
    url: &GitUrl,
    directory: &str,
) -> Result<u64, HttpError> {
    check_directory("the upstream directory", directory)?;
    let (command, source) = remote_command(state, destination, url)?;
    let command = command
        .args(["ls-remote", "--tags"])
        .user_arg("the URL", &source)
        .map_err(|e| invalid(e.to_string()))?
        .arg(format!("refs/tags/{directory}/v*"));
    let finished = state.runner.run(command).await?;
    if !finished.success {
        tracing::warn!(url = %url.shown(), timed_out = finished.timed_out, stderr = %finished.stderr.trim(), "a server-side ls-remote failed");
        return Err(cannot_fetch(url));
    }
    String::from_utf8_lossy(&finished.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter_map(|(_, name)| {
            cadgate_hooks::refs::tag_revision(name.strip_prefix("refs/tags/")?, directory)
        })
        .max()
        .ok_or_else(|| {
            invalid(format!(
                "the upstream {} has no published revision of {directory}",
                url.shown()
            ))
        })
}

/// `url` without a `user:password@` part.
pub fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(e: HttpError) -> u16 {
        e.status.as_u16()
    }

    #[test]
    fn urls_that_are_not_plain_http_are_refused() {
        for (url, why) in [
            ("", "is empty"),
            ("--upload-pack=touch /tmp/owned;", "must not start with '-'"),
            ("-https://host/x.git", "must not start with '-'"),
            ("https://host/x.git\n", "control characters"),
            ("https://host/x\u{7}.git", "control characters"),
            ("https://host/x y.git", "spaces"),
            ("file:///etc", "http:// or https://"),
            ("ssh://host/x.git", "http:// or https://"),
            ("ext::sh -c touch% /tmp/owned", "spaces"),
            ("ext::sh", "http:// or https://"),
            ("host:x.git", "http:// or https://"),
            ("/srv/x.git", "http:// or https://"),
            ("https:///x.git", "http:// or https://"),
            ("http://-oProxyCommand=x/y", "http:// or https://"),
        ] {
            let error = check_url("repo", url).expect_err(url);
            assert!(error.message.contains(why), "{url:?}: {}", error.message);
            assert_eq!(status(error), 422);
        }
        let ok = check_url("repo", "https://u:p@Git.Example.com/a/b.git").expect("valid");
        assert_eq!(
            (ok.host.as_str(), ok.port, ok.path.as_str()),
            ("git.example.com", 443, "/a/b.git")
        );
        assert_eq!(ok.shown(), "https://Git.Example.com/a/b.git");
        let ok = check_url("repo", "http://[::1]:8080/x.git").expect("valid");
        assert_eq!((ok.host.as_str(), ok.port), ("::1", 8080));
    }

    #[test]
    fn refs_that_are_not_ref_names_are_refused() {
        for name in [
            "",
            "-x",
            "--upload-pack=x",
            "a..b",
            "a b",
            "a\nb",
            "a~1",
            "a^",
            "a:b",
            "a?",
            "a*",
            "a[",
            "a\\b",
            "/a",
            "a/",
            "a//b",
            "a.",
            ".a",
            "a/.b",
            "a.lock",
            "a@{1}",
            "@",
        ] {
            let error = check_ref("ref", name).expect_err(name);
            assert_eq!(status(error), 422, "{name:?}");
        }
        for name in ["main", "basens/v2", "refs/heads/main", "v1.0"] {
            check_ref("ref", name).expect(name);
        }
        for directory in ["-x", "a/../b", "a/./b", "a*", "a\nb"] {
            check_directory("directory", directory).expect_err(directory);
        }
        check_directory("directory", "/a/b/").expect("valid");
    }

    #[test]
    fn only_public_addresses_are_public() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(internal.parse().expect("ip")), "{internal}");
        }
        for public in ["8.8.8.8", "140.82.112.3", "2606:4700::1111"] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
    }

    #[test]
    fn credentials_never_reach_the_kptfile() {
        assert_eq!(
            without_userinfo("https://u:secret@host:8080/x/y.git"),
            "https://host:8080/x/y.git"
        );
        assert_eq!(without_userinfo("https://host/x.git"), "https://host/x.git");
    }
}
