//! cadgate: a Git smart-HTTP server and proxy that enforces the kpt package
//! lifecycle (Draft → Proposed → Published) on plain `git push`.
//!
//! The crate is layered from the network inwards:
//!
//! - [`transport`]: accepting connections, HTTP/1.1 and h2c, graceful shutdown;
//! - [`service`]: the per-request pipeline (observe → route → handler);
//! - [`routes`]: URL paths to views, repositories and Git endpoints;
//! - [`auth`]: HTTP Basic users and tokens, roles per repository;
//! - [`smart_http`]: the smart-HTTP protocol, with git doing the pack work;
//! - [`git_process`]: the bounded pool of git children;
//! - [`limits`]: what one client or the anonymous class may take;
//! - [`repositories`]: registered repositories on disk;
//! - [`enforcement`]: pointing git's receive-pack at cadgate's hooks;
//! - [`events`]: lifecycle events as server-sent events and webhooks;
//! - [`observe`]: metrics and access logs;
//! - [`server`]: assembling all of it from a config.
//!
//! The lifecycle rules themselves live in the `cadgate-hooks` crate and run
//! inside git's hooks, so every path into a repository is judged by one code.

pub mod api;
pub mod auth;
pub mod enforcement;
pub mod error;
pub mod events;
pub mod fetch;
pub mod git_process;
pub mod limits;
pub mod observe;
pub mod packages;
pub mod repositories;
pub mod routes;
pub mod server;
pub mod service;
pub mod smart_http;
pub mod transport;
