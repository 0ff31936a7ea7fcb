//! The security regression suite (issue 12): one module per group of
//! findings, each test failing on the code before its fix. Modules live in
//! `security/` (named with `#[path]`, this file being the crate root).

#[path = "security/content.rs"]
mod content;
