//! The hook entry points git runs, shared by the `cadgate-hook` binary and
//! `cadgate hook …` (which the embedded server installs).
//!
//! Who pushes and with what rights comes from the environment the server
//! sets: `CADGATE_USER` (else `REMOTE_USER`), `CADGATE_ROLE`,
//! `CADGATE_BRANCH` (default `main`), `CADGATE_DIRECTORY`,
//! `CADGATE_SELF_APPROVAL` (`true`/`false`), and `CADGATE_PUBLISHED`, the
//! published view's sibling repository to keep in step (none: no view). A push without an identity is
//! refused, never treated as anyone in particular.

use std::io::Write as _;
use std::path::PathBuf;

use cadgate_config::Role;

use crate::enforce::{enforce, Context};
use crate::git::Repo;
use crate::proc_receive::{read_request, write_outcomes, Outcome};
use crate::published::PublishedRepo;
use crate::refs::Layout;

/// A hook could not do its job (git reports the push as failed).
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// Talking to git failed.
    #[error(transparent)]
    Protocol(#[from] crate::proc_receive::ProtocolError),
    /// Reading or writing the repository failed.
    #[error(transparent)]
    Git(#[from] crate::git::GitError),
    /// I/O on the lock or the pipes failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `proc-receive`: read the push from git, judge and apply it, report.
pub fn proc_receive() -> Result<(), HookError> {
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let request = read_request(stdin, &mut stdout)?;
    let user = env("CADGATE_USER").or_else(|| env("REMOTE_USER"));
    let role = env("CADGATE_ROLE").and_then(|r| Role::parse(&r));
    let (Some(user), Some(role)) = (user, role) else {
        let outcomes: Vec<Outcome> = request
            .commands
            .iter()
            .map(|c| Outcome::Rejected {
                refname: c.refname.clone(),
                reason: "no authenticated user: cadgate refuses pushes without an identity".into(),
            })
            .collect();
        write_outcomes(&mut stdout, &outcomes)?;
        return Ok(());
    };
    let git_dir = PathBuf::from(env("GIT_DIR").unwrap_or_else(|| ".".into()));
    let context = Context {
        layout: Layout::new(
            &env("CADGATE_BRANCH").unwrap_or_else(|| "main".into()),
            &env("CADGATE_DIRECTORY").unwrap_or_default(),
        ),
        user,
        role,
        self_approval: env("CADGATE_SELF_APPROVAL").as_deref() == Some("true"),
    };
    // One lifecycle transaction at a time per repository; the ref
    // transaction's compare-and-swap guards against everything else.
    let lock = std::fs::File::create(git_dir.join("cadgate.lock"))?;
    lock.lock()?;
    let repo = Repo::open(&git_dir)?;
    let verdict = enforce(&repo, &context, &request)?;
    // The published view follows under the same lock, so it never shows
    // publishes out of order; when the push returns, the view has it.
    let mut view_failure = None;
    if let Some(published) = env("CADGATE_PUBLISHED") {
        if !verdict.changed.is_empty() {
            let view = PublishedRepo::at(std::path::Path::new(&published));
            if let Err(e) = view.sync(&repo, &context.layout, Some(&verdict.changed)) {
                view_failure = Some(e);
            }
        }
    }
    drop(lock);
    let mut stderr = std::io::stderr().lock();
    for message in &verdict.messages {
        writeln!(stderr, "cadgate: {message}")?;
    }
    if let Some(e) = view_failure {
        writeln!(
            stderr,
            "cadgate: warning: the push landed but the published view could not follow ({}); the server repairs it on its next start",
            e.to_string().lines().next().unwrap_or_default()
        )?;
    }
    write_outcomes(&mut stdout, &verdict.outcomes)?;
    Ok(())
}
