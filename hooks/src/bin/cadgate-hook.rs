//! `cadgate-hook`: the program git runs as cadgate's hooks on any Git host.
//! See [`cadgate_hooks::hook`] for the environment it reads.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("proc-receive") => match options(&args[1..])
            .map_err(|e| e.to_string())
            .and_then(|o| cadgate_hooks::hook::proc_receive_with(&o).map_err(|e| e.to_string()))
        {
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
            eprintln!("usage: cadgate-hook proc-receive [--config FILE --repository NAME] [--published DIR] [--user-variable VAR]\n(git runs this as a hook)");
            ExitCode::from(2)
        }
    }
}

/// The hook-mode flags (see `cadgate hook proc-receive --help`).
fn options(args: &[String]) -> Result<cadgate_hooks::hook::HookOptions, String> {
    let mut options = cadgate_hooks::hook::HookOptions::default();
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let mut value = || {
            rest.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--config" => options.config = Some(value()?.into()),
            "--repository" => options.repository = Some(value()?),
            "--published" => options.published = Some(value()?.into()),
            "--user-variable" => options.user_variable = Some(value()?),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(options)
}
