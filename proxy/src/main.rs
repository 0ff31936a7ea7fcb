//! The `cadgate` command: a thin shell over the `cadgate` library.

mod cli;
mod embedded;
mod pkg;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("cadgate: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
