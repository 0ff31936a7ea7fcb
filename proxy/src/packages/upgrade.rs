//! Planning an upgrade: the old and new upstream revisions and the local
//! draft the three-way merge starts from.

use std::sync::Arc;

use cadgate_hooks::annotation::Task;
use cadgate_hooks::clone::Origin;
use cadgate_hooks::refs::Layout;
use http::{HeaderMap, StatusCode};

use crate::api;
use crate::auth::Principal;
use crate::error::HttpError;
use crate::fetch::{self, Scratch};
use crate::repositories::Repository;
use crate::service::State;

use super::create::UpgradeTo;
use super::invalid;

/// Where an upgrade goes from and to.
pub(super) struct UpgradePlan {
    /// The registered repository holding the upstream.
    pub(super) source: Option<Arc<Repository>>,
    /// Or the scratch repository its revisions were fetched into.
    pub(super) scratch: Option<Scratch>,
    /// The upstream revision the package is at.
    pub(super) base: Origin,
    /// The one it moves to.
    pub(super) new: Origin,
    /// Porch's upgrade task naming the three revisions, when they are
    /// revisions of registered repositories (Porch upgrades only between
    /// its own objects).
    pub(super) task: Option<Task>,
}

pub(super) async fn plan_upgrade(
    state: &State,
    repo: &Arc<Repository>,
    principal: &Principal,
    headers: &HeaderMap,
    package: &cadgate_hooks::refs::PackagePath,
    to: &UpgradeTo,
) -> Result<UpgradePlan, HttpError> {
    let (listed, _) = api::list(repo, Some(package.clone())).await?;
    let current = listed
        .iter()
        .filter(|r| r.revision > 0)
        .max_by_key(|r| r.revision)
        .ok_or_else(|| invalid(format!("{package} has no published revision to upgrade")))?;
    let lock = current
        .upstream_lock
        .as_ref()
        .and_then(|l| l.git.clone())
        .ok_or_else(|| {
            invalid(format!(
                "{package} v{} has no upstreamLock in its Kptfile: it was not cloned from an upstream",
                current.revision
            ))
        })?;
    let directory = lock.directory.trim_matches('/').to_string();
    let base = Origin {
        repo: lock.repo.clone(),
        directory: directory.clone(),
        reference: lock.reference.clone(),
        commit: lock.commit.clone(),
    };
    let at = cadgate_hooks::refs::tag_revision(&lock.reference, &directory);
    let registered = current
        .upstream_lock
        .as_ref()
        .and_then(|l| api::registered_upstream(state, l))
        .map(|(repo, _, _)| repo);
    let local = api::revision_name(&repo.config.name, package.as_str(), &current.workspace);
    let (source, scratch, new, task) = match registered {
        Some(source) => {
            let source = api::repository(state, principal, &source.config.name)?.clone();
            let layout = Layout::new(&source.config.branch, &source.config.directory);
            let (upstream, _) = api::list(&source, layout.package(&directory)).await?;
            let chosen = upstream
                .iter()
                .filter(|r| r.revision > 0)
                .filter(|r| to.revision.is_none_or(|n| n == r.revision))
                .max_by_key(|r| r.revision)
                .ok_or_else(|| {
                    invalid(format!(
                        "the upstream has no published revision {} of {directory}",
                        to.revision.map_or("at all".into(), |n| format!("v{n}"))
                    ))
                })?;
            let new = Origin {
                repo: lock.repo.clone(),
                directory: directory.clone(),
                reference: format!("{directory}/v{}", chosen.revision),
                commit: chosen.commit.clone(),
            };
            // Porch's upgrade task names the upstream revision the package
            // is at, the one it moves to and the local one by object name
            // (`porchctl rpkg upgrade`, upgrade/command.go lines 217–231);
            // without the old revision (deleted since) there is no name to
            // write, and so no task.
            let name = |r: &cadgate_hooks::listing::PackageRevision| {
                api::revision_name(&source.config.name, r.package.as_str(), &r.workspace)
            };
            let task = upstream
                .iter()
                .find(|r| at == Some(r.revision))
                .map(|old| Task::upgrade(&name(old), &name(chosen), &local));
            (Some(source), None, new, task)
        }
        None => {
            // Everything the Kptfile says is hostile: checked before git runs.
            let url = fetch::check_url("the Kptfile's upstreamLock.git.repo", &lock.repo)?;
            fetch::check_ref("the Kptfile's upstreamLock.git.ref", &lock.reference)?;
            fetch::check_directory("the Kptfile's upstreamLock.git.directory", &directory)?;
            let destination = fetch::destination(state, principal, headers, &url).await?;
            let revision = match to.revision {
                Some(n) => n,
                None => fetch::latest_revision(state, &destination, &url, &directory).await?,
            };
            let wanted = format!("{directory}/v{revision}");
            let (scratch, commits) =
                fetch::fetch(state, &destination, &url, &[&lock.reference, &wanted]).await?;
            if commits[0] != lock.commit {
                return Err(invalid(format!(
                    "the upstream's {} is no longer the commit the Kptfile's upstreamLock names; upgrade by hand",
                    lock.reference
                )));
            }
            let new = Origin {
                repo: url.shown(),
                directory: directory.clone(),
                reference: wanted,
                commit: commits[1].clone(),
            };
            (None, Some(scratch), new, None)
        }
    };
    if let (Some(at), Some(to_revision)) = (
        at,
        cadgate_hooks::refs::tag_revision(&new.reference, &directory),
    ) {
        if to_revision <= at {
            return Err(HttpError::new(
                StatusCode::CONFLICT,
                format!("{package} is at {directory} v{at} already; v{to_revision} is not newer"),
            )
            .json("conflict"));
        }
    }
    Ok(UpgradePlan {
        source,
        scratch,
        base,
        new,
        task,
    })
}
