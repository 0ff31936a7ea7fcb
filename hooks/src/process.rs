//! The one way cadgate starts git.
//!
//! Every git process the server or the hook starts is built here, so every
//! one gets the same rules:
//!
//! - the configured binary, with `env_clear()` and a clean environment
//!   ([`base_env`]): no HOME of the server user (an empty place that does
//!   not exist), no system or global config, no terminal prompt, no askpass
//!   program, no credential helper, `GIT_PROTOCOL_FROM_USER=0`, `LC_ALL=C`
//!   and only the transports the command needs ([`Transports`]);
//! - arguments the server chose ([`GitCommand::arg`]) apart from values a
//!   user or a file chose ([`GitCommand::user_arg`]), which must not start
//!   with `-` or hold control characters and always follow `--`;
//! - an optional deadline after which the child (and its process group:
//!   remote helpers included) is killed;
//! - stderr kept for the error.
//!
//! Variables from the caller's environment reach the child only when named
//! ([`GitCommand::pass_env`]). The `proc-receive` hook needs none: git runs
//! it after the pushed objects left quarantine, and every command names its
//! repository with `--git-dir`.
//!
//! The async server side turns a [`GitCommand`] into a tokio command
//! ([`GitCommand::into_std`]), and its pool of upload-pack and receive-pack
//! children starts from the same [`base_env`].

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// HOME for every git child: a directory that does not exist, so no
/// `~/.gitconfig`, `~/.git-credentials` or `~/.netrc` of the server user is
/// ever read.
pub const NO_HOME: &str = "/nonexistent";

/// Which transports a command may use (`GIT_ALLOW_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transports {
    /// Local paths only: the server's own repositories, which it names
    /// itself. The default.
    Local,
    /// `http` and `https` only: for URLs a user or a Kptfile named.
    Web,
    /// What an admin may configure as a forward-mode upstream: `http`,
    /// `https`, `ssh` and local paths.
    Admin,
}

impl Transports {
    fn allowed(self) -> &'static str {
        match self {
            Self::Local => "file",
            Self::Web => "http:https",
            Self::Admin => "http:https:ssh:file",
        }
    }
}

/// A git operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("git {args} in {}: {detail}", git_dir.display())]
pub struct GitError {
    args: String,
    git_dir: PathBuf,
    detail: String,
}

impl GitError {
    /// Why it failed.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// `what` failed in `git_dir` because of `detail`.
    pub fn new(what: &str, git_dir: &Path, detail: impl std::fmt::Display) -> Self {
        Self {
            args: what.to_string(),
            git_dir: git_dir.to_path_buf(),
            detail: detail.to_string(),
        }
    }
}

/// Test-only: the crash point at which the hook kills its process group
/// (`crate::journal::crash_point`). Passed on to every git child, so the ref
/// transaction's own hooks see it too; inert unless set.
pub const CRASH_VARIABLE: &str = "CADGATE_TEST_CRASH_AT";

/// The environment every git child starts from, with `home` as HOME.
pub fn base_env(home: &Path) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = vec![
        ("HOME".into(), home.as_os_str().to_owned()),
        ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
        ("GIT_CONFIG_GLOBAL".into(), "/dev/null".into()),
        ("GIT_TERMINAL_PROMPT".into(), "0".into()),
        ("GIT_PROTOCOL_FROM_USER".into(), "0".into()),
        (
            "GIT_ALLOW_PROTOCOL".into(),
            Transports::Local.allowed().into(),
        ),
        ("LC_ALL".into(), "C".into()),
        // Reflogs and the rare commit git writes itself name cadgate.
        ("GIT_AUTHOR_NAME".into(), "cadgate".into()),
        ("GIT_AUTHOR_EMAIL".into(), "cadgate@localhost".into()),
        ("GIT_COMMITTER_NAME".into(), "cadgate".into()),
        ("GIT_COMMITTER_EMAIL".into(), "cadgate@localhost".into()),
    ];
    if let Some(path) = std::env::var_os("PATH") {
        env.push(("PATH".into(), path));
    }
    // Test-only crash points (docs/crash-recovery.md) reach the hook and the
    // ref transaction's hooks; inert unless the server was started with it.
    let crash = CRASH_VARIABLE;
    if let Some(point) = std::env::var_os(crash) {
        env.push((crash.into(), point));
    }
    env
}

/// Settings every child gets through `GIT_CONFIG_*` (which outranks the
/// repository's own config): no credential helper, no askpass.
const BASE_CONFIG: &[(&str, &str)] = &[("credential.helper", ""), ("core.askPass", "")];

/// A value from a user or a file that cannot be a git argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    /// Empty.
    #[error("{what} is empty")]
    Empty {
        /// What the value is (`clone.git.repo`).
        what: String,
    },
    /// Starts with `-`: git would read it as an option.
    #[error("{what} must not start with '-'")]
    Option {
        /// What the value is.
        what: String,
    },
    /// Holds a control character (a newline, NUL, escape…).
    #[error("{what} must not hold control characters")]
    Control {
        /// What the value is.
        what: String,
    },
}

/// Check a user-supplied value before it becomes a git argument: not empty,
/// no leading `-`, no control characters.
pub fn check_user_value(what: &str, value: &str) -> Result<(), ArgError> {
    let what = what.to_string();
    if value.is_empty() {
        Err(ArgError::Empty { what })
    } else if value.starts_with('-') {
        Err(ArgError::Option { what })
    } else if value.chars().any(char::is_control) {
        Err(ArgError::Control { what })
    } else {
        Ok(())
    }
}

/// What a finished git child left.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Exit status 0.
    pub success: bool,
    /// Killed at its deadline.
    pub timed_out: bool,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

/// One git command being built (see the module documentation).
#[derive(Debug, Clone)]
pub struct GitCommand {
    git: PathBuf,
    git_dir: Option<PathBuf>,
    args: Vec<OsString>,
    options_ended: bool,
    env: Vec<(OsString, OsString)>,
    config: Vec<(String, String)>,
    timeout: Option<Duration>,
    own_group: bool,
}

impl GitCommand {
    /// `git` (the configured binary) with the clean environment.
    pub fn new(git: impl Into<PathBuf>) -> Self {
        Self {
            git: git.into(),
            git_dir: None,
            args: Vec::new(),
            options_ended: false,
            env: base_env(Path::new(NO_HOME)),
            config: BASE_CONFIG
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            timeout: None,
            own_group: false,
        }
    }

    /// Work in the repository at `dir` (`--git-dir=<dir>`; a path the server
    /// chose).
    pub fn git_dir(mut self, dir: &Path) -> Self {
        let mut flag = OsString::from("--git-dir=");
        flag.push(dir.as_os_str());
        self.args.insert(0, flag);
        self.git_dir = Some(dir.to_path_buf());
        self
    }

    /// An argument the server chose (a subcommand, an option, an object id
    /// it read itself).
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Arguments the server chose.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        for arg in args {
            self.args.push(arg.as_ref().to_owned());
        }
        self
    }

    /// End the options (`--`); later arguments are never read as options.
    pub fn end_of_options(mut self) -> Self {
        if !self.options_ended {
            self.args.push("--".into());
            self.options_ended = true;
        }
        self
    }

    /// A value a user or a file chose (`what` names it in the error):
    /// refused unless [`check_user_value`] accepts it, and always after `--`.
    pub fn user_arg(self, what: &str, value: &str) -> Result<Self, ArgError> {
        check_user_value(what, value)?;
        Ok(self.end_of_options().arg(value))
    }

    /// Set a variable (beyond the clean base).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        let key = key.as_ref().to_owned();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.as_ref().to_owned()));
        self
    }

    /// Hand the caller's `name` (when set) on to the child.
    pub fn pass_env(self, name: &str) -> Self {
        match std::env::var_os(name) {
            Some(value) => self.env(name, value),
            None => self,
        }
    }

    /// HOME for the child (default [`NO_HOME`]).
    pub fn home(self, home: &Path) -> Self {
        self.env("HOME", home)
    }

    /// A config setting for this command (through `GIT_CONFIG_*`, which
    /// outranks every config file).
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.config.push((key.to_string(), value.to_string()));
        self
    }

    /// The transports the command may use (default [`Transports::Local`]).
    pub fn transports(self, transports: Transports) -> Self {
        self.env("GIT_ALLOW_PROTOCOL", transports.allowed())
    }

    /// Kill the child (and its process group) once `timeout` has passed.
    /// Commands that talk to the network get one; ref transactions do not
    /// (a kill between their renames is what must never happen).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self.own_group = true;
        self
    }

    /// The deadline, if any.
    pub fn deadline(&self) -> Option<Duration> {
        self.timeout
    }

    /// The arguments after the binary, as git will see them.
    pub fn argv(&self) -> &[OsString] {
        &self.args
    }

    /// The complete environment of the child.
    pub fn environment(&self) -> Vec<(OsString, OsString)> {
        let mut env = self.env.clone();
        env.push((
            "GIT_CONFIG_COUNT".into(),
            self.config.len().to_string().into(),
        ));
        for (i, (key, value)) in self.config.iter().enumerate() {
            env.push((format!("GIT_CONFIG_KEY_{i}").into(), key.into()));
            env.push((format!("GIT_CONFIG_VALUE_{i}").into(), value.into()));
        }
        env
    }

    /// How the command is named in errors and logs.
    pub fn describe(&self) -> String {
        self.args
            .iter()
            .filter(|a| !a.to_string_lossy().starts_with("--git-dir="))
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The std command: clean environment, no stdin, stdout and stderr piped.
    /// A command with a deadline runs in its own process group, so the
    /// deadline can kill its helpers too ([`kill_group`]).
    pub fn into_std(self) -> Command {
        let path = self
            .env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_os_str());
        let program = on_path(&self.git, path).unwrap_or_else(|| self.git.clone());
        let mut command = Command::new(program);
        command
            .args(&self.args)
            .env_clear()
            .envs(self.environment())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if self.own_group {
            command.process_group(0);
        }
        command
    }

    fn error(&self, detail: impl std::fmt::Display) -> GitError {
        GitError::new(
            &self.describe(),
            self.git_dir.as_deref().unwrap_or(Path::new(".")),
            detail,
        )
    }

    /// Run to the end, feeding `input`: what it printed and how it ended
    /// (a failure exit is not an error here).
    pub fn output(self, input: Option<&[u8]>) -> Result<Finished, GitError> {
        let timeout = self.timeout;
        let failure = self.clone();
        let mut command = self.into_std();
        if input.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command
            .spawn()
            .map_err(|e| failure.error(format!("cannot run {}: {e}", failure.git.display())))?;
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let out_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(s) = stdout.as_mut() {
                let _ = s.read_to_end(&mut buf);
            }
            buf
        });
        let err_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(s) = stderr.as_mut() {
                let _ = s.read_to_end(&mut buf);
            }
            buf
        });
        let feeder = match (input, child.stdin.take()) {
            (Some(data), Some(mut stdin)) => {
                let data = data.to_vec();
                // A write error means git exited early; its status says why.
                Some(std::thread::spawn(move || {
                    let _ = stdin.write_all(&data);
                }))
            }
            _ => None,
        };
        let (status, timed_out) = match timeout {
            None => (child.wait(), false),
            Some(timeout) => wait_until(&mut child, Instant::now() + timeout),
        };
        let status = status.map_err(|e| failure.error(e))?;
        if let Some(feeder) = feeder {
            let _ = feeder.join();
        }
        let stdout = out_reader.join().unwrap_or_default();
        let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
        Ok(Finished {
            success: status.success() && !timed_out,
            timed_out,
            stdout,
            stderr,
        })
    }

    /// Run to the end, feeding `input`; its stdout, or an error holding its
    /// stderr (or that it timed out).
    pub fn run_with_input(self, input: Option<&[u8]>) -> Result<String, GitError> {
        let failure = self.clone();
        let finished = self.output(input)?;
        if finished.timed_out {
            return Err(failure.error(format!(
                "killed after {} s",
                failure.timeout.unwrap_or_default().as_secs()
            )));
        }
        if !finished.success {
            return Err(failure.error(finished.stderr.trim()));
        }
        Ok(String::from_utf8_lossy(&finished.stdout).into_owned())
    }

    /// Run to the end; its stdout, or an error holding its stderr.
    pub fn run(self) -> Result<String, GitError> {
        self.run_with_input(None)
    }
}

/// `program` (named without a `/`) as `execvp` would find it on `path`.
/// Named so, std starts the child with `posix_spawn` instead of `fork`: a
/// child whose `PATH` is set (every git child's is) is otherwise forked so
/// its own `PATH` can be searched, and a fork copies the page tables of the
/// whole server, which made a start-up with 1,000 repositories spend most
/// of its time in the kernel. `None`: named with a `/`, or not found (the
/// spawn then reports it).
fn on_path(program: &Path, path: Option<&OsStr>) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt as _;
    use std::os::unix::fs::PermissionsExt as _;
    if program.as_os_str().as_bytes().contains(&b'/') {
        return None;
    }
    std::env::split_paths(path?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Wait for `child` until `deadline`; past it, kill its process group.
fn wait_until(
    child: &mut std::process::Child,
    deadline: Instant,
) -> (std::io::Result<std::process::ExitStatus>, bool) {
    let mut step = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (Ok(status), false),
            Ok(None) => {}
            Err(e) => return (Err(e), false),
        }
        let now = Instant::now();
        if now >= deadline {
            // Not reaped yet, so the id is still this child's.
            kill_group(child.id());
            let _ = child.kill();
            return (child.wait(), true);
        }
        std::thread::sleep(step.min(deadline - now));
        step = (step * 2).min(Duration::from_millis(50));
    }
}

/// Kill the process group led by `pid` (a child started with a deadline,
/// not yet reaped), remote helpers included.
pub fn kill_group(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        if pid > 0 {
            // SAFETY: kill(2) with a negative pid signals that process
            // group; it touches no memory of this process.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(command: &GitCommand, key: &str) -> Option<String> {
        command
            .environment()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.to_string_lossy().into_owned())
    }

    #[test]
    fn a_program_named_without_a_slash_is_found_on_the_childs_path() {
        let dir = std::env::temp_dir().join(format!("cadgate-on-path-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (first, second) = (dir.join("a"), dir.join("b"));
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        {
            use std::os::unix::fs::PermissionsExt as _;
            // Not executable in the first directory: skipped, as execvp does.
            std::fs::write(first.join("tool"), "").unwrap();
            std::fs::write(second.join("tool"), "#!/bin/sh\n").unwrap();
            let executable = std::fs::Permissions::from_mode(0o755);
            std::fs::set_permissions(second.join("tool"), executable).unwrap();
        }
        let path = std::env::join_paths([&first, &second]).unwrap();
        assert_eq!(
            on_path(Path::new("tool"), Some(&path)),
            Some(second.join("tool"))
        );
        assert_eq!(on_path(Path::new("missing"), Some(&path)), None);
        assert_eq!(on_path(Path::new("./tool"), Some(&path)), None);
        assert_eq!(on_path(Path::new("tool"), None), None);
        // What a command runs: the found program, with git still working.
        let version = GitCommand::new("git").arg("--version").run().unwrap();
        assert!(version.starts_with("git version"), "{version}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn user_values_that_could_be_options_are_refused() {
        for (value, expected) in [
            ("", "is empty"),
            ("-x", "must not start with '-'"),
            ("--upload-pack=touch owned;", "must not start with '-'"),
            ("a\nb", "control characters"),
            ("a\0b", "control characters"),
            ("a\x1bb", "control characters"),
        ] {
            let error = GitCommand::new("git")
                .arg("ls-remote")
                .user_arg("repo", value)
                .expect_err(value);
            assert!(error.to_string().contains(expected), "{value:?}: {error}");
            assert!(error.to_string().starts_with("repo "), "{error}");
        }
    }

    #[test]
    fn user_values_follow_one_end_of_options() {
        let command = GitCommand::new("git")
            .git_dir(Path::new("/srv/r.git"))
            .args(["fetch", "--quiet"])
            .user_arg("repo", "https://host/x.git")
            .and_then(|c| c.user_arg("ref", "main"))
            .expect("valid");
        let argv: Vec<String> = command
            .argv()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            argv,
            [
                "--git-dir=/srv/r.git",
                "fetch",
                "--quiet",
                "--",
                "https://host/x.git",
                "main"
            ]
        );
    }

    #[test]
    fn the_environment_is_clean_and_names_no_home() {
        let command = GitCommand::new("git").transports(Transports::Web);
        assert_eq!(env_of(&command, "HOME").as_deref(), Some(NO_HOME));
        assert_eq!(
            env_of(&command, "GIT_CONFIG_NOSYSTEM").as_deref(),
            Some("1")
        );
        assert_eq!(
            env_of(&command, "GIT_CONFIG_GLOBAL").as_deref(),
            Some("/dev/null")
        );
        assert_eq!(
            env_of(&command, "GIT_TERMINAL_PROMPT").as_deref(),
            Some("0")
        );
        assert_eq!(
            env_of(&command, "GIT_PROTOCOL_FROM_USER").as_deref(),
            Some("0")
        );
        assert_eq!(
            env_of(&command, "GIT_ALLOW_PROTOCOL").as_deref(),
            Some("http:https")
        );
        assert_eq!(
            env_of(&command, "GIT_CONFIG_KEY_0").as_deref(),
            Some("credential.helper")
        );
        assert_eq!(env_of(&command, "GIT_CONFIG_VALUE_0").as_deref(), Some(""));
        assert!(env_of(&command, "GIT_ASKPASS").is_none());
        assert!(env_of(&command, "SSH_ASKPASS").is_none());
        assert!(env_of(&command, "GIT_DIR").is_none());
        // Only one GIT_ALLOW_PROTOCOL, the last asked for.
        let count = command
            .environment()
            .iter()
            .filter(|(k, _)| k == "GIT_ALLOW_PROTOCOL")
            .count();
        assert_eq!(count, 1);
    }

    #[test]
    fn the_child_sees_only_the_clean_environment() {
        // A variable of this process that is not passed on.
        std::env::set_var("CADGATE_TEST_SECRET", "leak");
        let printed = GitCommand::new("git")
            .args(["var", "-l"])
            .run()
            .expect("git var");
        assert!(!printed.contains("leak"), "{printed}");
        let shown = GitCommand::new("git")
            .args(["config", "--get", "credential.helper"])
            .output(None)
            .expect("git config");
        assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), "");
    }

    #[test]
    fn a_failure_keeps_stderr_and_a_deadline_kills() {
        let error = GitCommand::new("git")
            .git_dir(Path::new("/nonexistent/repo.git"))
            .args(["rev-parse", "HEAD"])
            .run()
            .expect_err("no repository");
        assert!(
            error.to_string().contains("not a git repository"),
            "{error}"
        );
        // `git hash-object --stdin` waits on stdin forever when nothing
        // closes it; the deadline ends it.
        let mut command = GitCommand::new("git")
            .args(["hash-object", "--stdin"])
            .timeout(Duration::from_millis(200))
            .into_std();
        command.stdin(Stdio::piped());
        let mut child = command.spawn().expect("spawn");
        let _stdin = child.stdin.take();
        let (status, timed_out) =
            wait_until(&mut child, Instant::now() + Duration::from_millis(200));
        assert!(timed_out);
        assert!(!status.expect("status").success());
    }
}
