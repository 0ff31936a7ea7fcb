//! The network edge: accept connections, speak HTTP/1.1 and h2c through
//! hyper, and shut down gracefully.
//!
//! On SIGTERM or Ctrl-C the listener closes at once (new connections are
//! refused), requests in flight — pushes included — run to completion, and
//! git children are given time to exit. A second signal stops immediately.
//!
//! Against clients that hold the server without using it: connections are
//! counted ([`crate::limits`]), a client has `HEADER_READ_TIMEOUT` to send
//! its request headers, and a connection whose answer nobody reads (a write
//! that stays blocked for `server.write_timeout_secs`) is closed, which drops
//! the answer and so stops the git child producing it and frees its slot.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::Sleep;

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
    let write_timeout = Duration::from_secs(state.config.server.write_timeout_secs);
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
                let Some(place) = state.limits.connection(peer.ip()) else {
                    tracing::debug!(%peer, "connection refused: too many open (server.max_connections, server.max_connections_per_client)");
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let svc = service_fn(move |request| service::handle(state.clone(), request, peer));
                let io = WriteDeadline::new(stream, write_timeout);
                let connection = builder.serve_connection(TokioIo::new(io), svc).into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    drop(place);
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

/// A connection whose writes fail once one has stayed blocked for `limit`:
/// the client stopped reading (its receive window and our send buffer are
/// full). Hyper then closes the connection and drops the response.
struct WriteDeadline<IO> {
    inner: IO,
    limit: Duration,
    blocked: Option<Pin<Box<Sleep>>>,
}

impl<IO> WriteDeadline<IO> {
    fn new(inner: IO, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            blocked: None,
        }
    }

    /// After the inner write returned `poll`: start, check or clear the clock.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending => {
                let limit = self.limit;
                let clock = self
                    .blocked
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if clock.as_mut().poll(cx).is_ready() {
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "the client read nothing for {} s (server.write_timeout_secs)",
                            limit.as_secs()
                        ),
                    )))
                } else {
                    Poll::Pending
                }
            }
            ready => {
                self.blocked = None;
                ready
            }
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for WriteDeadline<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
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
