//! The network edge: accept connections, speak HTTP/1.1 and h2c through
//! hyper, and shut down gracefully.
//!
//! On SIGTERM or Ctrl-C the listener closes at once (new connections are
//! refused), requests in flight — pushes included — run to completion, and
//! git children are given time to exit. A second signal stops immediately.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::service::{self, State};

/// How long a client may take to send request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve until a shutdown signal, then drain.
pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    drain_limit: Duration,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let svc = service_fn(move |request| service::handle(state.clone(), request, peer));
                let connection = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    // Event streams never end by themselves: end them so the drain can finish.
    state.events.close();
    tracing::info!("shutting down: no new connections; waiting for requests in flight");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(drain_limit) => {
            tracing::warn!(seconds = drain_limit.as_secs(), "requests still running after the drain limit; stopping anyway");
        }
        () = shutdown_signal() => {
            tracing::warn!("second signal: stopping now");
            return Ok(());
        }
    }
    if !state.runner.drain(Duration::from_secs(10)).await {
        tracing::warn!("git processes still running at exit");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Bind `addr` with a message that tells what to do when it is taken.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr).await.map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => "; another process uses it: pass --listen with another port, e.g. --listen 127.0.0.1:0",
            std::io::ErrorKind::PermissionDenied => "; ports below 1024 need privileges: pick a higher port",
            _ => "",
        };
        format!("cannot listen on {addr}: {e}{hint}")
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
