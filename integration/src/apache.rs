//! A real Git host for tests: Apache httpd (Debian's `apache2`) on a free
//! loopback port, serving every bare repository of a directory through
//! `git http-backend` at `/git/<name>.git`, with HTTP Basic users from an
//! htpasswd file (so `REMOTE_USER` names the pusher, as on a real host).
//!
//! When the tests run as root, Apache's workers run as `www-data` and the
//! host directory is handed to that user, as a packaged Apache would have it.
//! Stopped (and its files removed) on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::TestUser;

/// The Apache binary and modules of Debian's `apache2` package.
const APACHE: &str = "/usr/sbin/apache2";
const MODULES: &str = "/usr/lib/apache2/modules";

/// A running Apache serving the Git repositories below its root.
pub struct Apache {
    dir: tempfile::TempDir,
    port: u16,
    user: Option<&'static str>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

impl Apache {
    /// Whether Apache is installed (scripts/test.sh installs it).
    pub fn available() -> bool {
        Path::new(APACHE).exists()
    }

    /// Prepare a host directory: call [`Apache::root`] to put repositories
    /// in it, then [`Apache::start`].
    pub fn new() -> Self {
        assert!(
            Self::available(),
            "Apache httpd is not installed at {APACHE}: run scripts/test.sh (it installs apache2 with apt-get)"
        );
        let dir = tempfile::Builder::new()
            .prefix("cadgate-apache.")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir_all(dir.path().join("root")).expect("root");
        std::fs::create_dir_all(dir.path().join("run")).expect("run");
        Self {
            dir,
            port: free_port(),
            user: is_root().then_some("www-data"),
        }
    }

    /// Where the served repositories live (`<root>/<name>.git`).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A scratch directory readable by Apache's workers (for a config, a
    /// copy of a binary).
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// `http://user:token@127.0.0.1:port/git/<name>.git`.
    pub fn url_as(&self, user: &TestUser, name: &str) -> String {
        format!(
            "http://{}:{}@127.0.0.1:{}/git/{name}.git",
            user.name, user.token, self.port
        )
    }

    /// `http://127.0.0.1:port`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Start Apache with these users (password = their token).
    pub fn start(&self, users: &[TestUser]) {
        self.start_with(users, "");
    }

    /// [`Apache::start`] with `extra` lines at the end of its configuration
    /// (a host admin's own directives).
    pub fn start_with(&self, users: &[TestUser], extra: &str) {
        let run = self.dir.path().join("run");
        let htpasswd = run.join("htpasswd");
        for (i, user) in users.iter().enumerate() {
            let mut command = Command::new("htpasswd");
            if i == 0 {
                command.arg("-c");
            }
            let out = command
                .args(["-b", "-B", "-C", "4"])
                .arg(&htpasswd)
                .args([&user.name, &user.token])
                .output()
                .expect("htpasswd (apache2-utils)");
            assert!(out.status.success(), "htpasswd failed");
        }
        let backend = format!(
            "{}/git-http-backend",
            crate::stdout(
                &Command::new("git")
                    .arg("--exec-path")
                    .output()
                    .expect("git")
            )
        );
        let user_lines = match self.user {
            Some(user) => format!("User {user}\nGroup {user}\n"),
            None => String::new(),
        };
        let dir = self.dir.path().display();
        let config = format!(
            r#"ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {dir}/run/httpd.pid
ErrorLog {dir}/run/error.log
DefaultRuntimeDir {dir}/run
Mutex file:{dir}/run default
ScriptSock {dir}/run/cgid.sock
{user_lines}LoadModule mpm_event_module {MODULES}/mod_mpm_event.so
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule authz_user_module {MODULES}/mod_authz_user.so
LoadModule authn_core_module {MODULES}/mod_authn_core.so
LoadModule authn_file_module {MODULES}/mod_authn_file.so
LoadModule auth_basic_module {MODULES}/mod_auth_basic.so
LoadModule alias_module {MODULES}/mod_alias.so
LoadModule cgid_module {MODULES}/mod_cgid.so
LoadModule env_module {MODULES}/mod_env.so
LoadModule setenvif_module {MODULES}/mod_setenvif.so
SetEnv GIT_PROJECT_ROOT {dir}/root
SetEnv GIT_HTTP_EXPORT_ALL 1
SetEnvIf Git-Protocol ".*" GIT_PROTOCOL=$0
ScriptAlias /git/ {backend}/
<Location /git/>
  AuthType Basic
  AuthName "cadgate test host"
  AuthBasicProvider file
  AuthUserFile {dir}/run/htpasswd
  Require valid-user
</Location>
{extra}"#,
            port = self.port,
        );
        std::fs::write(run.join("httpd.conf"), config).expect("httpd.conf");
        self.hand_over();
        self.launch();
    }

    /// Run `apache2 -k start` with the written configuration and wait until
    /// it accepts connections.
    fn launch(&self) {
        let out = Command::new(APACHE)
            .arg("-f")
            .arg(self.dir.path().join("run/httpd.conf"))
            .args(["-k", "start"])
            .output()
            .expect("start apache2");
        assert!(
            out.status.success(),
            "apache2 did not start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            self.error_log()
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "apache2 does not answer: {}",
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Give `user` another password (HTTP Basic), as a host whose admin
    /// rotated a token does.
    pub fn set_password(&self, user: &str, token: &str) {
        let out = Command::new("htpasswd")
            .args(["-b", "-B", "-C", "4"])
            .arg(self.dir.path().join("run/htpasswd"))
            .args([user, token])
            .output()
            .expect("htpasswd (apache2-utils)");
        assert!(out.status.success(), "htpasswd failed");
        self.hand_over();
    }

    /// Stop Apache (as if the host went down); [`Apache::restart`] brings it back.
    pub fn stop(&self) {
        let pid_file = self.dir.path().join("run/httpd.pid");
        if let Ok(pid) = std::fs::read_to_string(&pid_file) {
            let _ = Command::new("kill").arg(pid.trim()).output();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while (pid_file.exists() || std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start a stopped Apache again with the same configuration and users.
    pub fn restart(&self) {
        self.launch();
    }

    /// Give the host directory to Apache's user (again, after the test put
    /// files in it as root).
    pub fn hand_over(&self) {
        let Some(user) = self.user else { return };
        std::fs::set_permissions(
            self.dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        let out = Command::new("chown")
            .args(["-R", &format!("{user}:{user}")])
            .arg(self.dir.path())
            .output()
            .expect("chown");
        assert!(out.status.success(), "chown failed");
    }

    /// Apache's error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("run/error.log")).unwrap_or_default()
    }
}

impl Default for Apache {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        let pid_file = self.dir.path().join("run/httpd.pid");
        if let Ok(pid) = std::fs::read_to_string(&pid_file) {
            let _ = Command::new("kill").arg(pid.trim()).output();
            let deadline = Instant::now() + Duration::from_secs(10);
            while pid_file.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
