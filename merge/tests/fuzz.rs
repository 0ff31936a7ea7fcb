//! Property tests: the three-way merge and the YAML bounds never panic on
//! arbitrary input (sizes capped so a case runs in milliseconds), a merge
//! of three equal sides is that side, and the bound check is total.

use cadgate_merge::limits::{check, Limits};
use cadgate_merge::{merge, Files};
use proptest::prelude::*;

/// Pieces of YAML, valid and hostile.
fn fragment() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "apiVersion: v1\n",
        "kind: ConfigMap\n",
        "metadata:\n  name: a\n",
        "metadata:\n  name: b\n  namespace: n\n",
        "data:\n  k: v\n",
        "spec:\n  containers:\n  - name: web\n    image: x\n",
        "  - name: side\n",
        "---\n",
        "- a\n",
        "a: &x [1, 2]\n",
        "b: *x\n",
        "c: !!str 1\n",
        "d: 1\nd: 2\n",
        "[",
        "]",
        "{",
        "}",
        "{a: ",
        ": ",
        "? ",
        "'",
        "\"",
        "|\n  text\n",
        "\t",
        "  ",
        "\n",
        "#",
        "é",
        "\u{0}",
        "*",
        "&",
    ])
    .prop_map(String::from)
}

fn yaml() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(fragment(), 0..30).prop_map(|p| p.concat().into_bytes())
}

fn package() -> impl Strategy<Value = Files> {
    prop::collection::btree_map(
        prop::sample::select(vec!["Kptfile", "a.yaml", "b.yml", "notes.txt"])
            .prop_map(String::from),
        yaml(),
        0..4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn merging_arbitrary_packages_never_panics(base in package(), upstream in package(), local in package()) {
        let merged = merge(&base, &upstream, &local);
        for conflict in &merged.conflicts {
            prop_assert!(!conflict.detail.is_empty());
        }
    }

    #[test]
    fn three_equal_sides_merge_to_that_side(side in package()) {
        let merged = merge(&side, &side, &side);
        prop_assert!(merged.conflicts.is_empty());
        prop_assert_eq!(merged.files, side);
    }

    #[test]
    fn the_bound_check_is_total(text in yaml(), depth in 0usize..3000, aliases in 0usize..40) {
        let text = String::from_utf8(text).unwrap_or_default();
        let _ = check(&text, &Limits::KPTFILE);
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let deep = check(&nested, &Limits::KPTFILE);
        prop_assert_eq!(deep.is_ok(), depth <= 64, "{:?}", deep);
        let mut chain = String::from("a0: &a0 [x, x]\n");
        for i in 1..=aliases {
            chain.push_str(&format!("a{i}: &a{i} [*a{}, *a{}]\n", i - 1, i - 1));
        }
        let expanded = check(&chain, &Limits::KPTFILE);
        prop_assert_eq!(expanded.is_ok(), 2 * aliases <= 16 && (1usize << (aliases + 1)) < 50_000, "{:?}", expanded);
    }
}

/// A file of 1,000 resources, each with a 40-key mapping, that both sides
/// changed merges field by field (every lookup is indexed: the merge is
/// linear in the file, where it was quadratic in keys and resources).
#[test]
fn wide_files_merge_field_by_field() {
    const N: usize = 1_000;
    let file = |changed_local: bool, changed_upstream: bool| -> Vec<u8> {
        let mut text = String::new();
        for i in 0..N {
            text.push_str(&format!(
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\ndata:\n"
            ));
            for k in 0..40 {
                let value = match (k, i) {
                    (0, 0) if changed_local => "local".to_string(),
                    (1, i) if i == N - 1 && changed_upstream => "upstream".to_string(),
                    _ => format!("v{k}"),
                };
                text.push_str(&format!("  k{k}: {value}\n"));
            }
        }
        text.into_bytes()
    };
    let side = |bytes: Vec<u8>| Files::from([("all.yaml".to_string(), bytes)]);
    let merged = merge(
        &side(file(false, false)),
        &side(file(false, true)),
        &side(file(true, false)),
    );
    assert!(
        merged.conflicts.is_empty(),
        "{:?}",
        merged.conflicts.first()
    );
    assert_eq!(merged.files["all.yaml"], file(true, true));
}
