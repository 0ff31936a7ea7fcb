//! The hook entry points git runs, shared by the `cadgate-hook` binary and
//! `cadgate hook …` (which the embedded server installs).
//!
//! Who pushes and with what rights comes from the environment the server
//! sets: `CADGATE_USER` (else `REMOTE_USER`), `CADGATE_ROLE`,
//! `CADGATE_BRANCH` (default `main`), `CADGATE_DIRECTORY`,
//! `CADGATE_SELF_APPROVAL` (`true`/`false`), `CADGATE_PUBLISHED`, the
//! published view's sibling repository to keep in step (none: no view), and
//! `CADGATE_DOWNSTREAMS_FILE`, the file listing the server's other
//! repositories ([`crate::downstreams`]). A push without an identity is
//! refused, never treated as anyone in particular.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cadgate_config::Role;

use crate::enforce::{enforce_inspected, inspect, Context};
use crate::git::Repo;
use crate::journal;
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

/// Where a hook learns who pushes and what the repository's rules are.
#[derive(Debug, Clone, Default)]
pub struct HookOptions {
    /// Hook mode: the cadgate config to read users, roles and the
    /// repository's settings from. `None`: the environment `cadgate serve` sets.
    pub config: Option<PathBuf>,
    /// Hook mode: the repository's name in that config.
    pub repository: Option<String>,
    /// Hook mode: an environment variable naming the pusher, tried before
    /// `REMOTE_USER` and `GL_USER`.
    pub user_variable: Option<String>,
    /// Hook mode: the published view's sibling repository to keep in step.
    pub published: Option<PathBuf>,
}

/// Who pushes, under which rules, and the published view to keep in step;
/// or why nobody may push.
fn resolve(options: &HookOptions) -> Result<(Context, Option<PathBuf>), String> {
    let Some(config_file) = &options.config else {
        // Behind `cadgate serve`: it authenticated the user and says so.
        let user = env("CADGATE_USER").or_else(|| env("REMOTE_USER"));
        let role = env("CADGATE_ROLE").and_then(|r| Role::parse(&r));
        let (Some(user), Some(role)) = (user, role) else {
            return Err("no authenticated user: cadgate refuses pushes without an identity".into());
        };
        let context = Context {
            layout: Layout::new(
                &env("CADGATE_BRANCH").unwrap_or_else(|| "main".into()),
                &env("CADGATE_DIRECTORY").unwrap_or_default(),
            ),
            user,
            role,
            self_approval: env("CADGATE_SELF_APPROVAL").as_deref() == Some("true"),
            upstream: crate::forward::Upstream::from_env(),
            // The server's other repositories, from the file it names
            // (crate::downstreams); unreadable: nobody may push.
            downstreams: match env(crate::downstreams::VARIABLE) {
                Some(file) => {
                    crate::downstreams::read(Path::new(&file), env("CADGATE_REPOSITORY").as_deref())
                        .map_err(|e| e.to_string())?
                }
                None => Vec::new(),
            },
        };
        return Ok((context, env("CADGATE_PUBLISHED").map(PathBuf::from)));
    };
    // Hook mode: the host authenticated the user; cadgate's config says
    // what they may do.
    let config = cadgate_config::Config::load(config_file).map_err(|e| {
        format!(
            "cadgate's config {} has problems ({}); run cadgate check-config {}",
            config_file.display(),
            e.to_string().lines().next().unwrap_or_default(),
            config_file.display()
        )
    })?;
    let name = options.repository.as_deref().unwrap_or_default();
    let repository = config.repository(name).ok_or_else(|| {
        format!(
            "repository '{name}' is not in {}; reinstall with cadgate hook install --repository <name>",
            config_file.display()
        )
    })?;
    // The install's --user-variable, else the config's [hook] user_variable.
    let variables: Vec<&str> = options
        .user_variable
        .iter()
        .chain(config.hook.user_variable.iter())
        .map(String::as_str)
        .chain(["REMOTE_USER", "GL_USER"])
        .collect();
    let user = variables.iter().find_map(|v| env(v)).ok_or_else(|| {
        format!(
            "no authenticated user: none of {} is set; the Git host must authenticate pushes",
            variables.join(", ")
        )
    })?;
    let role = config
        .user(&user)
        .and_then(|u| u.role_for(name))
        .ok_or_else(|| {
            format!("user '{user}' has no role on repository '{name}' in cadgate's [[user]] table")
        })?;
    let context = Context {
        layout: Layout::new(&repository.branch, &repository.directory),
        user,
        role,
        self_approval: config.policy.self_approval,
        upstream: None,
        // Hook mode: where the host keeps the other repositories is not
        // cadgate's to know; pins are checked within this repository.
        downstreams: Vec::new(),
    };
    Ok((context, options.published.clone()))
}

/// `proc-receive` behind `cadgate serve`: the server's environment says
/// who pushes.
pub fn proc_receive() -> Result<(), HookError> {
    proc_receive_with(&HookOptions::default())
}

/// `proc-receive`: read the push from git, judge and apply it, report.
pub fn proc_receive_with(options: &HookOptions) -> Result<(), HookError> {
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let request = read_request(stdin, &mut stdout)?;
    let (context, published) = match resolve(options) {
        Ok(resolved) => resolved,
        Err(reason) => return Ok(write_outcomes(&mut stdout, &refuse_all(&request, &reason))?),
    };
    let git_dir = PathBuf::from(env("GIT_DIR").unwrap_or_else(|| ".".into()));
    // One lifecycle transaction at a time per repository; the ref
    // transaction's compare-and-swap guards against everything else.
    let lock = std::fs::File::create(git_dir.join("cadgate.lock"))?;
    // User content (Kptfiles) is judged before the lock: never parsed while holding it.
    let inspected = inspect(&Repo::open(&git_dir)?, &context, &request);
    if let Some(refused) = inspected.refuses_all(&context, &request) {
        return Ok(write_outcomes(&mut stdout, &refused)?);
    }
    lock.lock()?;
    let repository = options
        .repository
        .clone()
        .or_else(|| env("CADGATE_REPOSITORY"))
        .unwrap_or_else(|| repository_name(&git_dir));
    // What a killed push left behind (stale ref locks, a half-applied
    // transaction) is completed first, or nothing is changed.
    let recovered = match recover(
        &git_dir,
        &repository,
        &context.layout,
        published.as_deref(),
        options,
    ) {
        Ok(recovery) => recovery.lines(),
        Err(reason) => {
            drop(lock);
            return Ok(write_outcomes(&mut stdout, &refuse_all(&request, &reason))?);
        }
    };
    let mut repo = Repo::open(&git_dir)?;
    let mut verdict = enforce_inspected(&repo, &context, &request, &inspected)?;
    let mut refreshed = verdict.refreshed;
    // Forward mode: a ref moved upstream (another replica published, say).
    // Refresh the mirror and judge again, a bounded number of times.
    for attempt in 1..=8u64 {
        let Some(upstream) = context.upstream.as_ref().filter(|_| verdict.upstream_moved) else {
            break;
        };
        // Replicas that collided back off by different amounts.
        let jitter = u64::from(std::process::id() % 7) * 5;
        std::thread::sleep(std::time::Duration::from_millis(attempt * 10 + jitter));
        if upstream.fetch(&git_dir).is_err() {
            break;
        }
        refreshed = true;
        repo = Repo::open(&git_dir)?;
        verdict = enforce_inspected(&repo, &context, &request, &inspected)?;
        refreshed |= verdict.refreshed;
    }
    // The lifecycle events, under the same lock: the log's order is the
    // order the changes landed in. The refs have moved already, so a failure
    // here is reported to the pusher but does not fail the push.
    let mut events_failure = None;
    if !verdict.events.is_empty() {
        if let Err(e) = crate::events::append(&git_dir, &repository, &context.user, &verdict.events)
        {
            events_failure = Some(e);
        }
    }
    journal::crash_point("after-events");
    // The published view follows under the same lock, so it never shows
    // publishes out of order; when the push returns, the view has it.
    let mut view_failure = None;
    if let Some(published) = published {
        if !verdict.changed.is_empty() || refreshed {
            let view = PublishedRepo::at(&published);
            // After a refresh from the upstream, other replicas' publishes
            // came in too: bring the whole view in step.
            let names = (!refreshed).then_some(verdict.changed.as_slice());
            if let Err(e) = view.sync(&repo, &context.layout, names) {
                view_failure = Some(e);
            }
        }
    }
    journal::crash_point("after-view");
    // Done, unless the events could not be recorded: then the journal stays
    // and the next push (or the server's start) records them.
    let journal_failure = if events_failure.is_none() {
        journal::finish(&git_dir).err()
    } else {
        None
    };
    if !verdict.changed.is_empty() && options.config.is_none() && context.upstream.is_none() {
        collect_garbage_when_due(&git_dir);
    }
    drop(lock);
    let mut stderr = std::io::stderr().lock();
    for line in &recovered {
        writeln!(stderr, "cadgate: {line}")?;
    }
    if let Some(e) = journal_failure {
        writeln!(stderr, "cadgate: warning: {e}")?;
    }
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
    if let Some(e) = events_failure {
        writeln!(
            stderr,
            "cadgate: warning: the push landed but its lifecycle events were not recorded ({e}); event subscribers and webhooks will not see them"
        )?;
    }
    write_outcomes(&mut stdout, &verdict.outcomes)?;
    Ok(())
}

/// In hook mode the host's own git (its maintenance, its admins) may write
/// refs without cadgate's lock: a lock file is taken for stale only when it
/// is at least this old. Behind `cadgate serve`, cadgate is the only writer.
const HOOK_MODE_STALE_LOCK_AGE: Duration = Duration::from_secs(60);

/// [`journal::recover`] for the hook, or why the push cannot go on.
fn recover(
    git_dir: &Path,
    repository: &str,
    layout: &crate::refs::Layout,
    published: Option<&Path>,
    options: &HookOptions,
) -> Result<journal::Recovery, String> {
    let min_age = if options.config.is_some() {
        HOOK_MODE_STALE_LOCK_AGE
    } else {
        Duration::ZERO
    };
    journal::recover(git_dir, repository, layout, published, min_age).map_err(|e| {
        format!(
            "cadgate could not complete an earlier push interrupted by a crash ({}); nothing was changed, push again once an administrator fixed it",
            e.to_string().lines().next().unwrap_or_default()
        )
    })
}

/// Behind `cadgate serve`, receive-pack's own `gc --auto` is off (it would
/// write refs outside the lifecycle lock, see [`journal`]): run it here,
/// under the lock, when git's thresholds are near (about 6700 loose objects
/// sampled from `objects/17`, or 50 packs).
fn collect_garbage_when_due(git_dir: &Path) {
    let count = |dir: &Path, suffix: &str| {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                    .count()
            })
            .unwrap_or(0)
    };
    let objects = git_dir.join("objects");
    if count(&objects.join("17"), "") < 27 && count(&objects.join("pack"), ".pack") < 50 {
        return;
    }
    let _ = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(["-c", "gc.autoDetach=false", "gc", "--auto", "--quiet"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Every command of `request` refused for `reason`.
fn refuse_all(request: &crate::proc_receive::Request, reason: &str) -> Vec<Outcome> {
    request
        .commands
        .iter()
        .map(|c| Outcome::Rejected {
            refname: c.refname.clone(),
            reason: reason.to_string(),
        })
        .collect()
}

/// A name for the repository at `git_dir` when nothing names it: the
/// directory's name without `.git`.
fn repository_name(git_dir: &std::path::Path) -> String {
    let absolute = std::fs::canonicalize(git_dir).unwrap_or_else(|_| git_dir.to_path_buf());
    let name = absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.strip_suffix(".git").unwrap_or(&name).to_string()
}
