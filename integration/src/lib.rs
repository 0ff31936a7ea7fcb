//! The end-to-end test harness: a real `cadgate serve` process on a free
//! loopback port, git clients with isolated homes, and a raw HTTP client for
//! what git never sends.
//!
//! Everything lives in temporary directories that disappear with the test;
//! servers are killed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub mod apache;
pub mod api;
pub mod config_sync;
pub mod crash;
pub mod porch;
pub mod porch_reader;
pub mod scenarios;

/// The `cadgate` binary under test: `$CADGATE_BIN`, or the one cargo built
/// next to this test binary.
pub fn cadgate_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("CADGATE_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/<test> → target/<profile>/cadgate
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("cadgate"))
        .expect("target directory");
    assert!(
        bin.exists(),
        "cadgate binary not found at {}; run `cargo build --workspace --bins` or `cargo test --workspace` (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// A user of the test config: name, token and roles.
#[derive(Debug, Clone)]
pub struct TestUser {
    /// User name.
    pub name: String,
    /// Plain token.
    pub token: String,
}

impl TestUser {
    /// A user whose token is `<name>-token`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            token: format!("{name}-token"),
        }
    }

    /// The `[[user]]` block for this user.
    pub fn config(&self, roles: &[&str], repositories: &[&str]) -> String {
        let quote = |items: &[&str]| {
            items
                .iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut block = format!(
            "[[user]]\nname = \"{}\"\ntoken_sha256 = \"{}\"\nroles = [{}]\n",
            self.name,
            hex::encode(Sha256::digest(self.token.as_bytes())),
            quote(roles)
        );
        if !repositories.is_empty() {
            block.push_str(&format!("repositories = [{}]\n", quote(repositories)));
        }
        block
    }
}

/// Output captured from a server process.
type Captured = Arc<Mutex<String>>;

/// A running `cadgate serve`.
pub struct Server {
    child: Option<Child>,
    base: String,
    /// Its working directory (config, default data), removed with it.
    _scratch: tempfile::TempDir,
    /// Where its repositories live.
    data: PathBuf,
    stdout: Captured,
    stderr: Captured,
}

impl Server {
    /// Start with `config` (a TOML text without `[server]`'s listen/data_dir,
    /// which the harness sets) and wait until `/healthz` answers.
    pub fn start(config: &str) -> Server {
        Self::start_in(config, None)
    }

    /// Like [`Server::start`], with the data directory at `data_dir` (for
    /// tests that prepare repositories before the server starts).
    pub fn start_with_data(config: &str, data_dir: &Path) -> Server {
        Self::start_in(config, Some(data_dir))
    }

    /// Like [`Server::start`], with `env` set for the server process (a
    /// HOME of the operator's, say).
    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Server {
        Self::start_env(config, None, env)
    }

    /// Like [`Server::start_with_data`], with extra environment variables
    /// for the server and everything it starts (e.g. the test-only
    /// `CADGATE_TEST_CRASH_AT`).
    pub fn start_with_data_and_env(config: &str, data_dir: &Path, env: &[(&str, &str)]) -> Server {
        Self::start_env(config, Some(data_dir), env)
    }

    fn start_in(config: &str, data_dir: Option<&Path>) -> Server {
        Self::start_env(config, data_dir, &[])
    }

    fn start_env(config: &str, data_dir: Option<&Path>, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("cadgate.toml");
        std::fs::write(&file, config).expect("write config");
        let data = data_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.path().join("data"));
        let args = [
            "serve".to_string(),
            "--config".into(),
            file.display().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            data.display().to_string(),
        ];
        Self::spawn(dir, data, &args, env)
    }

    /// Start the embedded default (`cadgate serve` without `--config`) on a
    /// free port with data in `data_dir`.
    pub fn start_embedded(data_dir: &Path) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let args = [
            "serve".to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            data_dir.display().to_string(),
        ];
        Self::spawn(dir, data_dir.to_path_buf(), &args, &[])
    }

    fn spawn(
        dir: tempfile::TempDir,
        data: PathBuf,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Server {
        use std::os::unix::process::CommandExt as _;
        let mut child = Command::new(cadgate_bin())
            .args(args)
            .envs(env.iter().copied())
            // Its own process group: the server, its git children and their
            // hooks can be killed together ([`Server::kill_group`]).
            .process_group(0)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cadgate");
        let stdout = Captured::default();
        let stderr = Captured::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let sink = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(base) = line.strip_prefix("listening on ") {
                    let _ = tx.send(base.trim().to_string());
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        let err = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "cadgate did not print its listening line within 30 s\nstderr:\n{}",
                    stderr.lock().map(|s| s.clone()).unwrap_or_default()
                );
            }
        };
        let server = Server {
            child: Some(child),
            base,
            _scratch: dir,
            data,
            stdout,
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.get("/healthz").status != 200 {
            assert!(Instant::now() < deadline, "/healthz never answered 200");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// `http://127.0.0.1:PORT`
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `host:port`
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// The authoring URL of `repo` with `.git`.
    pub fn url(&self, repo: &str) -> String {
        format!("{}/{repo}.git", self.base)
    }

    /// The URL with credentials in it.
    pub fn url_as(&self, user: &TestUser, repo: &str) -> String {
        format!(
            "http://{}:{}@{}/{repo}.git",
            user.name,
            user.token,
            self.addr()
        )
    }

    /// The bare repository behind `repo`.
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.data_dir()
            .join("repositories")
            .join(format!("{repo}.git"))
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.data.clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// What the server printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Wait (up to 10 s) until the server has printed a stdout line that
    /// contains `needle`, then return everything printed so far. The
    /// listening line is printed before the rest of a banner, so readers of
    /// later lines wait for them.
    pub fn stdout_once(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.stdout();
            if out.contains(needle) || Instant::now() > deadline {
                return out;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the server logged on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Peak resident memory of the server process (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/<pid>/status")
    }

    /// Kill the server with SIGKILL and reap it.
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kill the server's whole process group with SIGKILL — the server, git
    /// receive-pack and upload-pack, the hooks they run and their git
    /// children, as a power cut stops them — and wait until none is left.
    pub fn kill_group(&mut self) {
        let pid = self.pid();
        if pid != 0 {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
        self.wait_group_gone(Duration::from_secs(30));
    }

    /// Wait until the server and every process of its group are gone (a
    /// test-only crash point killed them from inside); panics after `timeout`.
    pub fn wait_group_gone(&mut self, timeout: Duration) {
        let pid = self.pid();
        let deadline = Instant::now() + timeout;
        if let Some(mut child) = self.child.take() {
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                assert!(Instant::now() < deadline, "the server did not exit");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        while pid != 0 && process_group_alive(pid) {
            assert!(
                Instant::now() < deadline,
                "processes of the server's group are still running"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Send SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Wait for the process to exit; its exit code.
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A raw HTTP request to this server.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        http_request(self.addr(), method, path, headers, body)
    }

    /// `GET path` without credentials.
    pub fn get(&self, path: &str) -> HttpResponse {
        self.request("GET", path, &[], b"")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A raw HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `Authorization: Basic …` for a user.
pub fn basic(user: &TestUser) -> String {
    let raw = format!("{}:{}", user.name, user.token);
    format!("Basic {}", base64(raw.as_bytes()))
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(body).expect("send body");
    read_response(&mut stream)
}

/// Read a whole HTTP/1.1 response (until the server closes).
pub fn read_response(stream: &mut TcpStream) -> HttpResponse {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// A git client with its own HOME and config, nothing inherited.
pub struct GitClient {
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Default for GitClient {
    fn default() -> Self {
        Self::new()
    }
}

impl GitClient {
    /// A fresh client identity.
    pub fn new() -> Self {
        let home = tempfile::tempdir().expect("client home");
        let client = GitClient {
            home,
            env: Vec::new(),
        };
        client.git(&["config", "--global", "user.name", "Test User"]);
        client.git(&["config", "--global", "user.email", "test@example.com"]);
        client.git(&["config", "--global", "init.defaultBranch", "main"]);
        client.git(&["config", "--global", "advice.detachedHead", "false"]);
        client
    }

    /// The client's home (and a scratch directory).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// A path inside the home.
    pub fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    /// Set an environment variable for every later git call.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Store `user`'s credentials for `base` (http://host:port) in a
    /// `store` credential helper.
    pub fn store_credentials(&self, base: &str, user: &TestUser) {
        let file = self.path("credentials");
        let host = base.trim_start_matches("http://");
        std::fs::write(
            &file,
            format!("http://{}:{}@{host}\n", user.name, user.token),
        )
        .expect("write credentials");
        self.git(&[
            "config",
            "--global",
            "credential.helper",
            &format!("store --file {}", file.display()),
        ]);
    }

    /// A git command with the isolated environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("git");
        for (key, _) in std::env::vars() {
            if key.starts_with("GIT_") {
                command.env_remove(&key);
            }
        }
        command
            .args(args)
            .current_dir(self.home.path())
            .env("HOME", self.home.path())
            .env("GIT_CONFIG_GLOBAL", self.home.path().join(".gitconfig"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command
    }

    /// Run git; panic with everything it printed unless it succeeds.
    pub fn git(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().expect("run git");
        assert!(
            out.status.success(),
            "git {args:?} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Run git; panic unless it fails. Returns the output.
    pub fn git_fails(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().expect("run git");
        assert!(
            !out.status.success(),
            "git {args:?} unexpectedly succeeded\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Run git in `dir` (relative to the home) and return trimmed stdout.
    pub fn git_in(&self, dir: &str, args: &[&str]) -> String {
        let mut full = vec!["-C", dir];
        full.extend_from_slice(args);
        stdout(&self.git(&full))
    }

    /// Commit `files` (path, content) in the work tree `dir` and return the commit id.
    pub fn commit_files(&self, dir: &str, files: &[(&str, &[u8])], message: &str) -> String {
        for (path, content) in files {
            let full = self.path(dir).join(path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(&full, content).expect("write file");
        }
        self.git_in(dir, &["add", "-A"]);
        self.git_in(dir, &["commit", "-q", "-m", message]);
        self.git_in(dir, &["rev-parse", "HEAD"])
    }
}

/// A minimal valid Kptfile for the package at `path`.
pub fn kptfile(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    format!("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: {name}\n")
}

impl GitClient {
    /// Commit a package: `package/Kptfile` plus `files` (paths relative to
    /// the package) in the work tree `dir`; returns the commit id.
    pub fn commit_package(
        &self,
        dir: &str,
        package: &str,
        files: &[(&str, &[u8])],
        message: &str,
    ) -> String {
        let kpt = kptfile(package);
        let kpt_path = format!("{package}/Kptfile");
        let paths: Vec<String> = files
            .iter()
            .map(|(p, _)| format!("{package}/{p}"))
            .collect();
        let mut all: Vec<(&str, &[u8])> = vec![(kpt_path.as_str(), kpt.as_bytes())];
        all.extend(paths.iter().zip(files).map(|(p, (_, c))| (p.as_str(), *c)));
        self.commit_files(dir, &all, message)
    }
}

/// Trimmed stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether a live (not zombie) process of process group `pgid` exists.
pub fn process_group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
    })
}

/// Run git directly on a server-side bare repository; trimmed stdout.
pub fn server_git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        // Repositories a test host owns (Apache's user) are still ours to read.
        .args(["-c", "safe.directory=*"])
        .arg("--git-dir")
        .arg(repo)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} on {} failed: {}",
        repo.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

/// The value of `name` in a server-side bare repository, if it exists.
pub fn server_ref(repo: &Path, name: &str) -> Option<String> {
    let out = Command::new("git")
        .args(["-c", "safe.directory=*"])
        .arg("--git-dir")
        .arg(repo)
        .args(["rev-parse", "--verify", "-q", name])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git");
    out.status.success().then(|| stdout(&out))
}

/// After `clients` raced to publish package `package` (each proposing
/// `<package>/data.yaml` with its own content): the tags are exactly
/// `vfirst … v(first+clients-1)` with no gaps or duplicates, each holding a
/// different client's content, no drafts or proposals are left, and the
/// repository is intact.
pub fn assert_consecutive_revisions(repo: &Path, package: &str, first: u64, clients: usize) {
    let tags = server_git(repo, &["tag", "--list", &format!("{package}/*")]);
    let mut numbers: Vec<u64> = tags
        .lines()
        .filter_map(|t| t.strip_prefix(&format!("{package}/v")))
        .filter_map(|n| n.parse().ok())
        .collect();
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (first..first + clients as u64).collect::<Vec<_>>(),
        "tags: {tags}"
    );
    let mut owners: Vec<String> = numbers
        .iter()
        .map(|n| {
            server_git(
                repo,
                &[
                    "show",
                    &format!("refs/tags/{package}/v{n}:{package}/data.yaml"),
                ],
            )
        })
        .collect();
    owners.sort();
    owners.dedup();
    assert_eq!(owners.len(), clients, "{owners:?}");
    assert!(server_git(
        repo,
        &["for-each-ref", "refs/heads/proposed", "refs/heads/drafts"]
    )
    .is_empty());
    server_git(repo, &["fsck", "--no-progress", "--no-dangling"]);
}

/// Pseudo-random bytes that do not compress (xorshift), fast to make.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}
