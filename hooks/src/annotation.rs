//! Porch's `kpt:` commit annotation, written and read the way Porch does.
//!
//! Porch (`pkg/externalrepo/git/annotation.go`, `gitAnnotation` and
//! `AnnotateCommitMessage`) appends `"\n\nkpt:" + json.Marshal(annotation) + "\n"`
//! to a commit message. Go marshals a struct's fields in declaration order
//! (`package`, `workspaceName`, `revision`, `task`) and leaves out empty ones
//! (`omitempty`); `serde_json` would sort a map's keys, so the annotation is a
//! struct here too, with the same field order.

use serde::{Deserialize, Serialize};

/// One `kpt:` annotation line (Porch's `gitAnnotation`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotation {
    /// The package path (`F`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub package: String,
    /// The workspace of the package revision the commit belongs to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workspace_name: String,
    /// The revision number, as a decimal string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
    /// The task that caused the commit (Porch's `v1alpha1.Task`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
}

/// Porch's `v1alpha1.Task` (`api/porch/v1alpha1/types.go` lines 179–185),
/// the parts cadgate writes, fields in Go's declaration order: `type`,
/// `init`, `clone`, `edit`, `upgrade`. Other task kinds Porch writes are
/// read back as `type` only.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// `init`, `clone`, `edit`, `upgrade`, …
    #[serde(rename = "type", default)]
    pub kind: String,
    /// `PackageInitTaskSpec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitTask>,
    /// `PackageCloneTaskSpec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone: Option<CloneTask>,
    /// `PackageEditTaskSpec` (Porch's copy of a published revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit: Option<EditTask>,
    /// `PackageUpgradeTaskSpec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<UpgradeTask>,
}

/// Porch's `PackageUpgradeTaskSpec` (`api/porch/v1alpha1/types.go` lines
/// 221–243): `oldUpstreamRef`, `newUpstreamRef`, `localPackageRevisionRef`
/// (`PackageRevisionRef` structs: Go's `omitempty` never leaves a struct
/// out, so they are always written) and `strategy` (`omitempty`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeTask {
    /// The upstream revision the local package was at.
    #[serde(rename = "oldUpstreamRef", default)]
    pub old_upstream: RevisionRef,
    /// The upstream revision it moves to.
    #[serde(rename = "newUpstreamRef", default)]
    pub new_upstream: RevisionRef,
    /// The local revision whose changes are kept.
    #[serde(rename = "localPackageRevisionRef", default)]
    pub local: RevisionRef,
    /// `resource-merge`, `fast-forward`, `force-delete-replace`, `copy-merge`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub strategy: String,
}

/// The strategy of cadgate's upgrade: a three-way merge of the old
/// upstream, the new upstream and the local package that keeps local
/// changes, Porch's `resource-merge` (also the default of
/// `porchctl rpkg upgrade --strategy`).
pub const RESOURCE_MERGE: &str = "resource-merge";

/// Porch's `PackageEditTaskSpec`: `sourceRef` (pointer, `omitempty`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditTask {
    /// The revision copied.
    #[serde(rename = "sourceRef", default, skip_serializing_if = "Option::is_none")]
    pub source: Option<RevisionRef>,
}

/// Porch's `PackageRevisionRef`: `name` (no `omitempty`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionRef {
    /// The package revision's object name.
    #[serde(default)]
    pub name: String,
}

/// Porch's `PackageInitTaskSpec`: `subpackage`, `description`, `keywords`,
/// `site`, each `omitempty`; cadgate sets the description.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitTask {
    /// The package's description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// Porch's `PackageCloneTaskSpec`: `upstreamRef` (an `UpstreamPackage`
/// struct, so always written), `strategy` (`omitempty`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneTask {
    /// Where the clone came from.
    #[serde(rename = "upstreamRef", default)]
    pub upstream: UpstreamPackage,
}

/// Porch's `UpstreamPackage` (`api/porch/v1alpha1/types.go` lines
/// 264–276): `type` (`omitempty`), `git` (pointer, `omitempty`), `oci`
/// (never written by cadgate), `upstreamRef` (pointer, `omitempty`: the
/// Porch object of a registered repository's revision).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamPackage {
    /// `git`.
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// The Git upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitPackage>,
    /// The revision of a registered repository, by object name.
    #[serde(
        rename = "upstreamRef",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub upstream_ref: Option<RevisionRef>,
}

/// Porch's `GitPackage`: `repo`, `ref`, `directory` (no `omitempty`), and
/// `secretRef` (a struct, so always written, as `{"name":""}` when unset).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitPackage {
    /// The repository URL.
    #[serde(default)]
    pub repo: String,
    /// The ref (branch, tag or commit).
    #[serde(rename = "ref", default)]
    pub reference: String,
    /// The package directory in it.
    #[serde(default)]
    pub directory: String,
    /// Porch's secret reference; cadgate never sets one.
    #[serde(rename = "secretRef", default)]
    pub secret_ref: SecretRef,
}

/// Porch's `SecretRef`: `name` (no `omitempty`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    /// The secret's name.
    #[serde(default)]
    pub name: String,
}

impl Task {
    /// Porch's init task for a package described by `description`.
    pub fn init(description: &str) -> Self {
        Task {
            kind: "init".into(),
            init: Some(InitTask {
                description: description.into(),
            }),
            ..Task::default()
        }
    }

    /// Porch's clone task for a Git upstream.
    pub fn clone_git(repo: &str, reference: &str, directory: &str) -> Self {
        Task {
            kind: "clone".into(),
            init: None,
            clone: Some(CloneTask {
                upstream: UpstreamPackage {
                    kind: "git".into(),
                    git: Some(GitPackage {
                        repo: repo.into(),
                        reference: reference.into(),
                        directory: directory.into(),
                        secret_ref: SecretRef::default(),
                    }),
                    upstream_ref: None,
                },
            }),
            ..Task::default()
        }
    }

    /// Porch's clone task from a revision of a registered repository, named
    /// by its object name: what `porchctl rpkg clone <name>`
    /// (`pkg/cli/commands/rpkg/clone/command.go` lines 156–159) and the
    /// PackageVariant controller (`packagevariant_controller.go` lines
    /// 367–378) ask for — `upstreamRef.upstreamRef.name` only, no `type` —
    /// and what Porch records unchanged (`pkg/task/clone.go` returns the
    /// task as given). Porch's deletion guard matches exactly this
    /// (`pkg/cache/crcache/cache.go` `FindAllUpstreamReferencesInRepositories`,
    /// line 148).
    pub fn clone_registered(source: &str) -> Self {
        Task {
            kind: "clone".into(),
            clone: Some(CloneTask {
                upstream: UpstreamPackage {
                    upstream_ref: Some(RevisionRef {
                        name: source.into(),
                    }),
                    ..UpstreamPackage::default()
                },
            }),
            ..Task::default()
        }
    }

    /// Porch's upgrade task (`porchctl rpkg upgrade`,
    /// `pkg/cli/commands/rpkg/upgrade/command.go` lines 217–231): from
    /// upstream revision `old` to `new`, keeping the changes of local
    /// revision `local`, all by object name, with cadgate's strategy
    /// [`RESOURCE_MERGE`].
    pub fn upgrade(old: &str, new: &str, local: &str) -> Self {
        let named = |name: &str| RevisionRef { name: name.into() };
        Task {
            kind: "upgrade".into(),
            upgrade: Some(UpgradeTask {
                old_upstream: named(old),
                new_upstream: named(new),
                local: named(local),
                strategy: RESOURCE_MERGE.into(),
            }),
            ..Task::default()
        }
    }

    /// Porch's edit task: a new workspace copied from the revision whose
    /// object name is `source`.
    pub fn edit(source: &str) -> Self {
        Task {
            kind: "edit".into(),
            edit: Some(EditTask {
                source: Some(RevisionRef {
                    name: source.into(),
                }),
            }),
            ..Task::default()
        }
    }
}

/// The annotation Porch writes on a draft's first commit
/// (`pkg/externalrepo/git/git.go` `UpdateDraftResources`: the draft's
/// package path, workspace, `Revision2Str(0)` = `"0"`, and the task).
pub fn draft_task(package: &str, workspace: &str, task: Task) -> Annotation {
    Annotation {
        package: package.into(),
        workspace_name: workspace.into(),
        revision: "0".into(),
        task: Some(task),
    }
}

impl Annotation {
    /// The `kpt:{…}` line, without a line end.
    pub fn line(&self) -> String {
        // Serialising a struct of strings and a JSON value cannot fail.
        let json = serde_json::to_string(self).unwrap_or_default();
        format!("kpt:{}", escape_html(&json))
    }

    /// Every annotation in `message`: lines that start with `kpt:` after
    /// trimming, whose rest is valid JSON (Porch's `ExtractGitAnnotations`;
    /// it reports invalid ones as errors, cadgate skips them).
    pub fn all_in(message: &str) -> Vec<Annotation> {
        message
            .lines()
            .filter_map(|l| l.trim().strip_prefix("kpt:"))
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect()
    }
}

/// Go's `json.Marshal` escapes `<`, `>` and `&` (and U+2028, U+2029) inside
/// strings; those characters can only appear inside JSON strings, so escaping
/// them in the whole text is the same.
fn escape_html(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Porch `pkg/externalrepo/git/annotation.go` (gitAnnotation, lines
    /// 31–46): fields in the order package, workspaceName, revision, task,
    /// each `omitempty`.
    #[test]
    fn keys_in_porch_struct_order_and_empty_ones_left_out() {
        let a = Annotation {
            package: "pkgs/web".into(),
            workspace_name: "ws1".into(),
            revision: "3".into(),
            task: None,
        };
        assert_eq!(
            a.line(),
            r#"kpt:{"package":"pkgs/web","workspaceName":"ws1","revision":"3"}"#
        );
        let b = Annotation {
            package: "web".into(),
            revision: "2".into(),
            ..Annotation::default()
        };
        assert_eq!(b.line(), r#"kpt:{"package":"web","revision":"2"}"#);
    }

    /// Porch `api/porch/v1alpha1/types.go` (`Task`, `PackageInitTaskSpec`,
    /// `PackageCloneTaskSpec`, `UpstreamPackage`, `GitPackage`) and
    /// `pkg/externalrepo/git/git.go` `UpdateDraftResources`.
    #[test]
    fn task_lines_as_porch_marshals_them() {
        assert_eq!(
            draft_task("a/b", "ws", Task::init("hello")).line(),
            r#"kpt:{"package":"a/b","workspaceName":"ws","revision":"0","task":{"type":"init","init":{"description":"hello"}}}"#
        );
        assert_eq!(
            draft_task("a/b", "ws", Task::init("")).line(),
            r#"kpt:{"package":"a/b","workspaceName":"ws","revision":"0","task":{"type":"init","init":{}}}"#
        );
        let clone = draft_task(
            "web",
            "ws",
            Task::clone_git("https://h/up.git", "base/v1", "base"),
        );
        assert_eq!(
            clone.line(),
            r#"kpt:{"package":"web","workspaceName":"ws","revision":"0","task":{"type":"clone","clone":{"upstreamRef":{"type":"git","git":{"repo":"https://h/up.git","ref":"base/v1","directory":"base","secretRef":{"name":""}}}}}}"#
        );
        assert_eq!(Annotation::all_in(&clone.line()), vec![clone]);
        assert_eq!(
            draft_task("web", "two", Task::edit("root.web.one")).line(),
            r#"kpt:{"package":"web","workspaceName":"two","revision":"0","task":{"type":"edit","edit":{"sourceRef":{"name":"root.web.one"}}}}"#
        );
    }

    /// Porch's clone of a registered revision (`UpstreamPackage.upstreamRef`,
    /// types.go lines 264–276, as `porchctl rpkg clone` and PackageVariant
    /// send it) and its upgrade task (`PackageUpgradeTaskSpec`, lines
    /// 221–243: the three refs always written, `strategy` after them).
    #[test]
    fn registered_clone_and_upgrade_lines_as_porch_marshals_them() {
        let clone = draft_task("web", "ws", Task::clone_registered("blueprints.base.v1"));
        assert_eq!(
            clone.line(),
            r#"kpt:{"package":"web","workspaceName":"ws","revision":"0","task":{"type":"clone","clone":{"upstreamRef":{"upstreamRef":{"name":"blueprints.base.v1"}}}}}"#
        );
        assert_eq!(Annotation::all_in(&clone.line()), vec![clone.clone()]);
        let upgrade = draft_task(
            "web",
            "up",
            Task::upgrade("blueprints.base.v1", "blueprints.base.two", "root.web.ws"),
        );
        assert_eq!(
            upgrade.line(),
            r#"kpt:{"package":"web","workspaceName":"up","revision":"0","task":{"type":"upgrade","upgrade":{"oldUpstreamRef":{"name":"blueprints.base.v1"},"newUpstreamRef":{"name":"blueprints.base.two"},"localPackageRevisionRef":{"name":"root.web.ws"},"strategy":"resource-merge"}}}"#
        );
        assert_eq!(Annotation::all_in(&upgrade.line()), vec![upgrade.clone()]);
    }

    /// Go's encoding/json escapes HTML characters by default.
    #[test]
    fn html_characters_escaped_like_go() {
        let a = Annotation {
            package: "a&b<c>".into(),
            ..Annotation::default()
        };
        assert_eq!(a.line(), r#"kpt:{"package":"a\u0026b\u003cc\u003e"}"#);
        assert_eq!(Annotation::all_in(&a.line())[0], a);
    }

    /// Porch annotation.go ExtractGitAnnotations (lines 51–68): every line,
    /// trimmed, starting with `kpt:`.
    #[test]
    fn reads_every_trimmed_kpt_line() {
        let msg = "title\n\n  kpt:{\"package\":\"a\",\"workspaceName\":\"w\"}\nkpt:not json\nkpt:{\"revision\":\"1\"}\n";
        let all = Annotation::all_in(msg);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].workspace_name, "w");
        assert_eq!(all[1].revision, "1");
    }
}
