//! Print every package revision of a repository, as the listing sees it.
//!
//!     cargo run -p cadgate-hooks --example list_revisions -- GIT_DIR [BRANCH] [DIRECTORY]

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(git_dir) = args.get(1) else {
        eprintln!("usage: list_revisions GIT_DIR [BRANCH] [DIRECTORY]");
        std::process::exit(2);
    };
    let branch = args.get(2).map(String::as_str).unwrap_or("main");
    let directory = args.get(3).map(String::as_str).unwrap_or("");
    let layout = cadgate_hooks::refs::Layout::new(branch, directory);
    let listed = cadgate_hooks::git::Repo::open(std::path::Path::new(git_dir))
        .and_then(|repo| cadgate_hooks::listing::list(&repo, &layout));
    match listed {
        Ok(revisions) => {
            for r in revisions {
                println!(
                    "{:<32} {:<18} {:>3} {:<16} {:<6} {} {}",
                    r.package.as_str(),
                    r.workspace,
                    r.revision,
                    r.lifecycle.as_str(),
                    if r.latest { "latest" } else { "" },
                    &r.commit[..12],
                    r.published_by.unwrap_or_default()
                );
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
