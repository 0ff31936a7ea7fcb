//! The `cadgate` command line as a user meets it: exit codes and output.

use std::process::Command;

fn cadgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cadgate"))
        .args(args)
        .output()
        .expect("run cadgate")
}

fn examples() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples")
}

#[test]
fn token_prints_a_token_and_its_config_line() {
    let out = cadgate(&["token"]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .expect("a `token: ` line");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("token_sha256 = \""))
        .expect("a token_sha256 line");
    assert!(token.len() >= 32, "token too short: {token}");
    assert_eq!(
        line,
        format!(
            "token_sha256 = \"{}\"",
            cadgate_config::token_sha256_hex(token)
        )
    );
    // Two calls never print the same token.
    let again = String::from_utf8(cadgate(&["token"]).stdout).expect("utf-8");
    assert_ne!(stdout, again);
}

#[test]
fn check_config_accepts_every_example() {
    for entry in std::fs::read_dir(examples()).expect("examples dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = cadgate(&["check-config", path.to_str().expect("utf-8 path")]);
            assert!(
                out.status.success(),
                "{} rejected: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));
        }
    }
}

#[test]
fn check_config_names_the_line_of_each_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:8080\"\nlisen = \"x\"\n\n[[repository]]\nname = \"a\"\n[[repository]]\nname = \"a\"\n",
    )
    .expect("write");
    let out = cadgate(&["check-config", file.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml:3"), "typo not located: {stderr}");
    assert!(
        stderr.contains("bad.toml:8"),
        "duplicate not located: {stderr}"
    );
}

#[test]
fn serve_refuses_a_bad_config_before_listening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"nowhere\"\n\n[[repository]]\nname = \"a\"\n",
    )
    .expect("write");
    let out = cadgate(&["serve", "--config", file.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml:2"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"));
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let out = cadgate(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}

#[test]
fn upstream_credentials_must_say_where_the_secret_is_not_be_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("forward.toml");
    std::fs::write(
        &file,
        "[[repository]]\nname = \"a\"\nupstream = \"https://git.example.com/a.git\"\nupstream_credentials = \"alice:s3cret\"\n",
    )
    .expect("write");
    let out = cadgate(&["check-config", file.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("forward.toml:4"), "{stderr}");
    assert!(stderr.contains("env:VARIABLE"), "{stderr}");
    // The problem report does not echo the secret back.
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn serve_stops_when_the_upstream_credentials_are_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("forward.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n[[repository]]\nname = \"a\"\nupstream = \"file:///nonexistent/a.git\"\nupstream_credentials = \"env:CADGATE_TEST_UNSET_VARIABLE\"\n",
            dir.path().join("data").display()
        ),
    )
    .expect("write");
    let out = cadgate(&["serve", "--config", file.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("CADGATE_TEST_UNSET_VARIABLE is not set"),
        "{stderr}"
    );
}

#[test]
fn hook_user_variable_must_be_a_variable_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("hook.toml");
    std::fs::write(&file, "[hook]\nuser_variable = \"$USER\"\n").expect("write");
    let out = cadgate(&["check-config", file.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("hook.toml:2") && stderr.contains("not an environment variable name"),
        "{stderr}"
    );
}
