//! What one client, or the anonymous class, may take of the server.
//!
//! Three resources are bounded here, before the work that uses them starts:
//!
//! - connections: at most `max_connections` open, and at most
//!   `max_connections_per_client` from one IP address;
//! - git processes: requests without a user may hold together at most
//!   `anonymous_git_share` percent of `max_git_processes`, and those from one
//!   IP address at most `max_anonymous_git_per_client`, so an authenticated
//!   user always finds a slot however many anonymous clients there are
//!   (the pool itself, and its queue, is [`crate::git_process::GitRunner`]);
//! - request bytes held in memory: each request reads its first
//!   [`READ_AHEAD`] bytes freely; bytes past that which must be held (a fetch
//!   negotiation of the published view, a push's command list) are charged to
//!   one budget of `max_buffered_request_bytes` for the whole server, and a
//!   request that finds it spent is answered 503 at once.
//!
//! Every grant is a guard: dropping it (the request ends, the connection
//! closes) gives the resource back.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cadgate_config::ServerConfig;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::HttpError;

/// Bytes of a request body any request may hold without charging the
/// server-wide budget: enough for every ordinary fetch negotiation.
pub const READ_AHEAD: usize = 64 * 1024;

/// How much of the budget a growing body takes at a time.
const BUDGET_STEP: usize = 64 * 1024;

/// Who asks, as far as limits are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The client's address.
    pub ip: IpAddr,
    /// No authenticated user.
    pub anonymous: bool,
}

/// The limits of one server.
pub struct ClientLimits {
    anonymous_slots: Arc<Semaphore>,
    anonymous_total: usize,
    anonymous_per_client: usize,
    anonymous_by_ip: Counts,
    connections: Arc<Semaphore>,
    connections_per_client: usize,
    connections_by_ip: Counts,
    /// In KiB.
    buffered: Arc<Semaphore>,
    queue_timeout: Duration,
}

impl ClientLimits {
    /// The limits a server config sets.
    pub fn new(server: &ServerConfig) -> Self {
        let share = usize::try_from(server.anonymous_git_share.clamp(1, 100)).unwrap_or(100);
        let anonymous_total = (server.max_git_processes * share / 100).max(1);
        let kib = usize::try_from(server.max_buffered_request_bytes / 1024).unwrap_or(usize::MAX);
        Self {
            anonymous_slots: Arc::new(Semaphore::new(anonymous_total)),
            anonymous_total,
            anonymous_per_client: server.max_anonymous_git_per_client.max(1),
            anonymous_by_ip: Counts::default(),
            connections: Arc::new(Semaphore::new(server.max_connections.max(1))),
            connections_per_client: server.max_connections_per_client.max(1),
            connections_by_ip: Counts::default(),
            buffered: Arc::new(Semaphore::new(kib.min(Semaphore::MAX_PERMITS))),
            queue_timeout: Duration::from_secs(server.queue_timeout_secs),
        }
    }

    /// A connection from `ip`, if both the total and that client's share
    /// have room; `None`: close it.
    pub fn connection(&self, ip: IpAddr) -> Option<ConnectionGrant> {
        let permit = self.connections.clone().try_acquire_owned().ok()?;
        let counted = self
            .connections_by_ip
            .take(ip, self.connections_per_client)?;
        Some(ConnectionGrant {
            _permit: permit,
            _counted: counted,
        })
    }

    /// Admission of one git process for `caller`, taken before the runner's
    /// own slot. Authenticated callers pass at once; anonymous ones wait up
    /// to `queue_timeout_secs` for the anonymous share, and get a 503 when
    /// their address already holds its share.
    pub async fn git(&self, caller: Caller) -> Result<GitGrant, HttpError> {
        if !caller.anonymous {
            return Ok(GitGrant {
                _permit: None,
                _counted: None,
            });
        }
        let counted = self
            .anonymous_by_ip
            .take(caller.ip, self.anonymous_per_client)
            .ok_or_else(|| {
                anonymous_refused(format!(
                    "too many git requests without a user from your address at once (server.max_anonymous_git_per_client = {})",
                    self.anonymous_per_client
                ), 1)
            })?;
        let slots = self.anonymous_slots.clone();
        let permit = if self.queue_timeout.is_zero() {
            slots.try_acquire_owned().ok()
        } else {
            tokio::time::timeout(self.queue_timeout, slots.acquire_owned())
                .await
                .ok()
                .and_then(Result::ok)
        };
        let permit = permit.ok_or_else(|| {
            anonymous_refused(
                format!(
                    "all {} git slots for requests without a user stayed taken for {} s",
                    self.anonymous_total,
                    self.queue_timeout.as_secs()
                ),
                self.queue_timeout.as_secs().max(1),
            )
        })?;
        Ok(GitGrant {
            _permit: Some(permit),
            _counted: Some(counted),
        })
    }

    /// An empty claim on the buffered-bytes budget.
    pub fn buffer(&self) -> BufferGrant {
        BufferGrant {
            budget: self.buffered.clone(),
            permits: Vec::new(),
            kib: 0,
        }
    }
}

/// The answer to an anonymous request over its class's limits: 401 with the
/// Basic challenge (and a retry hint), not 503, because git sends no
/// credentials to a view anyone may read until it is asked for them: a
/// client that has credentials then retries as its user, who is always
/// served, and one without sees why.
fn anonymous_refused(why: String, retry_after: u64) -> HttpError {
    let mut error = HttpError::unauthorized(format!(
        "the server is busy with requests without a user ({why}); authenticate to be served, or retry shortly"
    ));
    error.retry_after = Some(retry_after);
    error
}

/// An open connection's place; dropping it frees the place.
pub struct ConnectionGrant {
    _permit: OwnedSemaphorePermit,
    _counted: Counted,
}

/// An admitted git request; dropping it frees the place.
pub struct GitGrant {
    _permit: Option<OwnedSemaphorePermit>,
    _counted: Option<Counted>,
}

/// Bytes of one request held in memory past [`READ_AHEAD`].
pub struct BufferGrant {
    budget: Arc<Semaphore>,
    permits: Vec<OwnedSemaphorePermit>,
    kib: usize,
}

impl BufferGrant {
    /// Make room for a body of `len` bytes in all; a 503 when the server's
    /// budget is spent (the request is refused, never queued holding bytes).
    pub fn cover(&mut self, len: usize) -> Result<(), HttpError> {
        let charged = len.saturating_sub(READ_AHEAD);
        if charged <= self.kib * 1024 {
            return Ok(());
        }
        let step = (charged - self.kib * 1024).div_ceil(BUDGET_STEP) * BUDGET_STEP / 1024;
        let permit = u32::try_from(step)
            .ok()
            .and_then(|n| self.budget.clone().try_acquire_many_owned(n).ok())
            .ok_or_else(|| {
                HttpError::busy(
                    "the server holds as many request bytes as it allows (server.max_buffered_request_bytes); retry shortly",
                    1,
                )
            })?;
        self.permits.push(permit);
        self.kib += step;
        Ok(())
    }
}

/// Live counts per IP address.
#[derive(Default, Clone)]
struct Counts(Arc<Mutex<HashMap<IpAddr, usize>>>);

impl Counts {
    /// Count one more for `ip` if it holds fewer than `max`.
    fn take(&self, ip: IpAddr, max: usize) -> Option<Counted> {
        let ip = client_of(ip);
        let mut map = self.0.lock().ok()?;
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Counted {
            counts: self.clone(),
            ip,
        })
    }
}

/// The client an address belongs to: an IPv4 address (also when written as
/// IPv4-mapped IPv6), or an IPv6 /64, which one host usually holds whole.
fn client_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// One counted use; dropping it uncounts it.
struct Counted {
    counts: Counts,
    ip: IpAddr,
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Ok(mut map) = self.counts.0.lock() {
            if let Some(n) = map.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&self.ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServerConfig {
        ServerConfig {
            max_git_processes: 4,
            queue_timeout_secs: 0,
            max_connections: 3,
            max_connections_per_client: 2,
            max_buffered_request_bytes: 256 * 1024,
            anonymous_git_share: 50,
            max_anonymous_git_per_client: 1,
            ..ServerConfig::default()
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[tokio::test]
    async fn anonymous_callers_hold_at_most_their_share() {
        let limits = ClientLimits::new(&config());
        let anon = |n| Caller {
            ip: ip(n),
            anonymous: true,
        };
        let a = limits.git(anon(1)).await.ok();
        assert!(a.is_some());
        // One per address.
        assert!(limits.git(anon(1)).await.is_err());
        let b = limits.git(anon(2)).await.ok();
        assert!(b.is_some());
        // Half of 4 slots: the third address waits (queue 0: refused).
        assert!(limits.git(anon(3)).await.is_err());
        // A user always passes.
        let user = Caller {
            ip: ip(1),
            anonymous: false,
        };
        assert!(limits.git(user).await.is_ok());
        drop(a);
        assert!(limits.git(anon(3)).await.is_ok());
        drop(b);
    }

    #[test]
    fn connections_per_client_and_in_total() {
        let limits = ClientLimits::new(&config());
        let a1 = limits.connection(ip(1));
        let a2 = limits.connection(ip(1));
        assert!(a1.is_some() && a2.is_some());
        assert!(limits.connection(ip(1)).is_none());
        let b = limits.connection(ip(2));
        assert!(b.is_some());
        assert!(limits.connection(ip(3)).is_none(), "3 in total");
        drop(a1);
        assert!(limits.connection(ip(3)).is_some());
    }

    #[test]
    fn an_ipv6_slash_64_is_one_client() {
        let limits = ClientLimits::new(&config());
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("address");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("address");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("address");
        let _a = limits.connection(a);
        let _b = limits.connection(b);
        assert!(limits.connection(a).is_none(), "2 per client");
        assert!(limits.connection(other).is_some());
    }

    #[test]
    fn the_buffer_budget_is_shared() {
        let limits = ClientLimits::new(&config());
        let mut a = limits.buffer();
        assert!(a.cover(READ_AHEAD).is_ok(), "the read-ahead is free");
        assert!(a.cover(READ_AHEAD + 200 * 1024).is_ok());
        let mut b = limits.buffer();
        assert!(b.cover(READ_AHEAD + 100 * 1024).is_err(), "256 KiB in all");
        drop(a);
        assert!(b.cover(READ_AHEAD + 100 * 1024).is_ok());
    }
}
