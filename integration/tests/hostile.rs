//! Hostile pushes sent by hand over HTTP, past the git client's own checks:
//! refused per ref, nothing changes, the server keeps serving.

use cadgate_integration::*;
use sha1::{Digest, Sha1};

/// An empty pack: header for zero objects and its SHA-1 trailer.
fn empty_pack() -> Vec<u8> {
    let mut pack = b"PACK\0\0\0\x02\0\0\0\0".to_vec();
    let digest = Sha1::digest(&pack);
    pack.extend_from_slice(&digest);
    pack
}

#[test]
fn hostile_ref_names_are_refused_and_change_nothing() {
    let alice = TestUser::new("alice");
    let server = Server::start(&format!(
        "[[repository]]\nname = \"demo\"\n\n{}",
        alice.config(&["admin"], &[])
    ));
    let repo = server.repo_dir("demo");
    let main = server_git(&repo, &["rev-parse", "main"]);
    let before = server_git(&repo, &["for-each-ref"]);
    let long = format!("refs/heads/drafts/{}/ws", "a".repeat(4096));
    let hostile = [
        "refs/heads/drafts/../evil/ws",
        "refs/heads/drafts/pkg/ws@{1}",
        "refs/heads/drafts/pkg/w\u{1}s",
        "refs/heads/drafts/pkg/ws.lock",
        "refs/heads/drafts//ws",
        "refs/tags/pkg/v1",
        "HEAD",
        "refs/notes/cadgate",
        long.as_str(),
    ];
    for name in hostile {
        let line = format!("{} {main} {name}\0report-status\n", "0".repeat(40));
        let mut body = format!("{:04x}{line}0000", line.len() + 4).into_bytes();
        body.extend_from_slice(&empty_pack());
        let auth = basic(&alice);
        let r = server.request(
            "POST",
            "/demo.git/git-receive-pack",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/x-git-receive-pack-request"),
            ],
            &body,
        );
        assert!(
            r.status == 200 || (400..500).contains(&r.status),
            "{name:?}: {}",
            r.status
        );
        if r.status == 200 {
            let text = r.text();
            assert!(text.contains("ng "), "{name:?} was not refused: {text}");
            // git echoes the ref name the client sent, once; cadgate's reason
            // (which names the ref too) carries no control characters.
            assert!(
                text.matches('\u{1}').count() <= 1,
                "the refusal reason echoes a control character: {text:?}"
            );
        }
    }
    assert_eq!(
        server_git(&repo, &["for-each-ref"]),
        before,
        "a hostile push changed refs"
    );
    server_git(&repo, &["fsck", "--no-progress"]);
    GitClient::new().git(&[
        "clone",
        "-q",
        &server.url_as(&alice, "demo"),
        "still-serving",
    ]);
}

/// A package of 20,000 files is a legitimate package: it is saved, proposed
/// and published, and the published tree holds every file.
#[test]
fn a_twenty_thousand_file_package_goes_through_the_whole_lifecycle() {
    const FILES: usize = 20_000;
    let (alice, bob) = (TestUser::new("alice"), TestUser::new("bob"));
    let server = Server::start(&format!(
        "[[repository]]\nname = \"demo\"\n\n{}{}",
        alice.config(&["author"], &[]),
        bob.config(&["approver"], &[])
    ));
    let author = GitClient::new();
    author.git(&["clone", "-q", &server.url_as(&alice, "demo"), "w"]);
    let main = author.git_in("w", &["rev-parse", "origin/main"]);
    // Built with fast-import: writing 20,000 files through a work tree
    // would time the test machine, not cadgate.
    let mut stream = format!(
        "commit refs/heads/big\ncommitter Test <test@example.com> 1700000000 +0000\ndata 4\nbig\nfrom {main}\n"
    );
    let kpt = kptfile("big");
    stream.push_str(&format!(
        "M 100644 inline big/Kptfile\ndata {}\n{kpt}\n",
        kpt.len()
    ));
    for i in 0..FILES {
        let content = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{i}\n");
        stream.push_str(&format!(
            "M 100644 inline big/d{}/cm{i}.yaml\ndata {}\n{content}\n",
            i % 100,
            content.len()
        ));
    }
    let mut import = author
        .command(&["-C", "w", "fast-import", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("fast-import");
    std::io::Write::write_all(import.stdin.as_mut().expect("stdin"), stream.as_bytes())
        .expect("feed fast-import");
    drop(import.stdin.take());
    assert!(import.wait().expect("fast-import").success());

    let started = std::time::Instant::now();
    let out = author.git(&["-C", "w", "push", "origin", "big:refs/heads/drafts/big/ws"]);
    let draft_time = started.elapsed();
    assert!(
        stderr(&out).contains("saved draft big workspace ws"),
        "{}",
        stderr(&out)
    );
    author.git_in(
        "w",
        &["push", "-q", "origin", "big:refs/heads/proposed/big/ws"],
    );
    let approver = GitClient::new();
    approver.git(&["clone", "-q", &server.url_as(&bob, "demo"), "a"]);
    let started = std::time::Instant::now();
    let out = approver.git(&[
        "-C",
        "a",
        "push",
        "origin",
        "+origin/proposed/big/ws:refs/heads/main",
    ]);
    let publish_time = started.elapsed();
    assert!(
        stderr(&out).contains("published big v1"),
        "{}",
        stderr(&out)
    );
    let repo = server.repo_dir("demo");
    let files = server_git(
        &repo,
        &["ls-tree", "-r", "--name-only", "refs/tags/big/v1", "big"],
    );
    assert_eq!(files.lines().count(), FILES + 1);
    // Reported, not asserted: timings are for the notes, not a threshold.
    eprintln!(
        "20,000-file package: draft push {} ms, publish {} ms",
        draft_time.as_millis(),
        publish_time.as_millis()
    );
}
