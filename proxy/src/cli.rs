//! Command-line parsing and the subcommands (contract §2).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use cadgate::server::Server;
use cadgate_config::Config;
use clap::{Parser, Subcommand, ValueEnum};

use crate::embedded;

/// cadgate: package orchestration (kpt packages, Draft → Proposed → Published) on plain Git.
#[derive(Parser)]
#[command(name = "cadgate", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server. Without --config: an embedded default for a first try
    /// (loopback only, data in ./cadgate-data, one repository `demo`).
    Serve {
        /// The TOML config file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Listen address, overriding server.listen (e.g. 127.0.0.1:8080; port 0 picks a free one).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Data directory, overriding server.data_dir.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Log format on stderr.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Print a fresh random token and the token_sha256 line for the config.
    Token,
    /// Validate a config file: exit 0, or print every problem with its line.
    CheckConfig {
        /// The TOML config file.
        file: PathBuf,
    },
    /// Package revisions through the server's API: list, get, init, clone,
    /// copy, upgrade, propose, reject, approve, propose-delete,
    /// reject-delete, delete, behind.
    Pkg {
        #[command(flatten)]
        connection: crate::pkg::Connection,
        #[command(subcommand)]
        command: crate::pkg::PkgCommand,
    },
    /// Hooks that git runs (the server installs them; see also cadgate-hook).
    Hook {
        #[command(subcommand)]
        hook: HookCommand,
    },
}

#[derive(Subcommand)]
enum HookCommand {
    /// Judge and apply a push (git's proc-receive hook protocol on stdin/stdout).
    ProcReceive {
        #[command(flatten)]
        mode: HookMode,
    },
    /// Install cadgate's hooks into a bare repository served by another Git
    /// server (Apache + git http-backend, gitolite, ssh, file://).
    Install {
        /// The cadgate config: users, roles and the repository's settings.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The repository's name in the config.
        #[arg(long, value_name = "NAME")]
        repository: String,
        /// The bare repository.
        #[arg(value_name = "BARE_REPO_PATH")]
        path: PathBuf,
        /// An environment variable the host sets to the pusher's name, tried
        /// before REMOTE_USER and GL_USER.
        #[arg(long, value_name = "VAR")]
        user_variable: Option<String>,
        /// Where to keep the published view's repository (default: beside
        /// the repository, NAME.published.git).
        #[arg(long, value_name = "DIR")]
        published: Option<PathBuf>,
        /// Remove cadgate's hook and restore the settings it changed.
        #[arg(long)]
        uninstall: bool,
    },
}

/// Hook mode: where a hook installed by `cadgate hook install` finds its rules.
#[derive(clap::Args)]
struct HookMode {
    /// The cadgate config (hook mode; without it, the environment set by `cadgate serve`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The repository's name in the config.
    #[arg(long, value_name = "NAME", requires = "config")]
    repository: Option<String>,
    /// The published view's repository to keep in step.
    #[arg(long, value_name = "DIR")]
    published: Option<PathBuf>,
    /// An environment variable naming the pusher.
    #[arg(long, value_name = "VAR")]
    user_variable: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Parse the command line and run the subcommand.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
            log_format,
        } => serve(config, listen, data_dir, log_format),
        Command::Pkg {
            connection,
            command,
        } => crate::pkg::run(&connection, command),
        Command::Token => {
            let token =
                cadgate::auth::new_token().context("cannot read random bytes from the OS")?;
            println!("token: {token}");
            println!(
                "token_sha256 = \"{}\"",
                cadgate_config::token_sha256_hex(&token)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Hook {
            hook: HookCommand::ProcReceive { mode },
        } => {
            let options = cadgate_hooks::hook::HookOptions {
                config: mode.config,
                repository: mode.repository,
                user_variable: mode.user_variable,
                published: mode.published,
            };
            cadgate_hooks::hook::proc_receive_with(&options).context("proc-receive hook failed")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Hook {
            hook:
                HookCommand::Install {
                    config,
                    repository,
                    path,
                    user_variable,
                    published,
                    uninstall,
                },
        } => {
            let executable = std::env::current_exe()
                .context("cannot find the cadgate executable to install as the hook")?;
            let installation = cadgate_hooks::install::Installation {
                repository_dir: path.clone(),
                config,
                repository,
                command: vec![executable, PathBuf::from("hook")],
                user_variable,
                published,
            };
            if uninstall {
                installation.uninstall()?;
                println!(
                    "removed cadgate from {} (the published view's repository is kept)",
                    path.display()
                );
            } else {
                let installed = installation.install()?;
                println!("installed {}", installed.hook.display());
                println!(
                    "published view: {} (serve it read-only to Config Sync)",
                    installed.published.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(config) => {
                let webhooks = match config.webhooks.len() {
                    0 => String::new(),
                    1 => ", 1 webhook".to_string(),
                    n => format!(", {n} webhooks"),
                };
                println!(
                    "{}: ok ({} repositories, {} users{webhooks})",
                    file.display(),
                    config.repositories.len(),
                    config.users.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => {
                eprintln!("{error}");
                eprintln!("{}: {} problem(s)", file.display(), error.problems.len());
                Ok(ExitCode::FAILURE)
            }
        },
    }
}

fn serve(
    config_file: Option<PathBuf>,
    listen: Option<std::net::SocketAddr>,
    data_dir: Option<PathBuf>,
    log_format: LogFormat,
) -> anyhow::Result<ExitCode> {
    init_logging(log_format);
    let (mut config, embedded) = match &config_file {
        Some(file) => match Config::load(file) {
            Ok(config) => (config, None),
            Err(error) => {
                eprintln!("{error}");
                anyhow::bail!(
                    "the config {} has {} problem(s); see `cadgate check-config {}`",
                    file.display(),
                    error.problems.len(),
                    file.display()
                );
            }
        },
        None => {
            let dir = data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("cadgate-data"));
            let (config, credentials) = embedded::config(&dir)?;
            (config, Some(credentials))
        }
    };
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    if let Some(dir) = data_dir {
        config.server.data_dir = dir;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let server = Server::start(config).await?;
        let addr = server
            .local_addr()
            .context("cannot read the bound address")?;
        let base = format!("http://{addr}");
        match &embedded {
            Some(credentials) => embedded::banner(&base, server.config(), credentials),
            None => println!("listening on {base}"),
        }
        server.run().await.context("serving failed")?;
        Ok(ExitCode::SUCCESS)
    })
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("CADGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
