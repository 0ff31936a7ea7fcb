//! Where a push is judged: which lifecycle transition a ref update is
//! (contract §6), and who may make it.
//!
//! [`classify`] maps one ref update onto a [`Transition`] using only ref
//! names and ref values; anything that is not a transition is a [`Refusal`]
//! that names the rule and the command that would work. Checks on content
//! (the Kptfile, what a draft touches, staleness) come after classification.

use cadgate_config::Role;

use crate::proc_receive::Command;
use crate::refs::{Layout, PackagePath, RefKind};

/// A lifecycle transition, as a push asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Create or update `drafts/F/ws`.
    SaveDraft {
        /// The package.
        package: PackagePath,
        /// The workspace.
        workspace: String,
    },
    /// Delete `drafts/F/ws`.
    DeleteDraft {
        /// The package.
        package: PackagePath,
        /// The workspace.
        workspace: String,
    },
    /// `drafts/F/ws` → `proposed/F/ws`.
    Propose {
        /// The package.
        package: PackagePath,
        /// The workspace.
        workspace: String,
    },
    /// Delete `proposed/F/ws`.
    DeleteProposal {
        /// The package.
        package: PackagePath,
        /// The workspace.
        workspace: String,
    },
    /// `proposed/F/ws` → `drafts/F/ws`.
    RejectProposal {
        /// The package.
        package: PackagePath,
        /// The workspace.
        workspace: String,
    },
    /// `proposed/F/ws` → `B`: approval commit, `F/vN`.
    Publish {
        /// The package.
        package: PackagePath,
        /// The workspace.
        workspace: String,
    },
    /// Create `deletionProposed/F/vN` at the tag's commit.
    ProposeDeletion {
        /// The package.
        package: PackagePath,
        /// The revision.
        revision: u64,
    },
    /// Delete `deletionProposed/F/vN`.
    RejectDeletion {
        /// The package.
        package: PackagePath,
        /// The revision.
        revision: u64,
    },
    /// Delete `F/vN` (and its deletion proposal).
    ApproveDeletion {
        /// The package.
        package: PackagePath,
        /// The revision.
        revision: u64,
    },
    /// Create `deletionProposed/F/B`: propose removing `F` from the branch
    /// (Porch's placeholder revision becomes DeletionProposed).
    ProposePackageDeletion {
        /// The package.
        package: PackagePath,
    },
    /// Delete `deletionProposed/F/B`.
    RejectPackageDeletion {
        /// The package.
        package: PackagePath,
    },
    /// A `Delete F` commit on the branch (Porch's deletion of its
    /// placeholder revision): `F` leaves the branch, its proposal goes.
    DeletePackage {
        /// The package.
        package: PackagePath,
    },
}

impl Transition {
    /// The least role that may make this transition (contract §4).
    pub fn required_role(&self) -> Role {
        match self {
            Transition::SaveDraft { .. }
            | Transition::DeleteDraft { .. }
            | Transition::Propose { .. }
            | Transition::DeleteProposal { .. }
            | Transition::ProposeDeletion { .. }
            | Transition::ProposePackageDeletion { .. } => Role::Author,
            Transition::RejectProposal { .. }
            | Transition::Publish { .. }
            | Transition::RejectDeletion { .. }
            | Transition::ApproveDeletion { .. }
            | Transition::RejectPackageDeletion { .. }
            | Transition::DeletePackage { .. } => Role::Approver,
        }
    }

    /// A short name for messages (`publish`, `propose deletion`, …).
    pub fn verb(&self) -> &'static str {
        match self {
            Transition::SaveDraft { .. } => "saving a draft",
            Transition::DeleteDraft { .. } => "deleting a draft",
            Transition::Propose { .. } => "proposing",
            Transition::DeleteProposal { .. } => "deleting a proposal",
            Transition::RejectProposal { .. } => "rejecting a proposal",
            Transition::Publish { .. } => "publishing",
            Transition::ProposeDeletion { .. } => "proposing a deletion",
            Transition::RejectDeletion { .. } => "rejecting a deletion",
            Transition::ApproveDeletion { .. } => "approving a deletion",
            Transition::ProposePackageDeletion { .. } => {
                "proposing to delete a package from the branch"
            }
            Transition::RejectPackageDeletion { .. } => {
                "rejecting the deletion of a package from the branch"
            }
            Transition::DeletePackage { .. } => "deleting a package from the branch",
        }
    }
}

/// Why a ref update is refused: the rule, and what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A stable rule name (`direct-push-to-branch`, `tag-is-made-by-publishing`, …).
    pub rule: &'static str,
    /// One line for the person who pushed, naming the command that would work.
    pub message: String,
}

impl Refusal {
    fn new(rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            rule,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} [{}]", self.message, self.rule)
    }
}

/// Read access to the refs as they are before the push.
pub trait Refs {
    /// The object a full ref name points at.
    fn get(&self, name: &str) -> Option<String>;
    /// Every proposal whose tip is `oid`, as (package, workspace).
    fn proposals_at(&self, oid: &str) -> Vec<(PackagePath, String)>;
}

/// Classify one ref update.
pub fn classify(
    layout: &Layout,
    command: &Command,
    refs: &dyn Refs,
) -> Result<Transition, Refusal> {
    let name = command.refname.as_str();
    match layout.classify(name) {
        RefKind::Draft { package, workspace } => {
            if command.is_delete() {
                return Ok(Transition::DeleteDraft { package, workspace });
            }
            let proposed = layout.proposed_ref(&package, &workspace);
            match refs.get(&proposed) {
                Some(tip) if tip == command.new && command.is_create() => {
                    Ok(Transition::RejectProposal { package, workspace })
                }
                Some(_) => Err(Refusal::new(
                    "workspace-is-proposed",
                    format!("{package} workspace {workspace} is proposed; reject it first (git push origin {proposed}:{name}) or delete the proposal (git push origin :{proposed})"),
                )),
                None => Ok(Transition::SaveDraft { package, workspace }),
            }
        }
        RefKind::Proposed { package, workspace } => {
            if command.is_delete() {
                return Ok(Transition::DeleteProposal { package, workspace });
            }
            let draft = layout.draft_ref(&package, &workspace);
            if !command.is_create() {
                return Err(Refusal::new(
                    "proposal-is-immutable",
                    format!("a proposal cannot change; reject it (git push origin {name}:{draft}), update the draft, and propose again"),
                ));
            }
            match refs.get(&draft) {
                Some(tip) if tip == command.new => Ok(Transition::Propose { package, workspace }),
                Some(_) => Err(Refusal::new(
                    "propose-the-draft-tip",
                    format!("only the current draft can be proposed; fetch and push it: git push origin {draft}:{name}"),
                )),
                None => Err(Refusal::new(
                    "propose-needs-a-draft",
                    format!("there is no draft {draft} to propose; push one first: git push origin HEAD:{draft}"),
                )),
            }
        }
        RefKind::Branch => {
            if command.is_delete() {
                return Err(Refusal::new(
                    "branch-is-registered",
                    format!("{name} is the registered branch and cannot be deleted"),
                ));
            }
            let mut proposals = refs.proposals_at(&command.new);
            match proposals.len() {
                1 => {
                    let (package, workspace) = proposals.remove(0);
                    Ok(Transition::Publish { package, workspace })
                }
                0 => Err(Refusal::new(
                    "direct-push-to-branch",
                    format!("{name} only changes by publishing a proposal: git push origin HEAD:refs/heads/drafts/<package>/<workspace>, propose it, then an approver publishes with git push origin +proposed/<package>/<workspace>:{name}"),
                )),
                _ => Err(Refusal::new(
                    "ambiguous-proposal",
                    format!("this commit is the tip of several proposals ({}); publish a proposal whose tip is unique", proposals.iter().map(|(p, w)| format!("{p}/{w}")).collect::<Vec<_>>().join(", ")),
                )),
            }
        }
        RefKind::Published { package, revision } => {
            if !command.is_delete() {
                return Err(Refusal::new(
                    "tag-is-made-by-publishing",
                    format!("{name} is a published revision; tags are created only by publishing and never moved"),
                ));
            }
            let marker = layout.deletion_proposed_ref(&package, revision);
            if refs.get(&marker).is_some() {
                Ok(Transition::ApproveDeletion { package, revision })
            } else {
                Err(Refusal::new(
                    "deletion-needs-a-proposal",
                    format!("propose the deletion first: git push origin {name}:{marker}"),
                ))
            }
        }
        RefKind::DeletionProposed { package, revision } => {
            if command.is_delete() {
                return Ok(Transition::RejectDeletion { package, revision });
            }
            // Porch reads only `deletionProposed/F/vN` as the proposal
            // (`pkg/externalrepo/git/ref.go` 129–135), and so does the
            // listing: another spelling would mark nothing.
            let marker = layout.deletion_proposed_ref(&package, revision);
            if name != marker {
                return Err(Refusal::new(
                    "deletion-proposal-name",
                    format!("the deletion proposal of {package} v{revision} is named {marker}: git push origin {}:{marker}", layout.tag_ref(&package, revision)),
                ));
            }
            let tag = layout.tag_ref(&package, revision);
            match refs.get(&tag) {
                Some(tip) if tip == command.new && command.is_create() => {
                    Ok(Transition::ProposeDeletion { package, revision })
                }
                Some(_) => Err(Refusal::new(
                    "deletion-proposal-at-the-tag",
                    format!("a deletion proposal points at the published commit: git push origin {tag}:{name}"),
                )),
                None => Err(Refusal::new(
                    "no-such-revision",
                    format!("{package} has no published revision v{revision} ({tag} does not exist)"),
                )),
            }
        }
        RefKind::PlaceholderDeletionProposed { package } => {
            if command.is_delete() {
                Ok(Transition::RejectPackageDeletion { package })
            } else if command.is_create() {
                Ok(Transition::ProposePackageDeletion { package })
            } else {
                Err(Refusal::new(
                    "deletion-proposal-at-the-branch",
                    format!("{name} proposes removing {package} from {}; it is not moved: delete it (git push origin :{name}) and propose again", layout.branch()),
                ))
            }
        }
        RefKind::Notes => Err(Refusal::new(
            "audit-is-server-owned",
            format!("{name} holds cadgate's audit trail and is written only by the server"),
        )),
        RefKind::Foreign
            if [
                crate::refs::DRAFTS,
                crate::refs::PROPOSED,
                crate::refs::DELETION_PROPOSED,
            ]
            .iter()
            .any(|ns| name.starts_with(ns)) =>
        {
            Err(Refusal::new(
                "unknown-namespace",
                format!("{name} does not name a package and workspace: a package path is `/`-separated segments below `{}` and a workspace is the last segment; new package path segments and workspaces are each {} (no segment starts with `-` or `.`)", if layout.directory().is_empty() { "/" } else { layout.directory() }, cadgate_config::names::DNS_LABEL_RULE),
            ))
        }
        RefKind::Foreign => Err(Refusal::new(
            "unknown-namespace",
            format!("{name} is outside the package layout; push drafts to refs/heads/drafts/<package>/<workspace> (package paths below `{}`, workspaces are lowercase RFC 1123 labels)", if layout.directory().is_empty() { "/" } else { layout.directory() }),
        )),
    }
}

/// Check that `role` may make `transition`.
pub fn authorize(transition: &Transition, user: &str, role: Role) -> Result<(), Refusal> {
    let needed = transition.required_role();
    if role >= needed {
        Ok(())
    } else {
        Err(Refusal::new(
            "role",
            format!(
                "{} needs role '{needed}'; user '{user}' has '{role}'",
                transition.verb()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::proc_receive::ZERO_OID;

    struct FakeRefs(HashMap<String, String>);

    impl Refs for FakeRefs {
        fn get(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
        fn proposals_at(&self, oid: &str) -> Vec<(PackagePath, String)> {
            let layout = Layout::new("main", "");
            self.0
                .iter()
                .filter(|(_, v)| *v == oid)
                .filter_map(|(k, _)| match layout.classify(k) {
                    RefKind::Proposed { package, workspace } => Some((package, workspace)),
                    _ => None,
                })
                .collect()
        }
    }

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccc";

    fn refs(pairs: &[(&str, &str)]) -> FakeRefs {
        FakeRefs(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn cmd(old: &str, new: &str, refname: &str) -> Command {
        Command {
            old: old.into(),
            new: new.into(),
            refname: refname.into(),
        }
    }

    fn rule(r: Result<Transition, Refusal>) -> &'static str {
        r.expect_err("refused").rule
    }

    #[test]
    fn the_transitions_of_contract_section_6() {
        let l = Layout::new("main", "");
        let state = refs(&[
            ("refs/heads/main", C),
            ("refs/heads/drafts/pkg/ws", A),
            ("refs/heads/proposed/other/ws", B),
            ("refs/tags/pkg/v1", C),
            ("refs/tags/old/v3", C),
            ("refs/heads/deletionProposed/old/v3", C),
        ]);
        let classify = |c: Command| classify(&l, &c, &state);
        assert!(matches!(
            classify(cmd(ZERO_OID, B, "refs/heads/drafts/new/ws")),
            Ok(Transition::SaveDraft { .. })
        ));
        assert!(matches!(
            classify(cmd(A, B, "refs/heads/drafts/pkg/ws")),
            Ok(Transition::SaveDraft { .. })
        ));
        assert!(matches!(
            classify(cmd(A, ZERO_OID, "refs/heads/drafts/pkg/ws")),
            Ok(Transition::DeleteDraft { .. })
        ));
        assert!(matches!(
            classify(cmd(ZERO_OID, A, "refs/heads/proposed/pkg/ws")),
            Ok(Transition::Propose { .. })
        ));
        assert!(matches!(
            classify(cmd(ZERO_OID, B, "refs/heads/drafts/other/ws")),
            Ok(Transition::RejectProposal { .. })
        ));
        assert!(matches!(
            classify(cmd(C, B, "refs/heads/main")),
            Ok(Transition::Publish { .. })
        ));
        assert!(matches!(
            classify(cmd(B, ZERO_OID, "refs/heads/proposed/other/ws")),
            Ok(Transition::DeleteProposal { .. })
        ));
        assert!(matches!(
            classify(cmd(ZERO_OID, C, "refs/heads/deletionProposed/pkg/v1")),
            Ok(Transition::ProposeDeletion { .. })
        ));
        assert!(matches!(
            classify(cmd(C, ZERO_OID, "refs/heads/deletionProposed/old/v3")),
            Ok(Transition::RejectDeletion { .. })
        ));
        assert!(matches!(
            classify(cmd(C, ZERO_OID, "refs/tags/old/v3")),
            Ok(Transition::ApproveDeletion { .. })
        ));
        // Porch's placeholder (porch ref.go 129–135): propose and reject
        // removing a package from the branch.
        assert!(matches!(
            classify(cmd(ZERO_OID, C, "refs/heads/deletionProposed/pkg/main")),
            Ok(Transition::ProposePackageDeletion { .. })
        ));
        assert!(matches!(
            classify(cmd(C, ZERO_OID, "refs/heads/deletionProposed/pkg/main")),
            Ok(Transition::RejectPackageDeletion { .. })
        ));
        assert_eq!(
            rule(classify(cmd(C, A, "refs/heads/deletionProposed/pkg/main"))),
            "deletion-proposal-at-the-branch"
        );
        let propose = Transition::ProposePackageDeletion {
            package: Layout::new("main", "").package("pkg").expect("a package"),
        };
        assert_eq!(propose.required_role(), Role::Author);
        let delete = Transition::DeletePackage {
            package: Layout::new("main", "").package("pkg").expect("a package"),
        };
        assert_eq!(delete.required_role(), Role::Approver);
    }

    #[test]
    fn everything_else_is_refused_with_its_rule() {
        let l = Layout::new("main", "");
        let state = refs(&[
            ("refs/heads/main", C),
            ("refs/heads/drafts/pkg/ws", A),
            ("refs/heads/proposed/other/ws", B),
            ("refs/tags/pkg/v1", C),
        ]);
        let classify = |c: Command| classify(&l, &c, &state);
        // Porch's spelling of a deletion proposal only (ref.go 129–135).
        for other in ["1", "v01", "v+1"] {
            assert_eq!(
                rule(classify(cmd(
                    ZERO_OID,
                    C,
                    &format!("refs/heads/deletionProposed/pkg/{other}")
                ))),
                "deletion-proposal-name"
            );
        }
        assert_eq!(
            rule(classify(cmd(C, A, "refs/heads/main"))),
            "direct-push-to-branch"
        );
        assert_eq!(
            rule(classify(cmd(C, ZERO_OID, "refs/heads/main"))),
            "branch-is-registered"
        );
        assert_eq!(
            rule(classify(cmd(ZERO_OID, C, "refs/tags/pkg/v2"))),
            "tag-is-made-by-publishing"
        );
        assert_eq!(
            rule(classify(cmd(C, A, "refs/tags/pkg/v1"))),
            "tag-is-made-by-publishing"
        );
        assert_eq!(
            rule(classify(cmd(C, ZERO_OID, "refs/tags/pkg/v1"))),
            "deletion-needs-a-proposal"
        );
        assert_eq!(
            rule(classify(cmd(ZERO_OID, C, "refs/heads/proposed/pkg/ws"))),
            "propose-the-draft-tip"
        );
        assert_eq!(
            rule(classify(cmd(ZERO_OID, C, "refs/heads/proposed/none/ws"))),
            "propose-needs-a-draft"
        );
        assert_eq!(
            rule(classify(cmd(B, A, "refs/heads/proposed/other/ws"))),
            "proposal-is-immutable"
        );
        assert_eq!(
            rule(classify(cmd(ZERO_OID, A, "refs/heads/drafts/other/ws"))),
            "workspace-is-proposed"
        );
        assert_eq!(
            rule(classify(cmd(
                ZERO_OID,
                A,
                "refs/heads/deletionProposed/pkg/v1"
            ))),
            "deletion-proposal-at-the-tag"
        );
        assert_eq!(
            rule(classify(cmd(
                ZERO_OID,
                A,
                "refs/heads/deletionProposed/pkg/v9"
            ))),
            "no-such-revision"
        );
        assert_eq!(
            rule(classify(cmd(ZERO_OID, A, "refs/notes/cadgate"))),
            "audit-is-server-owned"
        );
        for foreign in [
            "refs/heads/feature",
            "refs/tags/v1.2.3",
            "refs/heads/drafts/../x/ws",
            "refs/heads/drafts/pkg/-upper",
        ] {
            assert_eq!(
                rule(classify(cmd(ZERO_OID, A, foreign))),
                "unknown-namespace",
                "{foreign}"
            );
        }
        // A workspace that may exist already is read; the judge refuses it
        // as a new one (`workspace-name`).
        assert!(matches!(
            classify(cmd(ZERO_OID, A, "refs/heads/drafts/pkg/UPPER")),
            Ok(Transition::SaveDraft { workspace, .. }) if workspace == "UPPER"
        ));
    }

    #[test]
    fn the_role_matrix() {
        let p = Layout::new("main", "").package("pkg").expect("package");
        let save = Transition::SaveDraft {
            package: p.clone(),
            workspace: "ws".into(),
        };
        let publish = Transition::Publish {
            package: p.clone(),
            workspace: "ws".into(),
        };
        let approve = Transition::ApproveDeletion {
            package: p,
            revision: 1,
        };
        assert!(authorize(&save, "r", Role::Reader).is_err());
        assert!(authorize(&save, "a", Role::Author).is_ok());
        assert!(authorize(&publish, "a", Role::Author).is_err());
        assert!(authorize(&publish, "p", Role::Approver).is_ok());
        assert!(authorize(&approve, "p", Role::Approver).is_ok());
        assert!(authorize(&approve, "root", Role::Admin).is_ok());
        let refusal =
            authorize(&publish, "alice", Role::Author).expect_err("author cannot publish");
        assert!(refusal
            .message
            .contains("publishing needs role 'approver'; user 'alice' has 'author'"));
    }
}
