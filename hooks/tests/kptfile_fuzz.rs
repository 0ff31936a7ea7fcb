//! Property tests: parsing a Kptfile never panics on arbitrary or hostile
//! text (sizes capped so a case runs in milliseconds), and refuses hostile
//! shapes by the bound they break.

use cadgate_hooks::kptfile::{Kptfile, KptfileError};
use cadgate_hooks::refs::Layout;
use proptest::prelude::*;

fn fragment() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "apiVersion: kpt.dev/v1\n",
        "kind: Kptfile\n",
        "metadata:\n  name: app\n",
        "upstreamLock:\n  type: git\n  git:\n    repo: -x\n    ref: a\n    commit: b\n",
        "upstream: {type: git}\n",
        "pipeline:\n  mutators: []\n",
        "a: &x [1, 2]\n",
        "b: *x\n",
        "---\n",
        "[",
        "{",
        "{a: ",
        "]",
        "}",
        ": ",
        "'",
        "\"",
        "\t",
        "\n",
        "é",
        "\u{0}",
        "!!binary ",
        "? ",
    ])
    .prop_map(String::from)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_kptfiles_never_panic(parts in prop::collection::vec(fragment(), 0..40)) {
        let package = Layout::new("main", "").package("app").expect("package");
        let _ = Kptfile::parse_for(&package, &parts.concat());
        let _ = cadgate_hooks::kptfile::upstream_lock_of(&parts.concat());
    }

    #[test]
    fn deep_nesting_is_refused_by_depth(depth in 65usize..20_000, open in prop::sample::select(vec!["[", "{a: ", "- "])) {
        let package = Layout::new("main", "").package("app").expect("package");
        let text = if open == "- " {
            (0..depth.min(600)).map(|i| format!("{}- \n", "  ".repeat(i))).collect::<String>()
        } else {
            open.repeat(depth)
        };
        match Kptfile::parse_for(&package, &text) {
            Err(KptfileError::OutOfBounds { detail, .. }) => prop_assert!(detail.contains("deep") || detail.contains("bytes"), "{}", detail),
            other => prop_assert!(false, "not refused by a bound: {:?}", other),
        }
    }
}
