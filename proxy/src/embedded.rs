//! The embedded default: `cadgate serve` with no config, for a first try.
//!
//! Loopback only, one repository `demo`, one `admin` user whose token is made
//! on first start and kept in the data directory (mode 0600), so the same
//! credentials keep working across restarts.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use cadgate_config::Config;

/// The embedded user's name.
const USER: &str = "admin";
/// Where the embedded user's token is kept, inside the data directory.
const CREDENTIALS_FILE: &str = "embedded-credentials";

/// The embedded user and its token.
pub struct Credentials {
    pub user: String,
    pub token: String,
    pub file: std::path::PathBuf,
}

/// The embedded config for data directory `data_dir`, and its credentials.
pub fn config(data_dir: &Path) -> anyhow::Result<(Config, Credentials)> {
    let credentials = load_or_create(data_dir)?;
    let text = format!(
        r#"# cadgate's embedded default: a first try on this machine only.
[server]
listen = "127.0.0.1:8080"

[[repository]]
name = "demo"
branch = "main"

[policy]
# One user does everything here, so they may approve their own proposals.
self_approval = true

[[user]]
name = "{USER}"
token_sha256 = "{}"
roles = ["admin"]
"#,
        cadgate_config::token_sha256_hex(&credentials.token)
    );
    let mut config = Config::parse(&text, "<embedded default>", Path::new("."))
        .map_err(|e| anyhow::anyhow!("the embedded default config is invalid (a bug): {e}"))?;
    config.server.data_dir = data_dir.to_path_buf();
    Ok((config, credentials))
}

fn load_or_create(data_dir: &Path) -> anyhow::Result<Credentials> {
    let file = data_dir.join(CREDENTIALS_FILE);
    if let Ok(token) = std::fs::read_to_string(&file) {
        let token = token.trim().to_string();
        if !token.is_empty() {
            return Ok(Credentials {
                user: USER.into(),
                token,
                file,
            });
        }
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let token = cadgate::auth::new_token().context("cannot read random bytes from the OS")?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut out = options
        .open(&file)
        .with_context(|| format!("cannot write {}", file.display()))?;
    writeln!(out, "{token}").with_context(|| format!("cannot write {}", file.display()))?;
    Ok(Credentials {
        user: USER.into(),
        token,
        file,
    })
}

/// Tell a newcomer how to use the server that just started.
pub fn banner(base: &str, config: &Config, credentials: &Credentials) {
    let hostless = base.trim_start_matches("http://");
    println!(
        "cadgate {}: running the embedded default (no --config): loopback only, for a first try",
        env!("CARGO_PKG_VERSION")
    );
    println!("  data:       {}", config.server.data_dir.display());
    println!("listening on {base}");
    for repo in &config.repositories {
        println!("  repository: {base}/{}.git", repo.name);
        println!(
            "  published:  {base}/published/{}.git   (read-only, what Config Sync clones)",
            repo.name
        );
    }
    println!("  user:       {}", credentials.user);
    println!(
        "  token:      {}   (kept in {})",
        credentials.token,
        credentials.file.display()
    );
    println!(
        "  try:        git clone http://{}:{}@{hostless}/demo.git",
        credentials.user, credentials.token
    );
}
