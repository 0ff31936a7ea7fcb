//! Installing cadgate into a bare repository that another Git server hosts
//! (contract §9): Apache + `git http-backend`, gitolite, ssh or `file://`.
//!
//! cadgate judges pushes in git's `proc-receive` hook, so installing means:
//! a `proc-receive` script that runs cadgate with the config and the
//! repository's name, the git settings that route every ref through it, and
//! the published view's sibling repository. Existing `pre-receive`,
//! `update` and `post-receive` hooks are left alone and keep running (git
//! runs them around `proc-receive`). A foreign `proc-receive` is never
//! overwritten. What was set before is recorded, so `--uninstall` restores the
//! repository exactly; installing again is harmless.

use crate::process::GitCommand;
use std::path::{Path, PathBuf};

use crate::git::Repo;
use crate::published::PublishedRepo;
use crate::refs::Layout;

/// The line that marks a hook script as cadgate's.
const MARKER: &str = "# cadgate-hook: installed by `cadgate hook install`";
/// Where the settings that installing changed are recorded.
const RECORD: &str = "cadgate-install.record";
/// The git settings installing makes.
const SETTINGS: &[(&str, &str)] = &[
    ("receive.procReceiveRefs", "refs"),
    ("receive.advertisePushOptions", "true"),
    ("receive.fsckObjects", "true"),
    ("core.logAllRefUpdates", "always"),
];

/// Installing or uninstalling failed; nothing was left half done.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The repository is not a bare repository git can open.
    #[error("{0} is not a Git repository: {1}")]
    NotARepository(PathBuf, String),
    /// A `proc-receive` hook that is not cadgate's is in the way.
    #[error("{0} is another program's proc-receive hook; cadgate judges pushes in proc-receive, so move it away (or merge it into a pre-receive hook) and install again")]
    ForeignHook(PathBuf),
    /// The repository is not in the config.
    #[error("repository '{0}' is not in the config {1}; add a [[repository]] with that name")]
    UnknownRepository(String, PathBuf),
    /// The config has problems.
    #[error("{0}")]
    Config(String),
    /// Running git or writing a file failed.
    #[error("{0}")]
    Io(String),
}

/// What to install where.
#[derive(Debug, Clone)]
pub struct Installation {
    /// The bare repository.
    pub repository_dir: PathBuf,
    /// The cadgate config (users, roles, the repository's settings).
    pub config: PathBuf,
    /// The repository's name in the config.
    pub repository: String,
    /// The command git runs: the program and its arguments before
    /// `proc-receive` (e.g. `cadgate hook` or `cadgate-hook`).
    pub command: Vec<PathBuf>,
    /// An environment variable naming the pusher, tried before
    /// `REMOTE_USER` and `GL_USER`.
    pub user_variable: Option<String>,
    /// The published view's sibling repository (default: beside the
    /// repository, `<name>.published.git`).
    pub published: Option<PathBuf>,
}

/// What installing did.
#[derive(Debug, Clone)]
pub struct Installed {
    /// The hook script written.
    pub hook: PathBuf,
    /// The published view's repository.
    pub published: PathBuf,
}

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> InstallError {
    InstallError::Io(format!("cannot {what} {}: {e}", path.display()))
}

fn git(dir: &Path, args: &[&str]) -> Result<(bool, String), InstallError> {
    let out = GitCommand::new("git")
        .git_dir(dir)
        .args(args)
        .into_std()
        .output()
        .map_err(|e| io("run git in", dir, e))?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    ))
}

fn set(dir: &Path, key: &str, value: Option<&str>) -> Result<(), InstallError> {
    let args: Vec<&str> = match value {
        Some(v) => vec!["config", key, v],
        None => vec!["config", "--unset-all", key],
    };
    let (ok, _) = git(dir, &args)?;
    // Unsetting a key that is not set fails harmlessly (exit 5).
    if ok || value.is_none() {
        Ok(())
    } else {
        Err(io(&format!("set {key} in"), dir, "git config failed"))
    }
}

/// The repository's hooks directory (honouring `core.hooksPath`).
fn hooks_dir(dir: &Path) -> Result<PathBuf, InstallError> {
    // git names the default hooks directory relative to the current
    // directory when the repository is given relatively, and a relative
    // `core.hooksPath` as configured (relative to the repository): ask with
    // the repository's absolute path so a relative answer is only the latter.
    let dir = &std::path::absolute(dir).map_err(|e| io("resolve", dir, e))?;
    let (ok, path) = git(dir, &["rev-parse", "--git-path", "hooks"])?;
    if !ok {
        return Err(InstallError::NotARepository(
            dir.to_path_buf(),
            "git rev-parse failed".into(),
        ));
    }
    let path = PathBuf::from(path);
    Ok(if path.is_absolute() {
        path
    } else {
        dir.join(path)
    })
}

fn is_ours(hook: &Path) -> bool {
    std::fs::read_to_string(hook).is_ok_and(|text| text.contains(MARKER))
}

fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

impl Installation {
    fn published_dir(&self) -> PathBuf {
        self.published.clone().unwrap_or_else(|| {
            let name = self
                .repository_dir
                .file_name()
                .map(|n| n.to_string_lossy().trim_end_matches(".git").to_string())
                .unwrap_or_else(|| self.repository.replace('/', "-"));
            self.repository_dir
                .with_file_name(format!("{name}.published.git"))
        })
    }

    /// Install (or reinstall) into the repository.
    pub fn install(&self) -> Result<Installed, InstallError> {
        let dir = &self.repository_dir;
        Repo::open(dir).map_err(|e| InstallError::NotARepository(dir.clone(), e.to_string()))?;
        let config = cadgate_config::Config::load(&self.config).map_err(|e| {
            InstallError::Config(format!(
                "{e}\n{}: {} problem(s)",
                self.config.display(),
                e.problems.len()
            ))
        })?;
        let repository = config.repository(&self.repository).ok_or_else(|| {
            InstallError::UnknownRepository(self.repository.clone(), self.config.clone())
        })?;
        let hooks = hooks_dir(dir)?;
        let hook = hooks.join("proc-receive");
        if hook.exists() && !is_ours(&hook) {
            return Err(InstallError::ForeignHook(hook));
        }
        // Record what the settings were before the first install.
        let record = dir.join(RECORD);
        if !record.exists() {
            let mut text = String::new();
            for (key, _) in SETTINGS {
                let (ok, value) = git(dir, &["config", "--get", key])?;
                if ok {
                    text.push_str(&format!("{key}={value}\n"));
                } else {
                    text.push_str(&format!("{key}\n"));
                }
            }
            std::fs::write(&record, text).map_err(|e| io("write", &record, e))?;
        }
        for (key, value) in SETTINGS {
            set(dir, key, Some(value))?;
        }
        // The registered branch, as the server creates it on start: without
        // it nothing can ever be published (a push to it must publish).
        let authoring = Repo::open(dir).map_err(|e| InstallError::Io(e.to_string()))?;
        let created = crate::branch::create_if_missing(&authoring, &repository.branch)
            .map_err(|e| InstallError::Io(e.to_string()))?;
        if created.is_some() {
            // An empty repository's HEAD names git's default branch, which
            // does not exist: clones then check nothing out. Name ours.
            let (_, head) = git(dir, &["symbolic-ref", "-q", "HEAD"])?;
            let (exists, _) = git(dir, &["rev-parse", "-q", "--verify", &head])?;
            if !exists {
                let branch_ref = format!("refs/heads/{}", repository.branch);
                git(dir, &["symbolic-ref", "HEAD", &branch_ref])?;
            }
        }
        // The published view.
        let published = self.published_dir();
        let view = PublishedRepo::at(&published);
        view.create(&repository.branch)
            .map_err(|e| InstallError::Io(e.to_string()))?;
        // Served read-only by the host.
        set(&published, "http.receivepack", Some("false"))?;
        view.sync(
            &authoring,
            &Layout::new(&repository.branch, &repository.directory),
            None,
        )
        .map_err(|e| InstallError::Io(e.to_string()))?;
        // The hook script, written whole and renamed into place.
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let mut command: Vec<String> = self
            .command
            .iter()
            .map(|p| quote(&p.to_string_lossy()))
            .collect();
        command.push("proc-receive".into());
        command.push(format!(
            "--config {}",
            quote(&absolute(&self.config).to_string_lossy())
        ));
        command.push(format!("--repository {}", quote(&self.repository)));
        command.push(format!(
            "--published {}",
            quote(&absolute(&published).to_string_lossy())
        ));
        if let Some(variable) = &self.user_variable {
            command.push(format!("--user-variable {}", quote(variable)));
        }
        let script = format!(
            "#!/bin/sh\n{MARKER}; `cadgate hook install --uninstall` removes it.\n# Every push to this repository is judged by cadgate's package lifecycle.\nexec {}\n",
            command.join(" ")
        );
        std::fs::create_dir_all(&hooks).map_err(|e| io("create", &hooks, e))?;
        let temporary = hooks.join(".proc-receive.cadgate");
        std::fs::write(&temporary, script).map_err(|e| io("write", &temporary, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| io("make executable", &temporary, e))?;
        }
        std::fs::rename(&temporary, &hook).map_err(|e| io("install", &hook, e))?;
        Ok(Installed { hook, published })
    }

    /// Remove cadgate from the repository: its hook goes, the settings it
    /// made are restored. The published view's repository is kept (delete
    /// it by hand if nothing serves it).
    pub fn uninstall(&self) -> Result<(), InstallError> {
        let dir = &self.repository_dir;
        let hooks = hooks_dir(dir)?;
        let hook = hooks.join("proc-receive");
        if hook.exists() {
            if !is_ours(&hook) {
                return Err(InstallError::ForeignHook(hook));
            }
            std::fs::remove_file(&hook).map_err(|e| io("remove", &hook, e))?;
        }
        // The lock file pushes left behind.
        let _ = std::fs::remove_file(dir.join("cadgate.lock"));
        let record = dir.join(RECORD);
        if let Ok(text) = std::fs::read_to_string(&record) {
            for line in text.lines() {
                match line.split_once('=') {
                    Some((key, value)) => set(dir, key, Some(value))?,
                    None if !line.is_empty() => set(dir, line, None)?,
                    None => {}
                }
            }
            std::fs::remove_file(&record).map_err(|e| io("remove", &record, e))?;
        }
        Ok(())
    }
}
