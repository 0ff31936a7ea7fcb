//! Running git: a bounded pool of child processes.
//!
//! Every Git request is served by a `git upload-pack` or `git receive-pack`
//! child. This module owns their lifecycle: a slot from a fixed pool (so a
//! burst cannot fork-bomb the machine; a request that waits too long gets a
//! 503), a clean environment, the request body fed to stdin as it arrives, a
//! deadline after which the child is killed, and a report of how it ended.

use std::ffi::OsString;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use cadgate_hooks::process::{Finished, GitCommand};

use crate::error::HttpError;
use crate::observe::Metrics;

/// A request body as an async byte stream (already decompressed).
pub type BodyReader = Pin<Box<dyn AsyncRead + Send>>;

/// What a git child reads on stdin.
pub enum Stdin {
    /// Nothing: stdin is `/dev/null`.
    Empty,
    /// These bytes, then end of input.
    Bytes(Bytes),
    /// `prefix` (already read while inspecting the request), then the rest of
    /// the body, cut off (and reported) past `limit` bytes in total.
    Stream {
        /// Bytes read ahead.
        prefix: Bytes,
        /// The rest of the body.
        rest: BodyReader,
        /// Most bytes allowed in total.
        limit: u64,
    },
}

/// Why feeding stdin stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StdinFailure {
    /// The body was larger than its limit.
    TooLarge,
    /// The body could not be read (broken gzip, client went away).
    Unreadable(String),
}

/// How a git child ended.
#[derive(Debug, Clone)]
pub struct ExitReport {
    /// Exit status 0.
    pub success: bool,
    /// Killed at the deadline.
    pub timed_out: bool,
    /// The last few KiB git wrote to stderr.
    pub stderr: String,
    /// Set when stdin could not be fed completely.
    pub stdin_failure: Option<StdinFailure>,
}

impl ExitReport {
    /// The most telling line of stderr, for a message to the client.
    pub fn headline(&self) -> &str {
        self.stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("git exited without a message")
    }
}

/// A git child that is running: its stdout, and how it will end.
pub struct Running {
    /// The child's stdout, to stream to the client.
    pub stdout: ChildStdout,
    /// Resolves when the child has exited and its slot is free again.
    pub exit: oneshot::Receiver<ExitReport>,
}

/// One git invocation.
pub struct Invocation {
    /// Arguments after `git`.
    pub args: Vec<OsString>,
    /// Environment variables beyond the clean base environment.
    pub env: Vec<(String, String)>,
    /// What to feed to stdin.
    pub stdin: Stdin,
    /// Names the invocation in logs.
    pub label: String,
}

/// Limits of the process pool.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Children at once.
    pub max_processes: usize,
    /// How long a request may wait for a slot.
    pub queue_timeout: Duration,
    /// How long a child may run.
    pub run_timeout: Duration,
}

/// Runs git children within [`Limits`].
pub struct GitRunner {
    git: PathBuf,
    slots: Arc<Semaphore>,
    limits: Limits,
    base_env: Vec<(OsString, OsString)>,
    metrics: Arc<Metrics>,
}

impl GitRunner {
    /// A runner for the `git` binary at `git`; children get `home` as HOME
    /// and otherwise the clean environment every git child gets
    /// ([`cadgate_hooks::process::base_env`]).
    pub fn new(git: PathBuf, home: PathBuf, limits: Limits, metrics: Arc<Metrics>) -> Self {
        let base_env = cadgate_hooks::process::base_env(&home);
        Self {
            git,
            slots: Arc::new(Semaphore::new(limits.max_processes)),
            limits,
            base_env,
            metrics,
        }
    }

    /// The git binary this runner starts.
    pub fn git(&self) -> &std::path::Path {
        &self.git
    }

    /// Wait until every running child has exited, or `deadline` passes.
    /// Returns whether all exited.
    pub async fn drain(&self, deadline: Duration) -> bool {
        let all = u32::try_from(self.limits.max_processes).unwrap_or(u32::MAX);
        tokio::time::timeout(deadline, self.slots.acquire_many(all))
            .await
            .is_ok()
    }

    /// Start a child: take a slot (or fail with 503), spawn, and supervise it.
    pub async fn spawn(&self, invocation: Invocation) -> Result<Running, HttpError> {
        let permit = self.take_slot().await?;
        let mut command = Command::new(&self.git);
        command
            .args(&invocation.args)
            .env_clear()
            .envs(self.base_env.iter().map(|(k, v)| (k, v)))
            .envs(invocation.env.iter().map(|(k, v)| (k, v)))
            .stdin(match invocation.stdin {
                Stdin::Empty => Stdio::null(),
                _ => Stdio::piped(),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| {
            tracing::error!(git = %self.git.display(), error = %e, "cannot start git");
            HttpError::internal(format!(
                "the server cannot run git ({e}); the operator should check server.git"
            ))
        })?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(HttpError::internal("git started without its output pipes"));
        };
        let stdin_pipe = child.stdin.take();
        self.metrics.git_processes.inc();
        let (tx, rx) = oneshot::channel();
        let supervisor = Supervisor {
            label: invocation.label,
            run_timeout: self.limits.run_timeout,
            metrics: self.metrics.clone(),
            _permit: permit,
        };
        tokio::spawn(supervisor.watch(child, stdin_pipe, invocation.stdin, stderr, tx));
        Ok(Running { stdout, exit: rx })
    }

    /// Run a short git command the server itself needs (a fetch from a Git
    /// URL, an `ls-remote`) in a slot of the same pool, to its end: killed,
    /// with its process group, at the command's deadline (the pool's run
    /// timeout when it has none). Returns what it printed and how it ended.
    pub async fn run(&self, command: GitCommand) -> Result<Finished, HttpError> {
        let _permit = self.take_slot().await?;
        let deadline = command.deadline().unwrap_or(self.limits.run_timeout);
        let label = command.describe();
        let mut command = tokio::process::Command::from(command.timeout(deadline).into_std());
        command.kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| {
            tracing::error!(git = %self.git.display(), error = %e, "cannot start git");
            HttpError::internal(format!(
                "the server cannot run git ({e}); the operator should check server.git"
            ))
        })?;
        self.metrics.git_processes.inc();
        let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take())
        else {
            self.metrics.git_processes.dec();
            return Err(HttpError::internal("git started without its output pipes"));
        };
        let out_reader = tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf).await;
            buf
        });
        let err_reader = tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf).await;
            buf
        });
        let (status, timed_out) = match tokio::time::timeout(deadline, child.wait()).await {
            Ok(status) => (status.ok(), false),
            Err(_) => {
                tracing::warn!(git = %label, timeout_s = deadline.as_secs(), "git ran past its deadline; killing it");
                // Not reaped yet: the id is still this child's group.
                if let Some(pid) = child.id() {
                    cadgate_hooks::process::kill_group(pid);
                }
                let _ = child.kill().await;
                (child.wait().await.ok(), true)
            }
        };
        self.metrics.git_processes.dec();
        let stdout = out_reader.await.unwrap_or_default();
        let stderr = String::from_utf8_lossy(&err_reader.await.unwrap_or_default()).into_owned();
        let finished = Finished {
            success: !timed_out && status.is_some_and(|s| s.success()),
            timed_out,
            stdout,
            stderr,
        };
        if !finished.success {
            tracing::warn!(git = %label, status = ?status, timed_out, stderr = %finished.stderr.trim(), "git exited with failure");
        }
        Ok(finished)
    }

    async fn take_slot(&self) -> Result<OwnedSemaphorePermit, HttpError> {
        let slots = self.slots.clone();
        let permit = if self.limits.queue_timeout.is_zero() {
            slots.try_acquire_owned().ok()
        } else {
            tokio::time::timeout(self.limits.queue_timeout, slots.acquire_owned())
                .await
                .ok()
                .and_then(Result::ok)
        };
        permit.ok_or_else(|| {
            self.metrics.git_slot_rejections.inc();
            HttpError::busy(
                format!(
                    "the server is busy: all {} git process slots stayed taken for {} s; retry shortly",
                    self.limits.max_processes,
                    self.limits.queue_timeout.as_secs()
                ),
                self.limits.queue_timeout.as_secs().max(1),
            )
        })
    }
}

/// Owns a child until it exits, then frees its slot.
struct Supervisor {
    label: String,
    run_timeout: Duration,
    metrics: Arc<Metrics>,
    _permit: OwnedSemaphorePermit,
}

/// How much of stderr is kept.
const STDERR_TAIL: usize = 4096;

impl Supervisor {
    async fn watch(
        self,
        mut child: tokio::process::Child,
        stdin_pipe: Option<ChildStdin>,
        stdin: Stdin,
        mut stderr: tokio::process::ChildStderr,
        done: oneshot::Sender<ExitReport>,
    ) {
        let feeder = tokio::spawn(feed(stdin_pipe, stdin));
        let stderr_reader = tokio::spawn(async move {
            let mut tail = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match stderr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        tail.extend_from_slice(&buf[..n]);
                        if tail.len() > 2 * STDERR_TAIL {
                            tail.drain(..tail.len() - STDERR_TAIL);
                        }
                    }
                }
            }
            String::from_utf8_lossy(&tail).into_owned()
        });

        let (status, timed_out) = match tokio::time::timeout(self.run_timeout, child.wait()).await {
            Ok(status) => (status.ok(), false),
            Err(_) => {
                tracing::warn!(git = %self.label, timeout_s = self.run_timeout.as_secs(), "git ran past its deadline; killing it");
                let _ = child.kill().await;
                (child.wait().await.ok(), true)
            }
        };
        // Stdin normally finished before git exited; if it is stuck reading a
        // stalled client, there is nobody left to feed.
        let stdin_failure = match tokio::time::timeout(Duration::from_millis(500), feeder).await {
            Ok(Ok(failure)) => failure,
            _ => None,
        };
        let stderr = stderr_reader.await.unwrap_or_default();
        let report = ExitReport {
            success: status.is_some_and(|s| s.success()),
            timed_out,
            stderr,
            stdin_failure,
        };
        if !report.success {
            tracing::warn!(
                git = %self.label,
                status = ?status,
                timed_out,
                stdin = ?report.stdin_failure,
                stderr = %report.stderr.trim(),
                "git exited with failure"
            );
        }
        self.metrics.git_processes.dec();
        // The receiver may be gone (response already streaming); that is fine.
        let _ = done.send(report);
    }
}

/// Copy the request body into git's stdin; report why it stopped early, if it did.
async fn feed(pipe: Option<ChildStdin>, stdin: Stdin) -> Option<StdinFailure> {
    let mut pipe = pipe?;
    match stdin {
        Stdin::Empty => None,
        Stdin::Bytes(bytes) => {
            // A write error means git exited early; its exit report says why.
            let _ = pipe.write_all(&bytes).await;
            None
        }
        Stdin::Stream {
            prefix,
            mut rest,
            limit,
        } => {
            if pipe.write_all(&prefix).await.is_err() {
                return None;
            }
            let mut total = prefix.len() as u64;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match rest.read(&mut buf).await {
                    Ok(0) => return None,
                    Ok(n) => n,
                    Err(e) => return Some(StdinFailure::Unreadable(e.to_string())),
                };
                total += n as u64;
                if total > limit {
                    return Some(StdinFailure::TooLarge);
                }
                if pipe.write_all(&buf[..n]).await.is_err() {
                    return None;
                }
            }
        }
    }
}
