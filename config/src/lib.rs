//! cadgate's configuration: the typed TOML file of contract §3, its
//! validation, and error messages that name file, line, column and key.
//!
//! - [`model`]: the types the server uses ([`Config`] and its sections);
//! - [`load`]: reading and checking a file, reporting every problem at once;
//! - [`names`]: the naming rules for repositories, branches, directories, users;
//! - [`problem`]: located problems and the error that lists them.

pub mod load;
pub mod model;
pub mod names;
pub mod problem;

pub use model::{
    token_sha256_hex, Config, FetchAllow, HookConfig, PolicyConfig, RepositoryConfig, Role,
    ServerConfig, UserConfig, WebhookConfig, EVENT_TYPES,
};
pub use names::{validate_repository_name, RESERVED_FIRST_SEGMENTS};
pub use problem::{ConfigError, Problem};
