//! What the pushed commits hold, checked before the lifecycle lock is taken.

use std::collections::HashMap;

use super::{internal, refuse, Context};
use crate::git::Repo;
use crate::kptfile::{Kptfile, KPTFILE};
use crate::lifecycle::Refusal;
use crate::proc_receive::{Outcome, Request};
use crate::refs::{PackagePath, RefKind};

/// What the pushed commits hold, judged before the lifecycle lock is taken:
/// each draft's Kptfile, read and parsed once per (commit, package). Pushed
/// commits never change, so these results stay true while other pushes land;
/// judging under the lock reads them instead of parsing user content.
#[derive(Debug, Default)]
pub struct Inspected {
    kptfiles: HashMap<(String, PackagePath), Result<(), Refusal>>,
}

impl Inspected {
    /// The result for the Kptfile of `package` in `commit`, if inspected.
    pub(super) fn kptfile(
        &self,
        commit: &str,
        package: &PackagePath,
    ) -> Option<Result<(), Refusal>> {
        self.kptfiles
            .get(&(commit.to_string(), package.clone()))
            .cloned()
    }
}

impl Inspected {
    /// When the content of every command of `request` is refused, the
    /// outcomes: such a push is answered without waiting for the lifecycle
    /// lock (nothing of it could land).
    pub fn refuses_all(&self, context: &Context, request: &Request) -> Option<Vec<Outcome>> {
        if request.commands.is_empty() {
            return None;
        }
        request
            .commands
            .iter()
            .map(|command| {
                let RefKind::Draft { package, .. } = context.layout.classify(&command.refname)
                else {
                    return None;
                };
                if command.is_delete() {
                    return None;
                }
                match self.kptfile(&command.new, &package)? {
                    Ok(()) => None,
                    Err(refusal) => Some(Outcome::Rejected {
                        refname: command.refname.clone(),
                        reason: refusal.to_string(),
                    }),
                }
            })
            .collect()
    }
}

/// Check the content of every commit `request` pushes as a draft (its
/// package's Kptfile), without any lock: see [`Inspected`].
pub fn inspect(repo: &Repo, context: &Context, request: &Request) -> Inspected {
    let mut inspected = Inspected::default();
    for command in request.commands.iter().filter(|c| !c.is_delete()) {
        if let RefKind::Draft { package, .. } = context.layout.classify(&command.refname) {
            inspected
                .kptfiles
                .entry((command.new.clone(), package))
                .or_insert_with_key(|(commit, package)| check_kptfile(repo, package, commit));
        }
    }
    inspected
}

/// The package's Kptfile in `commit`: present, within the bounds on a
/// Kptfile, and valid for the package.
pub(super) fn check_kptfile(
    repo: &Repo,
    package: &PackagePath,
    commit: &str,
) -> Result<(), Refusal> {
    let kptfile_path = format!("{package}/{KPTFILE}");
    let text = repo
        .read_file(commit, &kptfile_path)
        .map_err(internal)?
        .ok_or_else(|| {
            refuse(
                "draft-needs-kptfile",
                format!("the draft has no {kptfile_path}; a package is a directory with a Kptfile"),
            )
        })?;
    Kptfile::parse_for(package, &text).map_err(|e| refuse("kptfile", e.to_string()))?;
    Ok(())
}
