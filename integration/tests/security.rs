//! The security regression suite (issue 12): one test per finding, each
//! failing on the code before its fix. Each part lives in `security/`.

#[path = "security/crash.rs"]
mod crash;
