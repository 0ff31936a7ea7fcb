//! The registered repositories and where they live on disk.
//!
//! On start every `[[repository]]` gets a bare repository under
//! `<data_dir>/repositories/<name>.git`, its registered branch (an initial
//! commit when missing) and the git settings cadgate relies on. Requests find
//! repositories here by exact name, so a URL can only ever reach a directory
//! the config named. Beside each lives its published view's sibling,
//! `<data_dir>/published/<name>.git` ([`cadgate_hooks::published`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cadgate_config::RepositoryConfig;
use cadgate_hooks::forward::{read_credentials, Upstream};
use cadgate_hooks::process::GitCommand;
use cadgate_hooks::published::PublishedRepo;
use cadgate_hooks::refs::Layout;

/// Settings written into every served repository on start (idempotent).
const REPOSITORY_SETTINGS: &[(&str, &str)] = &[
    // Reflogs make every ref move recoverable.
    ("core.logAllRefUpdates", "always"),
    // Broken or malicious objects are refused at the door.
    ("receive.fsckObjects", "true"),
    ("receive.advertisePushOptions", "true"),
    // receive-pack's `gc --auto` would write refs outside the lifecycle
    // lock, and stale ref locks are cleared on the lock's word: the hook
    // runs it under the lock instead (cadgate_hooks::journal).
    ("receive.autogc", "false"),
    // Protocol v0 may then fetch any reachable commit by SHA, as v2 can.
    ("uploadpack.allowReachableSHA1InWant", "true"),
    ("uploadpack.allowFilter", "true"),
    // Keep clones and no-op fetches cheap as the repository grows.
    ("repack.writeBitmaps", "true"),
    ("pack.writeBitmapHashCache", "true"),
    ("gc.writeCommitGraph", "true"),
    ("fetch.writeCommitGraph", "true"),
];

/// A registered repository.
#[derive(Debug)]
pub struct Repository {
    /// Its `[[repository]]` entry.
    pub config: RepositoryConfig,
    /// The bare repository that holds every ref (the authoring view).
    pub path: PathBuf,
    /// git's protocol v2 capability advertisement for this repository. It
    /// depends only on the git binary and the repository's config, not on its
    /// refs, so it is computed once and served from memory afterwards.
    pub v2_capabilities: std::sync::OnceLock<bytes::Bytes>,
    /// The published view's sibling repository (contract §8):
    /// `<data_dir>/published/<name>.git`.
    pub published: PathBuf,
    /// The same advertisement for the published view.
    pub published_v2_capabilities: std::sync::OnceLock<bytes::Bytes>,
    /// The published view's remembered answers to pollers.
    pub published_answers: crate::smart_http::answers::Answers,
    /// Forward mode: the upstream this repository mirrors.
    pub upstream: Option<Upstream>,
    /// One refresh from the upstream at a time.
    refreshing: tokio::sync::Mutex<()>,
    /// What the API's listings already read from immutable objects.
    pub listing_memo: cadgate_hooks::listing::Memo,
    /// The API's remembered listing answers.
    pub api_answers: crate::api::Answers,
}

impl Repository {
    /// Forward mode: before serving, compare the mirror's refs with the
    /// upstream's (one `ls-remote`) and fetch when they differ, under the
    /// lifecycle lock, then bring the published view in step. Without an
    /// upstream, nothing to do.
    pub async fn refresh(&self) -> Result<(), String> {
        self.refresh_with(false).await
    }

    /// [`Repository::refresh`]; with `reconcile`, the published view is
    /// brought in step even when the mirror already was (the periodic
    /// refresh does this, repairing a view a crashed hook left behind).
    pub async fn refresh_with(&self, reconcile: bool) -> Result<(), String> {
        let Some(upstream) = self.upstream.clone() else {
            return Ok(());
        };
        let _one = self.refreshing.lock().await;
        let (path, published, config) = (
            self.path.clone(),
            self.published.clone(),
            self.config.clone(),
        );
        tokio::task::spawn_blocking(move || {
            refresh_mirror(&upstream, &path, &published, &config, reconcile)
        })
        .await
        .map_err(|e| format!("the refresh failed: {e}"))?
    }
}

/// See [`Repository::refresh`].
fn refresh_mirror(
    upstream: &Upstream,
    path: &Path,
    published: &Path,
    config: &RepositoryConfig,
    reconcile: bool,
) -> Result<(), String> {
    let theirs = upstream.refs(path).map_err(|e| e.to_string())?;
    let lock = std::fs::File::create(path.join("cadgate.lock"))
        .and_then(|lock| lock.lock().map(|()| lock))
        .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
    let repo = cadgate_hooks::git::Repo::open(path).map_err(|e| e.to_string())?;
    let ours: std::collections::BTreeMap<String, String> = repo
        .refs_under(&["refs/heads/", "refs/tags/", "refs/notes/"])
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|r| (r.name, r.target))
        .collect();
    let theirs: std::collections::BTreeMap<String, String> = theirs.into_iter().collect();
    let moved = ours != theirs;
    if moved {
        upstream.fetch(path).map_err(|e| e.to_string())?;
    }
    if moved || reconcile {
        let repo = cadgate_hooks::git::Repo::open(path).map_err(|e| e.to_string())?;
        PublishedRepo::at(published)
            .sync(&repo, &Layout::new(&config.branch, &config.directory), None)
            .map_err(|e| e.to_string())?;
    }
    drop(lock);
    Ok(())
}

/// Failure to prepare a repository on disk.
#[derive(Debug, thiserror::Error)]
#[error("cannot prepare repository '{name}' at {}: {detail}", path.display())]
pub struct RepositoryError {
    name: String,
    path: PathBuf,
    detail: String,
}

/// Every registered repository by name.
#[derive(Debug, Default)]
pub struct Registry {
    by_name: HashMap<String, Arc<Repository>>,
}

impl Registry {
    /// Create or open every configured repository under `data_dir`, up to
    /// `parallel` of them at once (each runs its git processes one at a
    /// time, so at most `parallel` git processes run: the server's
    /// `max_git_processes`). A failure names the first failing repository
    /// in config order.
    pub async fn open(
        repositories: &[RepositoryConfig],
        data_dir: &Path,
        git: &Path,
        parallel: usize,
    ) -> Result<Self, RepositoryError> {
        let slots = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
        let mut tasks = Vec::with_capacity(repositories.len());
        for config in repositories {
            let (config, data_dir, git, slots) = (
                config.clone(),
                data_dir.to_path_buf(),
                git.to_path_buf(),
                slots.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let _slot = slots.acquire_owned().await;
                tokio::task::spawn_blocking(move || open_one(config, &data_dir, &git)).await
            }));
        }
        let mut by_name = HashMap::new();
        for (task, config) in tasks.into_iter().zip(repositories) {
            let failed = |detail: String| RepositoryError {
                name: config.name.clone(),
                path: data_dir.join("repositories"),
                detail,
            };
            let repository = task
                .await
                .map_err(|e| failed(e.to_string()))?
                .map_err(|e| failed(e.to_string()))??;
            by_name.insert(config.name.clone(), Arc::new(repository));
        }
        Ok(Self { by_name })
    }

    /// The repository registered under `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Repository>> {
        self.by_name.get(name)
    }

    /// Every repository, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Repository>> {
        self.by_name.values()
    }
}

/// Create or open one configured repository under `data_dir`: recover what
/// a crash left, prepare the authoring repository, then its published view.
fn open_one(
    config: RepositoryConfig,
    data_dir: &Path,
    git: &Path,
) -> Result<Repository, RepositoryError> {
    let path = data_dir
        .join("repositories")
        .join(format!("{}.git", config.name));
    let failed = |detail| RepositoryError {
        name: config.name.clone(),
        path: path.clone(),
        detail,
    };
    let upstream = match &config.upstream {
        Some(url) => {
            let credentials = config
                .upstream_credentials
                .as_deref()
                .map(read_credentials)
                .transpose()
                .map_err(failed)?;
            Some(Upstream::new(url, credentials))
        }
        None => None,
    };
    let published = data_dir
        .join("published")
        .join(format!("{}.git", config.name));
    recover(&config, &path, &published).map_err(failed)?;
    prepare(git, &config, &path, upstream.as_ref()).map_err(failed)?;
    prepare_published(&config, &path, &published).map_err(|detail| RepositoryError {
        name: config.name.clone(),
        path: published.clone(),
        detail,
    })?;
    Ok(Repository {
        config,
        path,
        v2_capabilities: std::sync::OnceLock::new(),
        published,
        published_v2_capabilities: std::sync::OnceLock::new(),
        published_answers: Default::default(),
        upstream,
        refreshing: tokio::sync::Mutex::new(()),
        listing_memo: cadgate_hooks::listing::Memo::default(),
        api_answers: crate::api::Answers::default(),
    })
}

/// Before anything else writes to an existing repository on start: under
/// its lifecycle lock, remove the ref locks a killed process left, complete
/// a push a crash interrupted ([`cadgate_hooks::journal::recover`]), and
/// give every published revision its `published` event
/// ([`cadgate_hooks::journal::reconcile_published`]).
fn recover(config: &RepositoryConfig, path: &Path, published: &Path) -> Result<(), String> {
    if !path.join("HEAD").exists() {
        return Ok(());
    }
    let lock = std::fs::File::create(path.join("cadgate.lock"))
        .and_then(|lock| lock.lock().map(|()| lock))
        .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
    let layout = Layout::new(&config.branch, &config.directory);
    let recovery = cadgate_hooks::journal::recover(
        path,
        &config.name,
        &layout,
        Some(published),
        std::time::Duration::ZERO,
    )
    .map_err(|e| e.to_string())?;
    for line in recovery.lines() {
        tracing::warn!(repository = %config.name, "{line}");
    }
    let added = cadgate_hooks::journal::reconcile_published(path, &config.name, &layout)
        .map_err(|e| e.to_string())?;
    if added > 0 {
        tracing::warn!(repository = %config.name, events = added, "recorded the missing published events of revisions whose publish landed without one");
    }
    drop(lock);
    Ok(())
}

/// Create the published view's sibling and bring it in step with the
/// authoring repository: whatever a crash left half done is repaired here.
fn prepare_published(
    config: &RepositoryConfig,
    authoring: &Path,
    published: &Path,
) -> Result<(), String> {
    let view = PublishedRepo::at(published);
    view.create(&config.branch).map_err(|e| e.to_string())?;
    let repo = cadgate_hooks::git::Repo::open(authoring).map_err(|e| e.to_string())?;
    let layout = Layout::new(&config.branch, &config.directory);
    let report = view.sync(&repo, &layout, None).map_err(|e| e.to_string())?;
    // A large sync (a first start over an existing repository) ends with
    // full maintenance; a small one (a new repository, a view a crash left
    // a few refs behind) is tidied by the sync itself, as after a publish.
    if report.updated + report.removed > cadgate_hooks::git::PACK_REFS_EVERY {
        view.maintain().map_err(|e| e.to_string())?;
    }
    if report.updated + report.removed > 0 {
        tracing::info!(repository = %config.name, updated = report.updated, removed = report.removed, "brought the published view in step");
    }
    Ok(())
}

/// Prepare the authoring repository: create it when missing, give it
/// cadgate's settings, its registered branch and `HEAD`, and pack its loose
/// refs. Each step looks first and runs git only for what is missing
/// ([`cadgate_hooks::setup`]): a restart runs one git process here.
fn prepare(
    git: &Path,
    config: &RepositoryConfig,
    path: &Path,
    upstream: Option<&Upstream>,
) -> Result<(), String> {
    let branch_ref = format!("refs/heads/{}", config.branch);
    let created = !path.join("HEAD").exists();
    if created {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        GitCommand::new(git)
            // No template: its sample hooks cost 14 file copies a
            // repository and are never run (the server's hooks come with -c).
            .args(["init", "--bare", "--quiet", "--template="])
            .args(["--initial-branch", &config.branch])
            .arg(path)
            .run()
            .map_err(|e| e.to_string())?;
        tracing::info!(repository = %config.name, path = %path.display(), "created bare repository");
    }
    cadgate_hooks::setup::apply_settings(git, path, REPOSITORY_SETTINGS)
        .map_err(|e| e.to_string())?;
    if let Some(upstream) = upstream {
        // Forward mode: the mirror starts as the upstream is; the registered
        // branch is the upstream's to have.
        upstream.fetch(path).map_err(|e| e.to_string())?;
    }
    let repo =
        cadgate_hooks::git::Repo::with_git(git.to_path_buf(), path).map_err(|e| e.to_string())?;
    let has_branch = repo
        .refs_under(&[branch_ref.as_str()])
        .map_err(|e| e.to_string())?
        .iter()
        .any(|r| r.name == branch_ref);
    if !has_branch && upstream.is_some() {
        return Err(format!(
            "the upstream has no branch {}; create it there first",
            config.branch
        ));
    }
    if !has_branch
        && cadgate_hooks::branch::create_if_missing(&repo, &config.branch)
            .map_err(|e| e.to_string())?
            .is_some()
    {
        tracing::info!(repository = %config.name, branch = %config.branch, "created the registered branch");
    }
    cadgate_hooks::setup::point_head(git, path, &branch_ref).map_err(|e| e.to_string())?;
    // Refs written before this start (by an older server, a hook-mode host,
    // a crash before the packing was due) are packed once now; a repository
    // created just now holds only its branch (forward mode: the fetch packs).
    if created {
        return Ok(());
    }
    cadgate_hooks::setup::pack_loose_refs(git, path)
        .map(drop)
        .map_err(|e| e.to_string())
}
