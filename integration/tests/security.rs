//! The security regression suite of issue 12: one module per area, each
//! test naming the finding it keeps closed. (A test crate root looks for
//! its modules beside it, hence the paths.)

#[path = "security/http.rs"]
mod http;
