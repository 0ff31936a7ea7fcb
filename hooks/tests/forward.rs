//! Forward mode's push to the upstream is a compare-and-swap on every ref:
//! a stale expectation refuses the whole push and changes nothing there.

mod common;
use common::git;

use cadgate_hooks::forward::{ForwardError, Upstream};
use cadgate_hooks::git::{RefEdit, Repo};

#[test]
fn a_stale_expectation_refuses_the_whole_push() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("w");
    std::fs::create_dir(&work).expect("mkdir");
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["commit", "-q", "--allow-empty", "-m", "a"]);
    let a = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["commit", "-q", "--allow-empty", "-m", "b"]);
    let b = git(&work, &["rev-parse", "HEAD"]);
    let upstream_dir = dir.path().join("up.git");
    git(
        dir.path(),
        &[
            "clone",
            "-q",
            "--bare",
            &work.display().to_string(),
            &upstream_dir.display().to_string(),
        ],
    );
    let mirror_dir = dir.path().join("mirror.git");
    git(
        dir.path(),
        &[
            "clone",
            "-q",
            "--mirror",
            &upstream_dir.display().to_string(),
            &mirror_dir.display().to_string(),
        ],
    );
    let mirror = Repo::open(&mirror_dir).expect("mirror");
    let upstream = Upstream::new(&format!("file://{}", upstream_dir.display()), None);

    // main is at b upstream; expecting a (stale) must fail, even though the
    // move itself would be a plain non-fast-forward, and the tag with it.
    let stale = [
        RefEdit::Update {
            name: "refs/heads/main".into(),
            new: a.clone(),
            old: a.clone(),
        },
        RefEdit::Create {
            name: "refs/tags/p/v1".into(),
            new: a.clone(),
        },
    ];
    assert!(matches!(
        upstream.push(&mirror, &stale),
        Err(ForwardError::Moved(_))
    ));
    assert_eq!(git(&upstream_dir, &["rev-parse", "main"]), b);
    assert_eq!(git(&upstream_dir, &["tag", "--list"]), "");

    // With the right expectation the same (non-fast-forward) move lands.
    let fresh = [
        RefEdit::Update {
            name: "refs/heads/main".into(),
            new: a.clone(),
            old: b.clone(),
        },
        RefEdit::Create {
            name: "refs/tags/p/v1".into(),
            new: a.clone(),
        },
    ];
    upstream.push(&mirror, &fresh).expect("push");
    assert_eq!(git(&upstream_dir, &["rev-parse", "main"]), a);
    // Creating what exists is refused too.
    let again = [RefEdit::Create {
        name: "refs/tags/p/v1".into(),
        new: b.clone(),
    }];
    assert!(matches!(
        upstream.push(&mirror, &again),
        Err(ForwardError::Moved(_))
    ));
    // An upstream that is not there is unreachable, not moved.
    let gone = Upstream::new("file:///nonexistent/cadgate.git", None);
    assert!(matches!(
        gone.push(&mirror, &fresh),
        Err(ForwardError::Unreachable { .. })
    ));
}
