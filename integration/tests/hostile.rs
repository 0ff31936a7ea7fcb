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
