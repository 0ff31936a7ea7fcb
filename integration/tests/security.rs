//! The security regression suite (issue 12): one test per finding, each
//! failing on the code before its fix.

// A crate root's modules live beside it, so each part names its file.
#[path = "security/fetch.rs"]
mod fetch;
