//! What a pusher is shown: the authoring view's receive-pack advertisement
//! (`GET …/info/refs?service=git-receive-pack`) without the published tags.
//!
//! `git receive-pack --advertise-refs` lists every ref, and every published
//! revision is a tag `refs/tags/F/vN`: at 100,000 revisions every push
//! would first download 6.7 MB of tags it never uses. A pusher needs the
//! branch, the drafts, the proposals and the deletion proposals (what its
//! pushes update or delete), and the audit notes; a tag only where it may be
//! deleted: when it has a deletion proposal, the approver's
//! `git push origin :refs/tags/F/vN` needs the tag's value from the
//! advertisement (a client sends a deletion's old value from there).
//!
//! So the advertisement runs with `receive.hideRefs=refs/tags` followed by
//! `receive.hideRefs=!refs/tags/F/vN` for each tag with a deletion proposal
//! (later entries win; git strips the trailing `/` and matches whole path
//! components, so `!refs/tags/F/v1` does not reveal `F/v10`). Only the
//! advertisement: the POST that receives the push runs without them, since
//! receive-pack refuses any command on a hidden ref ("deny updating a hidden
//! ref") before cadgate's hook sees it — Porch's approval creates
//! `refs/tags/F/vN` in its push, an approver deletes one. A client that
//! pushes a tag it was not shown sends it as a creation (old value zero),
//! which cadgate's hook judges like any other tag push.
//!
//! The settings reach git as `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/
//! `GIT_CONFIG_VALUE_n`, never on the command line; each tag name comes from
//! the repository's own refs and is checked again here.

use std::path::Path;

use cadgate_hooks::git::{GitError, Repo};
use cadgate_hooks::process::check_user_value;
use cadgate_hooks::refs::{Layout, RefKind, DELETION_PROPOSED, TAGS};

use crate::repositories::Repository;

/// The config key that hides refs from receive-pack's advertisement.
const HIDE: &str = "receive.hideRefs";

/// The `receive.hideRefs` settings for the advertisement, in order, from
/// the repository's deletion proposals and the tags of their packages
/// (`refs`: full ref names; anything else in it is ignored).
pub(super) fn hide_settings(layout: &Layout, refs: &[String]) -> Vec<(String, String)> {
    let proposed: std::collections::BTreeSet<_> = refs
        .iter()
        .filter_map(|name| match layout.classify(name) {
            RefKind::DeletionProposed { package, revision } => Some((package, revision)),
            _ => None,
        })
        .collect();
    let mut settings = vec![(HIDE.to_string(), TAGS.trim_end_matches('/').to_string())];
    for name in refs {
        let RefKind::Published { package, revision } = layout.classify(name) else {
            continue;
        };
        if !proposed.contains(&(package, revision)) {
            continue;
        }
        // A ref name from the repository cannot hold what could mislead git
        // here; checked anyway, as every value from a ref is.
        if check_user_value("a tag name", name).is_err() || name.contains(char::is_whitespace) {
            tracing::warn!(tag = %name.escape_debug(), "a tag with a deletion proposal is left out of the push advertisement: its name is not a plain ref name");
            continue;
        }
        settings.push((HIDE.to_string(), format!("!{name}")));
    }
    settings
}

/// [`hide_settings`] for the repository at `git_dir`: its deletion
/// proposals and the tags of their packages, read from the ref storage
/// (no git process; a prefix read per proposal, so the cost follows the
/// number of deletion proposals, not of tags).
pub(super) fn read_hide_settings(
    git: &Path,
    git_dir: &Path,
    layout: &Layout,
) -> Result<Vec<(String, String)>, GitError> {
    let repo = Repo::with_git(git.to_path_buf(), git_dir)?;
    let mut refs: Vec<String> = repo
        .ref_targets(&[DELETION_PROPOSED])?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let mut packages: Vec<String> = refs
        .iter()
        .filter_map(|name| match layout.classify(name) {
            RefKind::DeletionProposed { package, .. } => Some(format!("{TAGS}{package}/")),
            _ => None,
        })
        .collect();
    packages.sort();
    packages.dedup();
    let prefixes: Vec<&str> = packages.iter().map(String::as_str).collect();
    refs.extend(
        repo.ref_targets(&prefixes)?
            .into_iter()
            .map(|(name, _)| name),
    );
    Ok(hide_settings(layout, &refs))
}

/// The environment that hides published tags from the advertisement of
/// `repo` ([`read_hide_settings`] as `GIT_CONFIG_*` variables). When the
/// refs cannot be read, nothing is hidden: the pusher gets git's whole
/// advertisement, larger but right.
pub(super) async fn hidden_tags_env(git: &Path, repo: &Repository) -> Vec<(String, String)> {
    let git = git.to_path_buf();
    let git_dir = repo.path.clone();
    let layout = Layout::new(&repo.config.branch, &repo.config.directory);
    let read = tokio::task::spawn_blocking(move || read_hide_settings(&git, &git_dir, &layout))
        .await
        .map_err(|e| e.to_string())
        .and_then(|read| read.map_err(|e| e.to_string()));
    match read {
        Ok(settings) => config_env(&settings),
        Err(error) => {
            tracing::warn!(repository = %repo.config.name, %error, "cannot read the deletion proposals; the push advertisement lists every tag");
            Vec::new()
        }
    }
}

/// Config settings as the environment variables git reads them from
/// (`GIT_CONFIG_COUNT`, `GIT_CONFIG_KEY_<n>`, `GIT_CONFIG_VALUE_<n>`).
pub(super) fn config_env(settings: &[(String, String)]) -> Vec<(String, String)> {
    let mut env = vec![("GIT_CONFIG_COUNT".to_string(), settings.len().to_string())];
    for (i, (key, value)) in settings.iter().enumerate() {
        env.push((format!("GIT_CONFIG_KEY_{i}"), key.clone()));
        env.push((format!("GIT_CONFIG_VALUE_{i}"), value.clone()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_tag_is_hidden_but_those_with_a_deletion_proposal() {
        let layout = Layout::new("main", "");
        let settings = hide_settings(
            &layout,
            &names(&[
                "refs/heads/deletionProposed/a/b/v2",
                "refs/heads/deletionProposed/c/main",
                "refs/tags/a/b/v1",
                "refs/tags/a/b/v2",
                "refs/tags/a/b/v20",
                "refs/tags/a/v2",
                "refs/tags/release",
            ]),
        );
        assert_eq!(
            settings,
            [
                (HIDE.to_string(), "refs/tags".to_string()),
                (HIDE.to_string(), "!refs/tags/a/b/v2".to_string()),
            ]
        );
    }

    #[test]
    fn a_proposal_names_its_tag_as_the_hook_reads_it() {
        // The hook pairs `deletionProposed/F/vN` with any tag of F whose
        // revision reads as N (refs::parse_revision): `F/v01`, `F/7`.
        let layout = Layout::new("main", "catalog");
        let settings = hide_settings(
            &layout,
            &names(&[
                "refs/heads/deletionProposed/catalog/x/v1",
                "refs/heads/deletionProposed/catalog/x/v7",
                "refs/heads/deletionProposed/outside/v1",
                "refs/tags/catalog/x/v01",
                "refs/tags/catalog/x/7",
                "refs/tags/outside/v1",
            ]),
        );
        let shown: Vec<&str> = settings.iter().skip(1).map(|(_, v)| v.as_str()).collect();
        assert_eq!(
            shown,
            ["!refs/tags/catalog/x/v01", "!refs/tags/catalog/x/7"]
        );
    }

    #[test]
    fn names_outside_the_layout_stay_hidden() {
        let layout = Layout::new("main", "");
        let settings = hide_settings(
            &layout,
            &names(&[
                "refs/heads/deletionProposed/a b/v1",
                "refs/tags/a b/v1",
                "refs/heads/deletionProposed/-a/v1",
                "refs/tags/-a/v1",
            ]),
        );
        assert_eq!(settings.len(), 1);
    }

    #[test]
    fn settings_become_git_config_variables() {
        let env = config_env(&[
            (HIDE.to_string(), "refs/tags".to_string()),
            (HIDE.to_string(), "!refs/tags/a/v1".to_string()),
        ]);
        assert_eq!(
            env,
            [
                ("GIT_CONFIG_COUNT", "2"),
                ("GIT_CONFIG_KEY_0", HIDE),
                ("GIT_CONFIG_VALUE_0", "refs/tags"),
                ("GIT_CONFIG_KEY_1", HIDE),
                ("GIT_CONFIG_VALUE_1", "!refs/tags/a/v1"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }
}
