//! Assembling a running server from a validated [`Config`]: data directory,
//! git, repositories, listener, then serving until shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cadgate_config::Config;
use tokio::net::TcpListener;

use crate::enforcement::Enforcement;
use crate::git_process::{GitRunner, Limits};
use crate::observe::Metrics;
use crate::repositories::{Registry, RepositoryError};
use crate::service::State;
use crate::transport;

/// Why the server could not start. Each message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory cannot be created or used.
    #[error("cannot use the data directory {}: {source}; pick another with --data-dir or server.data_dir", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// git cannot be run.
    #[error("cannot run git ({git}): {detail}; install git or point server.git at it")]
    Git {
        /// The configured binary.
        git: String,
        /// What failed.
        detail: String,
    },
    /// A repository could not be prepared.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    /// The listen address cannot be bound.
    #[error("{0}")]
    Bind(String),
    /// A webhook cannot be set up.
    #[error(transparent)]
    Webhook(#[from] crate::events::WebhookError),
}

/// A server that is listening and ready to serve.
pub struct Server {
    listener: TcpListener,
    state: Arc<State>,
    drain_limit: Duration,
    webhooks: Vec<crate::events::Webhook>,
}

impl Server {
    /// Prepare everything and bind the listener. When this returns, `/healthz`
    /// answers as soon as [`Server::run`] is called.
    pub async fn start(mut config: Config) -> Result<Self, StartError> {
        let data_dir = config.server.data_dir.clone();
        tokio::fs::create_dir_all(&data_dir)
            .await
            .and_then(|()| std::fs::canonicalize(&data_dir))
            .map(|absolute| config.server.data_dir = absolute)
            .map_err(|source| StartError::DataDir {
                path: data_dir.clone(),
                source,
            })?;
        // Scratch repositories of server-side fetches a crash left behind.
        let _ = tokio::fs::remove_dir_all(config.server.data_dir.join(".scratch")).await;
        let git = config.server.git.clone();
        check_git(&git).await?;
        // Repositories are prepared side by side, as many at once as git
        // processes may run (each runs its git processes one at a time).
        let registry = Registry::open(
            &config.repositories,
            &config.server.data_dir,
            &git,
            config.server.max_git_processes,
        )
        .await?;
        let executable = std::env::current_exe().map_err(|source| StartError::DataDir {
            path: config.server.data_dir.clone(),
            source,
        })?;
        // By name, so the rule that looks into them meets them in one order.
        let mut repositories: Vec<cadgate_hooks::enforce::Downstream> = registry
            .iter()
            .map(|r| cadgate_hooks::enforce::Downstream {
                name: r.config.name.clone(),
                path: r.path.clone(),
                branch: r.config.branch.clone(),
            })
            .collect();
        repositories.sort_by(|a, b| a.name.cmp(&b.name));
        let enforcement = Enforcement::install(&config.server.data_dir, &executable, &repositories)
            .map_err(|source| StartError::DataDir {
                path: config.server.data_dir.clone(),
                source,
            })?;
        let hub = Arc::new(crate::events::Hub::new(
            registry
                .iter()
                .map(|r| (r.config.name.as_str(), r.path.as_path())),
        ));
        let webhooks = crate::events::prepare(&config, &hub)?;
        let listener = transport::bind(config.server.listen)
            .await
            .map_err(StartError::Bind)?;
        // The address really bound (port 0 picks one): a fetch URL naming
        // it names this server.
        if let Ok(bound) = listener.local_addr() {
            config.server.listen = bound;
        }
        let metrics = Arc::new(Metrics::new());
        let run_timeout = Duration::from_secs(config.server.request_timeout_secs);
        let runner = GitRunner::new(
            git,
            PathBuf::from(cadgate_hooks::process::NO_HOME),
            Limits {
                max_processes: config.server.max_git_processes,
                queue_timeout: Duration::from_secs(config.server.queue_timeout_secs),
                run_timeout,
            },
            metrics.clone(),
        );
        let state = Arc::new(State {
            limits: crate::limits::ClientLimits::new(&config.server),
            config: Arc::new(config),
            registry,
            runner,
            metrics,
            enforcement,
            events: hub,
        });
        Ok(Self {
            listener,
            state,
            drain_limit: run_timeout,
            webhooks,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The configuration in force (data directory made absolute).
    pub fn config(&self) -> &Config {
        &self.state.config
    }

    /// Serve until SIGTERM or Ctrl-C, then finish requests in flight.
    pub async fn run(self) -> std::io::Result<()> {
        let mut mirrors = Vec::new();
        for repo in self.state.registry.iter() {
            tracing::info!(repository = %repo.config.name, path = %repo.path.display(), "serving");
            if repo.upstream.is_some() {
                mirrors.push(repo.clone());
            }
        }
        // Forward mode: mirrors also follow their upstream on a timer, so a
        // change made there shows in the published view without a request.
        let refresher = (!mirrors.is_empty()).then(|| {
            tokio::spawn(async move {
                let mut every = tokio::time::interval(MIRROR_REFRESH);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    for repo in &mirrors {
                        if let Err(e) = repo.refresh_with(true).await {
                            tracing::warn!(repository = %repo.config.name, error = %e, "the upstream did not answer the periodic refresh");
                        }
                    }
                }
            })
        });
        let deliveries = crate::events::start_deliveries(self.webhooks, &self.state.events);
        let served = transport::serve(self.listener, self.state, self.drain_limit).await;
        if let Some(refresher) = refresher {
            refresher.abort();
        }
        for delivery in deliveries {
            delivery.abort();
        }
        served
    }
}

/// How often a forward-mode mirror follows its upstream between requests.
const MIRROR_REFRESH: Duration = Duration::from_secs(30);

async fn check_git(git: &std::path::Path) -> Result<(), StartError> {
    let failure = |detail: String| StartError::Git {
        git: git.display().to_string(),
        detail,
    };
    let output = tokio::process::Command::from(
        cadgate_hooks::process::GitCommand::new(git)
            .arg("--version")
            .into_std(),
    )
    .output()
    .await
    .map_err(|e| failure(e.to_string()))?;
    if !output.status.success() {
        return Err(failure(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    tracing::info!(version = %String::from_utf8_lossy(&output.stdout).trim(), "using git");
    Ok(())
}
