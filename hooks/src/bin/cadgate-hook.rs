//! `cadgate-hook`: the program git runs as cadgate's hooks.
//!
//! `cadgate-hook proc-receive` reads the push from git (githooks(5),
//! proc-receive), judges and applies it, and reports every ref's outcome.
//! Messages for the pusher go to stderr, which git relays as `remote:` lines.
//!
//! Who pushes and with what rights comes from the environment the server
//! sets: `CADGATE_USER` (else `REMOTE_USER`), `CADGATE_ROLE`,
//! `CADGATE_BRANCH` (default `main`), `CADGATE_DIRECTORY`,
//! `CADGATE_SELF_APPROVAL` (`true`/`false`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use cadgate_config::Role;
use cadgate_hooks::enforce::{enforce, Context};
use cadgate_hooks::git::Repo;
use cadgate_hooks::proc_receive::{read_request, write_outcomes, Outcome};
use cadgate_hooks::refs::Layout;

fn main() -> ExitCode {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let result = match mode.as_str() {
        "proc-receive" => proc_receive(),
        "--version" | "-V" => {
            println!("cadgate-hook {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        _ => {
            eprintln!("usage: cadgate-hook proc-receive\n(git runs this as a hook; see `cadgate hook install`)");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cadgate-hook: {e}");
            ExitCode::FAILURE
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn proc_receive() -> Result<(), Box<dyn std::error::Error>> {
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let request = read_request(stdin, &mut stdout)?;
    let user = env("CADGATE_USER").or_else(|| env("REMOTE_USER"));
    let role = env("CADGATE_ROLE").and_then(|r| Role::parse(&r));
    let (Some(user), Some(role)) = (user, role) else {
        // Never treat an unknown pusher as anyone in particular.
        let outcomes: Vec<Outcome> = request
            .commands
            .iter()
            .map(|c| Outcome::Rejected {
                refname: c.refname.clone(),
                reason: "no authenticated user: cadgate refuses pushes without an identity".into(),
            })
            .collect();
        write_outcomes(&mut stdout, &outcomes)?;
        return Ok(());
    };
    let git_dir = PathBuf::from(env("GIT_DIR").unwrap_or_else(|| ".".into()));
    let context = Context {
        layout: Layout::new(
            &env("CADGATE_BRANCH").unwrap_or_else(|| "main".into()),
            &env("CADGATE_DIRECTORY").unwrap_or_default(),
        ),
        user,
        role,
        self_approval: env("CADGATE_SELF_APPROVAL").as_deref() == Some("true"),
    };
    // One lifecycle transaction at a time per repository; the ref
    // transaction's compare-and-swap guards against everything else.
    let lock = std::fs::File::create(git_dir.join("cadgate.lock"))?;
    lock.lock()?;
    let verdict = enforce(&Repo::open(&git_dir), &context, &request)?;
    drop(lock);
    let mut stderr = std::io::stderr().lock();
    for message in &verdict.messages {
        writeln!(stderr, "cadgate: {message}")?;
    }
    write_outcomes(&mut stdout, &verdict.outcomes)?;
    Ok(())
}
