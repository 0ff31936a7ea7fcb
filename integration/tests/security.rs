//! The security regression suite (issue 12): one module per finding area,
//! in `tests/security/`, each test failing on the code before its fix.
//! docs/security.md says what each defends.

// A crate root's modules live beside it, so each part names its file.
#[path = "security/content.rs"]
mod content;
#[path = "security/crash.rs"]
mod crash;
#[path = "security/fetch.rs"]
mod fetch;
#[path = "security/http.rs"]
mod http;
#[path = "security/published.rs"]
mod published;
