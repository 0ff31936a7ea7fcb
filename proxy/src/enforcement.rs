//! How the server makes git judge every push with cadgate's rules.
//!
//! The rules live in `cadgate-hooks` and run inside git as the
//! `proc-receive` hook (contract §1: one enforcement path). The server
//! installs a hook script that runs this same executable
//! (`cadgate hook proc-receive`), points `receive-pack` at it, and tells it
//! who is pushing through the environment.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use cadgate_config::{PolicyConfig, RepositoryConfig, Role};

/// The installed hooks of a running server.
#[derive(Debug, Clone)]
pub struct Enforcement {
    hooks_dir: PathBuf,
    /// `<data_dir>/repositories.json`: every repository, for the hook's
    /// downstream rule ([`cadgate_hooks::downstreams`]).
    repositories: PathBuf,
}

impl Enforcement {
    /// Write `<data_dir>/hooks/proc-receive`, which runs `executable hook
    /// proc-receive`, and `<data_dir>/repositories.json`, which lists
    /// `repositories` for it.
    pub fn install(
        data_dir: &Path,
        executable: &Path,
        repositories: &[cadgate_hooks::enforce::Downstream],
    ) -> std::io::Result<Self> {
        // Written whole or not at all (temporary file, rename).
        let repositories = cadgate_hooks::downstreams::write(data_dir, repositories)?;
        let hooks_dir = data_dir.join("hooks");
        std::fs::create_dir_all(&hooks_dir)?;
        let quoted = executable.display().to_string().replace('\'', r"'\''");
        let script = format!(
            "#!/bin/sh\n# Installed by cadgate: every push is judged by cadgate's lifecycle rules.\nexec '{quoted}' hook proc-receive\n"
        );
        let path = hooks_dir.join("proc-receive");
        let temporary = hooks_dir.join(".proc-receive.tmp");
        std::fs::write(&temporary, script)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o755))?;
        }
        std::fs::rename(&temporary, &path)?;
        Ok(Self {
            hooks_dir,
            repositories,
        })
    }

    /// The variable naming the list of repositories to a push's hook, which
    /// reads it and leaves out the repository pushed to. A file, not the
    /// list itself: Linux refuses an environment string over 128 KiB.
    pub fn downstreams(&self) -> (String, String) {
        (
            cadgate_hooks::downstreams::VARIABLE.to_string(),
            self.repositories.to_string_lossy().into_owned(),
        )
    }

    /// git options that route every pushed ref through the hook.
    pub fn git_options(&self) -> Vec<OsString> {
        let mut hooks_path = OsString::from("core.hooksPath=");
        hooks_path.push(self.hooks_dir.as_os_str());
        vec![
            "-c".into(),
            hooks_path,
            "-c".into(),
            "receive.procReceiveRefs=refs".into(),
        ]
    }

    /// What the hook needs to know about the push.
    pub fn environment(
        &self,
        repository: &RepositoryConfig,
        published: &Path,
        upstream: Option<&cadgate_hooks::forward::Upstream>,
        policy: &PolicyConfig,
        user: &str,
        role: Role,
    ) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if let Some(upstream) = upstream {
            // The hook forwards what it accepts to the upstream.
            env.extend(upstream.hook_env());
        }
        env.extend(vec![
            (
                "CADGATE_PUBLISHED".into(),
                published.to_string_lossy().into_owned(),
            ),
            ("CADGATE_USER".into(), user.into()),
            ("CADGATE_ROLE".into(), role.as_str().into()),
            ("CADGATE_BRANCH".into(), repository.branch.clone()),
            ("CADGATE_DIRECTORY".into(), repository.directory.clone()),
            (
                "CADGATE_SELF_APPROVAL".into(),
                policy.self_approval.to_string(),
            ),
        ]);
        env
    }
}
