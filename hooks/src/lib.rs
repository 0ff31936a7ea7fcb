//! cadgate's lifecycle engine: the rules that judge every push.
//!
//! This crate holds the one enforcement path of cadgate (contract §1): the
//! embedded server, a hook installed on a third-party Git host and the
//! forwarding proxy all run these rules inside git's hooks.
//!
//! - [`refs`]: the Porch ref layout — what a ref name means;
//! - [`lifecycle`]: where a push is judged — ref updates to transitions, and roles;
//! - [`enforce`]: judging a whole push (package rules) and carrying it out atomically;
//! - [`forward`]: forward mode — pushing what the lifecycle accepted to the upstream first;
//! - [`events`]: the lifecycle event log, one JSON line per event;
//! - [`journal`]: the intent journal, and recovery from a crash mid-push;
//! - [`audit`]: who proposed, rejected and approved what, as git notes;
//! - [`kptfile`]: the Kptfile that marks a package, and its checks;
//! - [`git`]: reading a repository (gix in process) and writing refs through git;
//! - [`published`]: the published view's sibling repository, kept in step with publishing;
//! - [`listing`]: every package revision, straight from refs;
//! - [`proc_receive`]: the protocol git speaks with the `proc-receive` hook;
//! - [`hook`]: the hook entry points (`cadgate-hook proc-receive`);
//! - [`install`]: installing cadgate into a repository another Git server hosts;
//! - [`branch`]: the registered branch, created when a repository lacks it;
//! - [`process`]: the one way cadgate starts git (clean environment, `--`, deadlines);
//! - [`setup`]: a repository's idempotent set-up, checked cheaply (server start, hook install);
//! - [`downstreams`]: the file through which the server tells the hook its other repositories.

pub mod annotation;
pub mod audit;
pub mod branch;
pub mod clone;
pub mod downstreams;
pub mod enforce;
pub mod events;
pub mod forward;
pub mod git;
pub mod hook;
pub mod install;
pub mod journal;
pub mod kptfile;
pub mod lifecycle;
pub mod listing;
pub mod proc_receive;
pub mod process;
pub mod published;
pub mod refs;
pub mod setup;
