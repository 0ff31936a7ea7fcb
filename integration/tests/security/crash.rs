//! Finding 3 (a crash leaves a publish half-done and the server down) and
//! finding 11 (lost events across a power cut).

use cadgate_integration::crash::{wait_killed, Rig, PACKAGE};
use cadgate_integration::*;

/// Stale `HEAD.lock`, `packed-refs.lock`, branch and notes locks (what a git
/// killed mid-transaction leaves) at start: the server starts, and the
/// next publish works. Before: "cannot lock ref 'HEAD'", no server.
#[test]
fn stale_ref_locks_at_start_neither_stop_the_server_nor_later_publishes() {
    let rig = Rig::new();
    let server = rig.start(&[]);
    let first = rig.propose(&server, "w0", "round: 0\n");
    rig.publish_ok(&server, &first, 1);
    let second = rig.propose(&server, "w1", "round: 1\n");
    drop(server);
    let (repo, view) = (rig.repo(), rig.view());
    let main = server_ref(&repo, "refs/heads/main").expect("main");
    for (dir, lock) in [
        (&repo, "HEAD.lock"),
        (&repo, "packed-refs.lock"),
        (&repo, "refs/heads/main.lock"),
        (&repo, "refs/notes/cadgate.lock"),
        (&repo, &format!("refs/heads/proposed/{PACKAGE}/w1.lock")),
        (&view, "HEAD.lock"),
        (&view, "refs/heads/main.lock"),
    ] {
        let path = dir.join(lock);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, format!("{main}\n")).expect("write lock");
    }
    let server = rig.start(&[]);
    assert!(
        server.stderr().contains("removed the stale lock"),
        "{}",
        server.stderr()
    );
    rig.publish_ok(&server, &second, 2);
    rig.assert_whole(&["round: 0".to_string(), "round: 1".to_string()].into());
}

/// A stale `refs/heads/main.lock` alone, with the server running: the
/// hook clears it before judging, so the publish lands. Before: refused
/// with the misleading "refs changed while this push was judged".
#[test]
fn a_stale_branch_lock_alone_does_not_block_publishing() {
    let rig = Rig::new();
    let server = rig.start(&[]);
    let tip = rig.propose(&server, "w0", "round: 0\n");
    let main = server_ref(&rig.repo(), "refs/heads/main").expect("main");
    std::fs::write(rig.repo().join("refs/heads/main.lock"), format!("{main}\n"))
        .expect("write lock");
    let out = rig.publish(&rig.url(&server), &tip);
    let err = stderr(&out);
    assert!(
        !err.contains("refs changed while this push was judged"),
        "{err}"
    );
    assert!(
        out.status.success() && err.contains("published k v1"),
        "{err}"
    );
    assert!(err.contains("removed the stale lock"), "{err}");
    rig.assert_whole(&["round: 0".to_string()].into());
}

/// A publish killed after its journal, with only the branch moved by hand
/// (a transaction cut after its first rename): the server's start completes
/// it — tag created, proposal deleted, notes moved, one `published` event —
/// and pushing the same proposal again publishes nothing. Before: the branch
/// at an approval commit with no tag, and a retry published it again.
#[test]
fn a_journal_left_half_applied_is_completed_at_start_and_never_republished() {
    let rig = Rig::new();
    let mut server = rig.start(&[("CADGATE_TEST_CRASH_AT", "after-journal")]);
    let tip = rig.propose(&server, "w0", "round: 0\n");
    let out = rig.publish(&rig.url(&server), &tip);
    assert!(!out.status.success(), "not killed: {}", stderr(&out));
    wait_killed(&mut server);
    drop(server);
    let repo = rig.repo();
    let journal: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo.join("cadgate-intent.json")).expect("the journal after the kill"),
    )
    .expect("journal JSON");
    let edits = journal["edits"].as_array().expect("edits");
    let edit = |name: &str| {
        edits
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {journal}"))
    };
    let branch = edit("refs/heads/main");
    let approval = branch["new"].as_str().expect("new main").to_string();
    let notes = edit("refs/notes/cadgate")["new"]
        .as_str()
        .expect("new notes")
        .to_string();
    // Half applied: the branch moved, nothing else.
    server_git(
        &repo,
        &[
            "update-ref",
            "refs/heads/main",
            &approval,
            branch["old"].as_str().expect("old main"),
        ],
    );
    assert_eq!(server_ref(&repo, &format!("refs/tags/{PACKAGE}/v1")), None);
    let server = rig.start(&[]);
    assert_eq!(
        server_ref(&repo, &format!("refs/tags/{PACKAGE}/v1")),
        Some(approval.clone())
    );
    assert_eq!(
        server_ref(&repo, &format!("refs/heads/proposed/{PACKAGE}/w0")),
        None
    );
    assert_eq!(server_ref(&repo, "refs/notes/cadgate"), Some(notes));
    rig.assert_whole(&["round: 0".to_string()].into());
    // The same proposal pushed again: nothing more is published.
    let again = rig.publish(&rig.url(&server), &tip);
    assert_eq!(rig.tags().len(), 1, "{}", stderr(&again));
    drop(server);
    let _server = rig.start(&[]);
    assert_eq!(rig.published_events(), vec![(1, approval)]);
    rig.assert_whole(&["round: 0".to_string()].into());
}

/// Finding 11: publishes that landed while their events were lost (a log
/// written before the journal existed, a crash) get their `published`
/// events at the next start, in revision order, once. Before: 1 event for 3
/// tags, for good.
#[test]
fn published_events_lost_by_a_crash_are_recorded_once_at_start() {
    let rig = Rig::new();
    let server = rig.start(&[]);
    for round in 0..3 {
        let tip = rig.propose(&server, &format!("w{round}"), &format!("round: {round}\n"));
        rig.publish_ok(&server, &tip, round + 1);
    }
    drop(server);
    let log = rig.repo().join("cadgate-events.log");
    let text = std::fs::read_to_string(&log).expect("the log");
    let kept: String = text
        .lines()
        // Only revision 1 keeps its published event.
        .filter(|l| !l.contains("\"published\"") || l.contains("\"revision\":1,"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&log, kept).expect("rewrite the log");
    assert_eq!(rig.published_events().len(), 1);
    let tags = rig.tags();
    for _ in 0..2 {
        let _server = rig.start(&[]);
        let events: Vec<(u64, String)> = rig.published_events();
        assert_eq!(events, tags.clone().into_iter().collect::<Vec<_>>());
    }
    let text = std::fs::read_to_string(&log).expect("the log");
    let recorded: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &serde_json::Value| e["type"] == "published")
        .collect();
    assert_eq!(recorded[1]["workspace"], "w1");
    assert_eq!(recorded[2]["workspace"], "w2");
    assert_eq!(recorded[2]["user"], "admin");
    // seq stays gap-free.
    let seqs: Vec<u64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|e| e["seq"].as_u64())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "{seqs:?}");
}
