//! `cadgate-hook`: the program git runs as cadgate's hooks on any Git host.
//! See [`cadgate_hooks::hook`] for the environment it reads.

use std::process::ExitCode;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("proc-receive") => match cadgate_hooks::hook::proc_receive() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cadgate-hook: {e}");
                ExitCode::FAILURE
            }
        },
        Some("--version") | Some("-V") => {
            println!("cadgate-hook {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: cadgate-hook proc-receive\n(git runs this as a hook)");
            ExitCode::from(2)
        }
    }
}
