//! Security regression suite (issue 12): one module per finding area, in
//! `tests/security/` (a crate root's `mod` looks beside it, hence `path`).

#[path = "security/published.rs"]
mod published;
