//! Refs cadgate writes do not pile up as loose files: git reads every loose
//! ref on each advertisement, so the repository's refs are packed once
//! enough writes accumulated, and a mirror's refs right after a fetch.

mod common;
use common::git;

use std::path::Path;
use std::process::Command;

use cadgate_hooks::forward::Upstream;
use cadgate_hooks::git::{RefEdit, Repo, PACK_REFS_EVERY};

fn loose_refs(git_dir: &Path) -> usize {
    fn walk(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            walk(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(&git_dir.join("refs"))
}

fn repository_with_a_commit(dir: &Path) -> (std::path::PathBuf, String) {
    let bare = dir.join("r.git");
    git(dir, &["init", "-q", "--bare", "-b", "main", "r.git"]);
    let tree = git(&bare, &["hash-object", "-t", "tree", "-w", "/dev/null"]);
    let commit = git(&bare, &["commit-tree", &tree, "-m", "c"]);
    (bare, commit)
}

#[test]
fn ref_writes_are_packed_once_enough_piled_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bare, commit) = repository_with_a_commit(dir.path());
    let repo = Repo::open(&bare).expect("open");
    let create = |i: usize| RefEdit::Create {
        name: format!("refs/tags/p{i}/v1"),
        new: commit.clone(),
    };
    let first: Vec<RefEdit> = (0..PACK_REFS_EVERY - 1).map(create).collect();
    repo.update_refs(&first, "test").expect("update");
    assert_eq!(loose_refs(&bare), PACK_REFS_EVERY - 1, "not yet due");

    repo.update_refs(&[create(PACK_REFS_EVERY)], "test")
        .expect("update");
    assert_eq!(loose_refs(&bare), 0, "packed once due");
    let packed = std::fs::read_to_string(bare.join("packed-refs")).expect("packed-refs");
    assert_eq!(packed.matches("refs/tags/p").count(), PACK_REFS_EVERY);
    // Every ref still reads as written.
    assert_eq!(git(&bare, &["rev-parse", "refs/tags/p7/v1"]), commit);
}

#[test]
fn a_mirror_fetch_leaves_no_loose_refs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (upstream, commit) = repository_with_a_commit(dir.path());
    let mut script = String::from("start\n");
    for i in 0..200 {
        script.push_str(&format!("create refs/tags/p{i}/v1 {commit}\n"));
    }
    script.push_str(&format!("create refs/heads/main {commit}\ncommit\n"));
    let mut child = Command::new("git")
        .arg("--git-dir")
        .arg(&upstream)
        .args(["update-ref", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("git");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), script.as_bytes())
        .expect("write");
    assert!(child.wait().expect("wait").success());

    git(dir.path(), &["init", "-q", "--bare", "mirror.git"]);
    let mirror = dir.path().join("mirror.git");
    let url = format!("file://{}", upstream.display());
    Upstream::new(&url, None).fetch(&mirror).expect("fetch");
    assert_eq!(loose_refs(&mirror), 0);
    assert_eq!(git(&mirror, &["tag", "--list", "p*"]).lines().count(), 200);
}
