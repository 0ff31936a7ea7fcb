//! Property tests: config loading never panics on arbitrary text, and every
//! problem it reports on text that is not TOML says on which line.

use std::path::Path;

use cadgate_config::Config;
use proptest::prelude::*;

/// Pieces of TOML, valid and broken, that a config is made of.
fn fragment() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "[server]\n",
        "[[repository]]\n",
        "[[user]]\n",
        "[[webhook]]\n",
        "[policy]\n",
        "[hook]\n",
        "name = \"demo\"\n",
        "name = \"-x\"\n",
        "name = 1\n",
        "name = \"a/../b\"\n",
        "branch = \"main\"\n",
        "branch = \"drafts/x\"\n",
        "directory = \"catalog\"\n",
        "directory = \"a//b\"\n",
        "listen = \"127.0.0.1:0\"\n",
        "max_git_processes = -1\n",
        "max_git_processes = 18446744073709551616\n",
        "self_approval = true\n",
        "self_approval = \"yes\"\n",
        "roles = [\"admin\"]\n",
        "roles = [\"nobody\"]\n",
        "repositories = [\"demo\", \"*\"]\n",
        "token_sha256 = \"00\"\n",
        "url = \"http://x\"\n",
        "unknown = 1\n",
        "a.b.c = 1\n",
        "x = \n",
        "= 1\n",
        "[",
        "]",
        "\"",
        "'''",
        "\\u{0}",
        "\u{feff}",
        "é",
        "#",
        " ",
        "\n",
        "\r\n",
        "{",
        "}",
        ",",
    ])
    .prop_map(String::from)
}

fn check(text: &str) -> Result<(), TestCaseError> {
    let syntax_ok = text.parse::<toml_edit::DocumentMut>().is_ok();
    if let Err(e) = Config::parse(text, "fuzz.toml", Path::new("/nonexistent")) {
        prop_assert!(!e.problems.is_empty(), "an error without problems");
        for problem in &e.problems {
            prop_assert!(!problem.message.is_empty(), "{}", problem);
            if !syntax_ok {
                // Text that is not TOML: every problem says where.
                prop_assert!(problem.line.is_some(), "no line: {}\n{:?}", problem, text);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn config_fragments_never_panic_and_errors_are_located(parts in prop::collection::vec(fragment(), 0..40)) {
        check(&parts.concat())?;
    }

    #[test]
    fn arbitrary_text_never_panics(chars in prop::collection::vec(any::<char>(), 0..300)) {
        check(&chars.into_iter().collect::<String>())?;
    }
}
