//! Porch's reading next to cadgate's API listing: the documented
//! differences (docs/porch.md, "Porch's reading compared with cadgate's
//! listing") written out as a mapping from a [`PorchRevision`] to the API
//! item cadgate lists for it.

use super::{list, rfc3339, PorchRevision, Registration};

/// What cadgate's API lists for Porch's revision `r` (one of `all`, a
/// listing of one repository), field by field, under the
/// documented differences (docs/porch.md); `None` when cadgate does not list
/// it at all.
pub fn as_cadgate_lists_it(r: &PorchRevision, all: &[PorchRevision]) -> Option<serde_json::Value> {
    if r.is_placeholder() {
        // M3 (docs/porch.md): cadgate lists the placeholder as Porch does,
        // marked `placeholder: true`, never latest; its publishedBy and
        // publishedAt are null (Porch reads the package's last annotated
        // commit on the branch, `findLatestPackageCommit`).
        return Some(serde_json::json!({
            "name": r.name,
            "packageName": r.package_name,
            "workspaceName": r.workspace,
            "revision": r.revision,
            "lifecycle": r.lifecycle,
            "latest": false,
            "commit": r.commit,
            "publishedBy": null,
            "publishedAt": null,
        }));
    }
    if r.revision < 1 && r.lifecycle != "Draft" && r.lifecycle != "Proposed" {
        // M4 (docs/porch.md): a tag Porch reads as revision 0, a negative
        // number or −1 (`F/v0`, `F/v-3`, `F/latest`) is a foreign ref for
        // cadgate: neither listed nor counted.
        return None;
    }
    // M6 (docs/porch.md): cadgate keys `latest` by the full package path;
    // Porch by the leaf name (cache/crcache/util.go 44–52).
    let highest = all
        .iter()
        .filter(|o| o.full_path == r.full_path && o.revision >= 1)
        .filter(|o| matches!(o.lifecycle, "Published" | "DeletionProposed"))
        .map(|o| o.revision)
        .max();
    let latest =
        matches!(r.lifecycle, "Published" | "DeletionProposed") && highest == Some(r.revision);
    let leaf_shared = all
        .iter()
        .any(|o| o.leaf == r.leaf && o.full_path != r.full_path);
    if !leaf_shared {
        assert_eq!(
            latest, r.latest,
            "with a leaf name of its own, Porch's latest is cadgate's: {r:?}"
        );
    }
    Some(serde_json::json!({
        // M5 (docs/porch.md): both name the package below the repository's
        // directory (package.go 113, util.go 160–167).
        "name": r.name,
        "packageName": r.package_name,
        "workspaceName": r.workspace,
        "revision": r.revision,
        "lifecycle": r.lifecycle,
        "latest": latest,
        "commit": r.commit,
        // M10: both are the approval commit's author (package.go 88–96).
        "publishedBy": r.published_by,
        "publishedAt": r.published_at.map(rfc3339),
    }))
}

/// The fields of an API item that [`as_cadgate_lists_it`] maps.
pub fn compared_fields(item: &serde_json::Value) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for key in [
        "name",
        "packageName",
        "workspaceName",
        "revision",
        "lifecycle",
        "latest",
        "commit",
        "publishedBy",
        "publishedAt",
    ] {
        out.insert(key.to_string(), item[key].clone());
    }
    serde_json::Value::Object(out)
}

/// Porch's listing of `repo` mapped to cadgate's, and cadgate's own API
/// listing `items`, both sorted: equal when cadgate reads the repository as
/// Porch does (under the documented differences).
pub fn porch_and_cadgate(
    porch: &[PorchRevision],
    items: &[serde_json::Value],
) -> (Vec<String>, Vec<String>) {
    let mut expected: Vec<String> = porch
        .iter()
        .filter_map(|r| as_cadgate_lists_it(r, porch))
        .map(|v| v.to_string())
        .collect();
    let mut listed: Vec<String> = items
        .iter()
        .map(|i| compared_fields(i).to_string())
        .collect();
    expected.sort();
    listed.sort();
    (expected, listed)
}

/// cadgate's API listing of the repository `registration` names equals
/// Porch's listing of its bare repository, field by field under the
/// documented mapping ([`as_cadgate_lists_it`]); returns Porch's listing.
pub fn assert_cadgate_lists_as_porch(
    server: &crate::Server,
    user: &crate::TestUser,
    registration: Registration,
    context: &str,
) -> Vec<PorchRevision> {
    let repo = server.repo_dir(registration.name);
    let porch = list(&repo, registration)
        .unwrap_or_else(|e| panic!("{context}: Porch could not list the repository: {e}"));
    let items = crate::api::revisions(server, user, registration.name, "");
    let (expected, listed) = porch_and_cadgate(&porch, &items);
    assert_eq!(
        listed, expected,
        "{context}: cadgate's API listing (left) differs from Porch's reading (right, mapped)"
    );
    porch
}
