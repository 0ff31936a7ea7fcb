//! Reading each other's repositories (issue 13, M1 and M4): what cadgate
//! writes into commits and tags is read by Porch the way cadgate reads it,
//! each test naming the Porch source it follows.

use cadgate_integration::api;
use cadgate_integration::scenarios::{CadgateServer, Lab, ROOT};
use cadgate_integration::TestUser;

/// M1 — Porch `pkg/externalrepo/git/annotation.go`: `gitAnnotation` (lines
/// 31–46) declares `package`, `workspaceName`, `revision`, `task`, and
/// `AnnotateCommitMessage` (lines 71–80) appends `"\n\nkpt:" +
/// json.Marshal(annotation) + "\n"`; Go marshals struct fields in
/// declaration order. The approval commit carries exactly that line.
#[test]
fn the_approval_commit_message_carries_porchs_annotation_byte_for_byte() {
    let transport = CadgateServer::start("");
    let lab = Lab::new(&transport, ROOT, "anno");
    let f = lab.f();
    let revision = lab.release(&f, "ws-one", "first");
    assert_eq!(revision, 1);
    let raw = lab.server_git(&["cat-file", "commit", &format!("refs/tags/{f}/v1")]);
    let message = &raw[raw.find("\n\n").expect("a commit message") + 2..];
    assert_eq!(
        message,
        format!(
            "Approving package revision {f}/1\n\n\
             kpt:{{\"package\":\"{f}\",\"workspaceName\":\"ws-one\",\"revision\":\"1\"}}\n\n\
             Proposed-by: alice\nApproved-by: bob"
        )
    );
}

/// M4 — Porch `pkg/repository/util.go` `Revision2Int` (trim one `v`, then
/// `strconv.Atoi`) reads the tag `F/7` as revision 7 and `F/v01` as 1. A tag
/// made by hand with that form counts for cadgate too: the next revision is
/// 8, never a second 7, and the listing shows revision 7.
#[test]
fn a_hand_made_numeric_tag_counts_when_numbering_and_listing() {
    let transport = CadgateServer::start("");
    let lab = Lab::new(&transport, ROOT, "numbers");
    let f = lab.f();
    assert_eq!(lab.release(&f, "ws-one", "first"), 1);
    let v1 = lab
        .server_ref(&format!("refs/tags/{f}/v1"))
        .expect("v1 published");
    // What Porch would read as revision 7 and revision 1.
    lab.server_git(&["update-ref", &format!("refs/tags/{f}/7"), &v1]);
    lab.server_git(&["update-ref", &format!("refs/tags/{f}/v01"), &v1]);
    // And what it reads as no revision (−1).
    lab.server_git(&["update-ref", &format!("refs/tags/{f}/V9"), &v1]);

    let items = api::revisions(
        &transport.server,
        &TestUser::new("rita"),
        ROOT.repository,
        &format!("package={f}"),
    );
    let mut published: Vec<u64> = items
        .iter()
        .filter(|r| r["lifecycle"] == "Published")
        .filter_map(|r| r["revision"].as_u64())
        .collect();
    published.sort();
    assert_eq!(published, vec![1, 1, 7], "{items:#?}");

    assert_eq!(lab.release(&f, "ws-two", "second"), 8);
    assert!(lab.server_ref(&format!("refs/tags/{f}/v8")).is_some());
    assert!(lab.server_ref(&format!("refs/tags/{f}/v7")).is_none());
    let raw = lab.server_git(&["cat-file", "commit", &format!("refs/tags/{f}/v8")]);
    assert!(
        raw.contains("\"revision\":\"8\""),
        "the approval names revision 8: {raw}"
    );
}
