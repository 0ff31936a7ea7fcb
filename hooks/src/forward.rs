//! Forward mode (contract §10): the repository cadgate serves is a mirror of
//! one hosted elsewhere. What the lifecycle accepts is pushed upstream first,
//! in one atomic push in which every ref carries the value it is expected to
//! have there (compare-and-swap), and only then applied to the mirror. The
//! upstream's atomic ref update is the only coordination between replicas:
//! when it refuses because a ref moved, the mirror is refreshed and the push
//! judged again, so no two replicas publish the same revision number.

use std::path::Path;
use std::process::Command;

use crate::git::{RefEdit, Repo};
use crate::process::{GitCommand, Transports};

/// Every ref namespace the mirror follows.
const REFSPECS: &[&str] = &[
    "+refs/heads/*:refs/heads/*",
    "+refs/tags/*:refs/tags/*",
    "+refs/notes/*:refs/notes/*",
];

/// Why a forwarded push did not land.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ForwardError {
    /// The upstream refused: a ref was not at the value expected.
    #[error("the upstream changed meanwhile ({0})")]
    Moved(String),
    /// The upstream could not be reached or failed.
    #[error("the upstream {url} failed or could not be reached: {detail}")]
    Unreachable {
        /// The upstream, without credentials.
        url: String,
        /// What git said.
        detail: String,
    },
    /// The push reached the upstream but its answer never came back (the
    /// connection or the upstream died midway): it may or may not have
    /// landed there.
    #[error("the upstream {url} stopped answering during the push: {detail}")]
    Unanswered {
        /// The upstream, without credentials.
        url: String,
        /// What git said.
        detail: String,
    },
    /// The mirror could not be written after the upstream answered.
    #[error(transparent)]
    Local(#[from] crate::git::GitError),
}

/// The upstream of a forward-mode repository.
#[derive(Debug, Clone)]
pub struct Upstream {
    url: String,
    /// `user:token` for HTTP Basic, passed to git in its environment (never
    /// on a command line, never logged).
    credentials: Option<String>,
}

/// Read `user:token` from where `spec` (`env:VARIABLE` or `file:/path`) says.
pub fn read_credentials(spec: &str) -> Result<String, String> {
    let value = if let Some(variable) = spec.strip_prefix("env:") {
        std::env::var(variable)
            .map_err(|_| format!("the upstream credentials variable {variable} is not set"))?
    } else if let Some(path) = spec.strip_prefix("file:") {
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the upstream credentials file {path}: {e}"))?
    } else {
        return Err(format!(
            "upstream_credentials {spec:?} must be env:VARIABLE or file:/path"
        ));
    };
    let value = value.trim().to_string();
    if !value.contains(':') {
        return Err("the upstream credentials must read user:token".into());
    }
    Ok(value)
}

impl Upstream {
    /// The upstream at `url`, authenticated with `credentials` (`user:token`).
    pub fn new(url: &str, credentials: Option<String>) -> Self {
        Self {
            url: url.to_string(),
            credentials,
        }
    }

    /// The upstream named by the environment `cadgate serve` gives its hooks
    /// (`CADGATE_UPSTREAM`, `CADGATE_UPSTREAM_CREDENTIALS`).
    pub fn from_env() -> Option<Self> {
        let url = std::env::var("CADGATE_UPSTREAM")
            .ok()
            .filter(|u| !u.is_empty())?;
        let credentials = std::env::var("CADGATE_UPSTREAM_CREDENTIALS")
            .ok()
            .filter(|c| !c.is_empty());
        Some(Self::new(&url, credentials))
    }

    /// The environment that makes a hook's [`Upstream::from_env`] this
    /// upstream (the credentials travel in the environment, never in argv).
    pub fn hook_env(&self) -> Vec<(String, String)> {
        let mut env = vec![("CADGATE_UPSTREAM".to_string(), self.url.clone())];
        if let Some(credentials) = &self.credentials {
            env.push((
                "CADGATE_UPSTREAM_CREDENTIALS".to_string(),
                credentials.clone(),
            ));
        }
        env
    }

    /// The URL, without any credentials it may carry (for messages).
    pub fn url(&self) -> String {
        let Some((scheme, rest)) = self.url.split_once("://") else {
            return self.url.clone();
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        format!("{scheme}://{host}{path}")
    }

    /// The config for git talking to the upstream: the credentials as an
    /// `Authorization` header scoped to its URL.
    fn git_config(&self) -> Vec<(String, String)> {
        use base64::Engine as _;
        // An upstream that stalls (under 1 byte/s for 30 s) fails the
        // operation instead of holding a push until the request deadline.
        let mut config = vec![
            ("http.lowSpeedLimit".to_string(), "1".to_string()),
            ("http.lowSpeedTime".to_string(), "30".to_string()),
        ];
        if let Some(credentials) = &self.credentials {
            config.push((
                format!("http.{}.extraHeader", self.url),
                format!(
                    "Authorization: Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(credentials)
                ),
            ));
        }
        config
    }

    /// git about the mirror at `git_dir`, on the clean environment, allowed
    /// the transports an admin may configure; an `ssh://` upstream also
    /// gets the HOME and agent socket ssh needs for its keys.
    fn git(&self, git_dir: &Path, args: &[&str]) -> Command {
        let mut command = GitCommand::new("git")
            .git_dir(git_dir)
            .transports(Transports::Admin)
            .args(args);
        for (key, value) in self.git_config() {
            command = command.config(&key, &value);
        }
        if self.url.starts_with("ssh://") {
            command = command.pass_env("HOME").pass_env("SSH_AUTH_SOCK");
        }
        command.into_std()
    }

    fn unreachable(&self, stderr: &str) -> ForwardError {
        ForwardError::Unreachable {
            url: self.url(),
            detail: explain(stderr),
        }
    }

    /// Bring the mirror at `git_dir` in step with the upstream (every branch,
    /// tag and note; refs gone upstream go here too).
    pub fn fetch(&self, git_dir: &Path) -> Result<(), ForwardError> {
        let mut args = vec![
            "fetch",
            "--quiet",
            "--prune",
            "--no-write-fetch-head",
            &self.url,
        ];
        args.extend_from_slice(REFSPECS);
        let out = self
            .git(git_dir, &args)
            .output()
            .map_err(|e| self.unreachable(&e.to_string()))?;
        if !out.status.success() {
            return Err(self.unreachable(&String::from_utf8_lossy(&out.stderr)));
        }
        // A fetch writes every new ref as a loose file; pack them so reads
        // of the mirror stay fast.
        Ok(crate::git::pack_refs(Path::new("git"), git_dir)?)
    }

    /// The upstream's refs, `(name, object)`, for a cheap comparison with
    /// the mirror.
    pub fn refs(&self, git_dir: &Path) -> Result<Vec<(String, String)>, ForwardError> {
        let out = self
            // Protocol v0: the whole comparison is one request (v2 needs two).
            .git(
                git_dir,
                &[
                    "-c",
                    "protocol.version=0",
                    "ls-remote",
                    &self.url,
                    "refs/heads/*",
                    "refs/tags/*",
                    "refs/notes/*",
                ],
            )
            .output()
            .map_err(|e| self.unreachable(&e.to_string()))?;
        if !out.status.success() {
            return Err(self.unreachable(&String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .filter(|(_, name)| !name.ends_with("^{}"))
            .map(|(oid, name)| (name.to_string(), oid.to_string()))
            .collect())
    }

    /// Push `edits` upstream in one atomic push, each ref expected at its
    /// old value there (absent for creations).
    pub fn push(&self, repo: &Repo, edits: &[RefEdit]) -> Result<(), ForwardError> {
        if edits.is_empty() {
            return Ok(());
        }
        let mut args: Vec<String> = vec![
            "push".into(),
            "--atomic".into(),
            "--porcelain".into(),
            "--no-verify".into(),
        ];
        let mut refspecs = Vec::new();
        for edit in edits {
            match edit {
                RefEdit::Create { name, new } => {
                    args.push(format!("--force-with-lease={name}:"));
                    refspecs.push(format!("{new}:{name}"));
                }
                RefEdit::Update { name, new, old } => {
                    // No `+`: a forced refspec would override the lease. The
                    // lease alone allows a non-fast-forward when it holds.
                    args.push(format!("--force-with-lease={name}:{old}"));
                    refspecs.push(format!("{new}:{name}"));
                }
                RefEdit::Delete { name, old } => {
                    args.push(format!("--force-with-lease={name}:{old}"));
                    refspecs.push(format!(":{name}"));
                }
            }
        }
        args.push(self.url.clone());
        args.extend(refspecs);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self
            .git(repo.git_dir(), &args)
            .output()
            .map_err(|e| self.unreachable(&e.to_string()))?;
        if out.status.success() {
            return Ok(());
        }
        let report = String::from_utf8_lossy(&out.stdout);
        let refused: Vec<&str> = report
            .lines()
            .filter(|l| l.starts_with('!'))
            .filter_map(|l| l.split('\t').nth(2))
            .collect();
        if refused.is_empty() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            // Failing before the pack was sent (no connection, 401, a 5xx
            // on the advertisement) changed nothing upstream; failing while
            // the upstream received it leaves the outcome unknown.
            let midway = ["RPC failed", "hung up", "unexpected disconnect"]
                .iter()
                .any(|sign| stderr.contains(sign));
            match self.unreachable(&stderr) {
                ForwardError::Unreachable { url, detail } if midway => {
                    Err(ForwardError::Unanswered { url, detail })
                }
                other => Err(other),
            }
        } else {
            Err(ForwardError::Moved(refused.join(", ")))
        }
    }
}

/// What git's complaint about the upstream means, in one line for the
/// person at the terminal: git words a refused credential as a failed
/// prompt, which says nothing to someone pushing through cadgate.
fn explain(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("git failed")
        .trim();
    if [
        "could not read Username",
        "Authentication failed",
        "error: 401",
    ]
    .iter()
    .any(|sign| stderr.contains(sign))
    {
        "it refused cadgate's credentials (HTTP 401); check the repository's upstream_credentials"
            .into()
    } else if stderr.contains("error: 403") {
        "it denied cadgate access (HTTP 403); the account in upstream_credentials needs read and write access".into()
    } else {
        line.to_string()
    }
}
