//! The `cadgate` command: a thin shell over the `cadgate` library.

mod cli;
mod embedded;
mod pkg;

use std::process::ExitCode;

/// mimalloc returns freed memory to the OS and keeps no per-thread arena
/// of idle buffers: a server whose listings build large answers on many
/// blocking threads stays at a flat size (glibc's malloc grew 1.5x over 40
/// listings of 100,000 revisions), and allocation-heavy listing is faster.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("cadgate: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
