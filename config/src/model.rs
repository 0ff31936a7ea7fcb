//! The typed configuration (contract §3).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use globset::{Glob, GlobSet, GlobSetBuilder};
use sha2::{Digest, Sha256};

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from; `None` when built in memory.
    pub source: Option<PathBuf>,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[[repository]]`, in file order.
    pub repositories: Vec<RepositoryConfig>,
    /// `[policy]`.
    pub policy: PolicyConfig,
    /// `[hook]`: hook mode's settings.
    pub hook: HookConfig,
    /// `[[user]]`, in file order.
    pub users: Vec<UserConfig>,
    /// `[[webhook]]`, in file order.
    pub webhooks: Vec<WebhookConfig>,
}

impl Config {
    /// The repository registered under `name`.
    pub fn repository(&self, name: &str) -> Option<&RepositoryConfig> {
        self.repositories.iter().find(|r| r.name == name)
    }

    /// The user called `name`.
    pub fn user(&self, name: &str) -> Option<&UserConfig> {
        self.users.iter().find(|u| u.name == name)
    }
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `listen`: the address to bind (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// `data_dir`: where repositories live (default `cadgate-data`).
    pub data_dir: PathBuf,
    /// `max_git_processes`: git children at once (default 32).
    pub max_git_processes: usize,
    /// `queue_timeout_secs`: wait for a git slot before a 503 (default 10).
    pub queue_timeout_secs: u64,
    /// `request_timeout_secs`: a git child running longer is killed (default 3600).
    pub request_timeout_secs: u64,
    /// `max_request_bytes`: fetch request body limit after decoding (default 64 MiB).
    pub max_request_bytes: u64,
    /// `max_push_bytes`: push body limit (default 4 GiB).
    pub max_push_bytes: u64,
    /// `body_timeout_secs`: a request body that sends nothing for this long
    /// is cut and its git child stopped (default 30).
    pub body_timeout_secs: u64,
    /// `write_timeout_secs`: a client that reads nothing of its answer for
    /// this long is disconnected and its git child stopped (default 60).
    pub write_timeout_secs: u64,
    /// `max_connections`: open client connections at once (default 512).
    pub max_connections: usize,
    /// `max_connections_per_client`: open connections from one IP address
    /// (default 64).
    pub max_connections_per_client: usize,
    /// `max_buffered_request_bytes`: request bytes held in memory at once by
    /// all requests together beyond each one's first 64 KiB (default 32 MiB).
    pub max_buffered_request_bytes: u64,
    /// `anonymous_git_share`: percent of `max_git_processes` requests without
    /// a user may hold together (default 50).
    pub anonymous_git_share: u64,
    /// `max_anonymous_git_per_client`: git processes anonymous requests from
    /// one IP address may hold (default 4).
    pub max_anonymous_git_per_client: usize,
    /// `git`: the git binary (default `git`).
    pub git: PathBuf,
    /// `public_url`: the base URL clients reach this server at (behind a
    /// proxy or load balancer), e.g. `https://cadgate.example.com`; written
    /// into cloned Kptfiles. Default: the request's `Host`.
    pub public_url: Option<String>,
    /// `fetch_allow`: the private, loopback or otherwise internal
    /// destinations server-side fetches (clone or upgrade from a Git URL)
    /// may reach. Public addresses need no entry. Default: none.
    pub fetch_allow: Vec<FetchAllow>,
    /// `fetch_timeout_secs`: a server-side fetch running longer is killed
    /// (default 60).
    pub fetch_timeout_secs: u64,
}

/// One `[server] fetch_allow` entry: a network (`10.0.0.0/8`, `::1/128`,
/// or a bare address) or a host name with an optional port
/// (`git.internal`, `git.internal:443`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAllow {
    /// Every address in `address/prefix`.
    Network {
        /// The network's address.
        address: IpAddr,
        /// Its prefix length in bits.
        prefix: u8,
    },
    /// A host name as the URL spells it (lower case), on `port` or any.
    Host {
        /// The host name.
        host: String,
        /// The port, or every port when `None`.
        port: Option<u16>,
    },
}

impl FetchAllow {
    /// Read one entry; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad = || {
            format!(
                "{text:?} is neither a network like \"10.0.0.0/8\" or \"::1/128\" nor a host like \"git.internal\" or \"git.internal:443\""
            )
        };
        if let Some((address, prefix)) = text.split_once('/') {
            let address: IpAddr = address.parse().map_err(|_| bad())?;
            let most = if address.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix
                .parse()
                .ok()
                .filter(|p| *p <= most)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {most}"))?;
            return Ok(Self::Network { address, prefix });
        }
        if let Ok(address) = text.trim_matches(['[', ']']).parse::<IpAddr>() {
            let prefix = if address.is_ipv4() { 32 } else { 128 };
            return Ok(Self::Network { address, prefix });
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port.parse::<u16>().map_err(|_| bad())?)),
            None => (text, None),
        };
        let label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
        };
        if host.is_empty() || host.len() > 253 || !host.split('.').all(label) {
            return Err(bad());
        }
        Ok(Self::Host {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// Does this entry let a fetch reach `address`, named `host` on `port`?
    pub fn allows(&self, host: &str, port: u16, address: IpAddr) -> bool {
        match self {
            Self::Host { host: h, port: p } => {
                h.eq_ignore_ascii_case(host.trim_end_matches('.')) && p.is_none_or(|p| p == port)
            }
            Self::Network {
                address: net,
                prefix,
            } => match (net, address) {
                (IpAddr::V4(net), IpAddr::V4(a)) => {
                    let mask = u32::MAX.checked_shl(32 - u32::from(*prefix)).unwrap_or(0);
                    u32::from(*net) & mask == u32::from(a) & mask
                }
                (IpAddr::V6(net), IpAddr::V6(a)) => {
                    let mask = u128::MAX.checked_shl(128 - u32::from(*prefix)).unwrap_or(0);
                    u128::from(*net) & mask == u128::from(a) & mask
                }
                _ => false,
            },
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("cadgate-data"),
            max_git_processes: 32,
            queue_timeout_secs: 10,
            request_timeout_secs: 3600,
            max_request_bytes: 64 << 20,
            max_push_bytes: 4 << 30,
            body_timeout_secs: 30,
            write_timeout_secs: 60,
            max_connections: 512,
            max_connections_per_client: 64,
            max_buffered_request_bytes: 32 << 20,
            anonymous_git_share: 50,
            max_anonymous_git_per_client: 4,
            git: PathBuf::from("git"),
            public_url: None,
            fetch_allow: Vec::new(),
            fetch_timeout_secs: 60,
        }
    }
}

/// `[[repository]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryConfig {
    /// `name`: `/<name>.git` and `/published/<name>.git`.
    pub name: String,
    /// `branch`: the registered branch (default `main`).
    pub branch: String,
    /// `directory`: the package root inside the repository, `/`-trimmed (default "").
    pub directory: String,
    /// `deployment`: what Config Sync reads.
    pub deployment: bool,
    /// `published_anonymous`: anyone may read the published view.
    pub published_anonymous: bool,
    /// `upstream`: forward mode's upstream URL.
    pub upstream: Option<String>,
    /// `upstream_credentials`: `env:VARIABLE` or `file:/path` holding
    /// `user:token` for the upstream (HTTP Basic).
    pub upstream_credentials: Option<String>,
}

impl RepositoryConfig {
    /// A repository with every default and this name.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_string(),
            branch: "main".into(),
            directory: String::new(),
            deployment: false,
            published_anonymous: false,
            upstream: None,
            upstream_credentials: None,
        }
    }
}

/// `[policy]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyConfig {
    /// `self_approval`: may a user publish a proposal they proposed (default false).
    pub self_approval: bool,
}

/// `[hook]`: how a hook installed into another Git host learns who pushes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookConfig {
    /// `user_variable`: an environment variable naming the pusher, tried
    /// before `REMOTE_USER` and `GL_USER`.
    pub user_variable: Option<String>,
}

/// The lifecycle event types, as the event log, `GET /api/v1/events` and
/// `[[webhook]] events` spell them (see the hooks crate's `events` module).
pub const EVENT_TYPES: &[&str] = &[
    "created",
    "updated",
    "proposed",
    "rejected",
    "published",
    "deletion-proposed",
    "deletion-rejected",
    "deleted",
    "draft-deleted",
];

/// `[[webhook]]`: where lifecycle events are POSTed.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `url`: an `http://` or `https://` URL.
    pub url: String,
    /// `events`: the event types to deliver; empty: all.
    pub events: Vec<String>,
    /// `repositories`: glob patterns of repository names; default `["*"]`.
    pub repositories: Vec<String>,
    /// `secret`: `env:VARIABLE` or `file:/path` holding the HMAC key; never
    /// the secret itself.
    pub secret: Option<String>,
    /// `ca_file`: PEM certificates trusted for an `https://` URL besides the
    /// public roots (an internal CA, a self-signed receiver).
    pub ca_file: Option<std::path::PathBuf>,
    globs: GlobSet,
}

impl WebhookConfig {
    /// A webhook; fails with the glob library's message on a bad pattern.
    pub fn new(
        url: &str,
        events: Vec<String>,
        repositories: Vec<String>,
        secret: Option<String>,
    ) -> Result<Self, String> {
        let globs = glob_set(&repositories)?;
        Ok(Self {
            url: url.to_string(),
            events,
            repositories,
            secret,
            ca_file: None,
            globs,
        })
    }

    /// Does this webhook want events of `repository`?
    pub fn wants_repository(&self, repository: &str) -> bool {
        self.globs.is_match(repository)
    }

    /// Does this webhook want events of type `kind`?
    pub fn wants_event(&self, kind: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == kind)
    }

    /// Read the secret from where `secret` says it is kept (surrounding
    /// whitespace trimmed). The error names the place, never the value.
    pub fn read_secret(&self) -> Result<Option<String>, String> {
        self.secret.as_deref().map(read_secret).transpose()
    }
}

/// Read a secret named as `env:VARIABLE` or `file:/path`.
pub fn read_secret(spec: &str) -> Result<String, String> {
    let value = if let Some(variable) = spec.strip_prefix("env:") {
        std::env::var(variable).map_err(|_| format!("the variable {variable} is not set"))?
    } else if let Some(path) = spec.strip_prefix("file:") {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?
    } else {
        return Err(format!("{spec:?} must be env:VARIABLE or file:/path"));
    };
    let value = value.trim().to_string();
    if value.is_empty() {
        return Err(format!("{spec} is empty"));
    }
    Ok(value)
}

/// A role, in privilege order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Fetches the authoring view.
    Reader,
    /// Also creates, updates, proposes and deletes drafts and proposals; proposes deletions.
    Author,
    /// Also publishes, rejects, approves or rejects deletions.
    Approver,
    /// Everything.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [Role::Reader, Role::Author, Role::Approver, Role::Admin];

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Author => "author",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// Parse the config spelling.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[[user]]`.
#[derive(Debug, Clone)]
pub struct UserConfig {
    /// `name`: the HTTP Basic user name.
    pub name: String,
    /// `token_sha256`: SHA-256 of the token.
    pub token_sha256: [u8; 32],
    /// `roles`.
    pub roles: Vec<Role>,
    /// `repositories`: glob patterns of repository names (default `["*"]`).
    pub repositories: Vec<String>,
    globs: GlobSet,
}

impl UserConfig {
    /// A user; fails with the glob library's message on a bad pattern.
    pub fn new(
        name: &str,
        token_sha256: [u8; 32],
        roles: Vec<Role>,
        repositories: Vec<String>,
    ) -> Result<Self, String> {
        let globs = glob_set(&repositories)?;
        Ok(Self {
            name: name.to_string(),
            token_sha256,
            roles,
            repositories,
            globs,
        })
    }

    /// The highest role this user holds on `repository`, or `None` when none
    /// of its patterns match.
    pub fn role_for(&self, repository: &str) -> Option<Role> {
        if self.globs.is_match(repository) {
            self.roles.iter().copied().max()
        } else {
            None
        }
    }
}

/// One matcher for repository-name patterns.
fn glob_set(patterns: &[String]) -> Result<GlobSet, String> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(compile_glob(pattern)?);
    }
    builder.build().map_err(|e| e.to_string())
}

/// Compile one repository pattern (`*` matches across `/` too).
pub(crate) fn compile_glob(pattern: &str) -> Result<Glob, String> {
    Glob::new(pattern).map_err(|e| format!("bad glob {pattern:?}: {e}"))
}

/// The lowercase hex SHA-256 of a token, as `token_sha256` holds it.
pub fn token_sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
