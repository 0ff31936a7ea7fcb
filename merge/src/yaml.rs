//! Resource-by-resource, field-by-field merge of a YAML file both sides
//! changed, after kpt's `resource-merge` strategy: the rules are in the
//! crate documentation, "YAML files".

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::node::{self, parse_documents, Node, ParseError, Scalar};
use crate::{Conflict, ResourceId};

/// Merge one YAML file both sides changed, appending to `conflicts`.
/// Returns the merged bytes.
pub fn merge_file(
    path: &str,
    base: &[u8],
    upstream: &[u8],
    local: &[u8],
    conflicts: &mut Vec<Conflict>,
) -> Vec<u8> {
    let file_conflict = |detail: String| Conflict {
        path: path.to_string(),
        resource: None,
        field: None,
        detail,
    };
    let mut parsed = Vec::with_capacity(3);
    for (side, bytes) in [("base", base), ("upstream", upstream), ("local", local)] {
        match parse_documents(bytes) {
            Ok(documents) => parsed.push(documents),
            Err(ParseError::Unsupported(_)) => {
                return crate::text::merge_file(path, base, upstream, local, conflicts);
            }
            Err(ParseError::Limit(e)) => {
                conflicts.push(file_conflict(format!(
                    "both sides changed it, and the {side} file is beyond the bounds on YAML ({e}); \
                     the local file is kept"
                )));
                return local.to_vec();
            }
            Err(e) => {
                conflicts.push(file_conflict(format!(
                    "both sides changed it, and the {side} file is not valid YAML ({e}); \
                     the local file is kept"
                )));
                return local.to_vec();
            }
        }
    }
    let mut sides = parsed.into_iter();
    let (Some(b_docs), Some(u_docs), Some(l_docs)) = (sides.next(), sides.next(), sides.next())
    else {
        return local.to_vec();
    };
    let (Some(b), Some(u), Some(l)) = (resources(&b_docs), resources(&u_docs), resources(&l_docs))
    else {
        return crate::text::merge_file(path, base, upstream, local, conflicts);
    };

    let merged = merge_resources(path, &b, &u, &l, conflicts);
    if merged == l_docs {
        return local.to_vec();
    }
    if merged == u_docs {
        return upstream.to_vec();
    }
    if let Some(text) = line_merge_agreeing(base, upstream, local, &merged) {
        return text.into_bytes();
    }
    node::emit(&merged).into_bytes()
}

/// The line-by-line merge of the file, when it is clean and reads as exactly
/// the documents the resource merge produced: then it is the better output,
/// since it keeps the comments and layout of both sides.
fn line_merge_agreeing(
    base: &[u8],
    upstream: &[u8],
    local: &[u8],
    merged: &[Node],
) -> Option<String> {
    let base = std::str::from_utf8(base).ok()?;
    let upstream = std::str::from_utf8(upstream).ok()?;
    let local = std::str::from_utf8(local).ok()?;
    let text = diffy::merge(base, local, upstream).ok()?;
    let documents = parse_documents(text.as_bytes()).ok()?;
    (documents == merged).then_some(text)
}

/// How resources are matched across the three sides.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct MatchKey {
    group: String,
    kind: String,
    namespace: Option<String>,
    name: String,
}

/// One KRM document and its identity.
struct Resource<'a> {
    id: ResourceId,
    key: MatchKey,
    value: &'a Node,
}

/// The documents as KRM resources, or `None` when one is not a resource or
/// two share an identity.
fn resources(documents: &[Node]) -> Option<Vec<Resource<'_>>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(documents.len());
    for value in documents {
        let id = resource_id(value)?;
        let key = match_key(&id);
        if !seen.insert(key.clone()) {
            return None;
        }
        out.push(Resource { id, key, value });
    }
    Some(out)
}

/// A document's identity, when it is a KRM resource.
pub fn resource_id(value: &Node) -> Option<ResourceId> {
    let api_version = value.get("apiVersion")?.as_str()?.to_string();
    let kind = value.get("kind")?.as_str()?.to_string();
    let metadata = value.get("metadata");
    let name = metadata.and_then(|m| m.get("name")).and_then(Node::as_str);
    let name = match (name, kind.as_str()) {
        (Some(name), _) => name.to_string(),
        (None, "Kptfile") => String::new(),
        (None, _) => return None,
    };
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(Node::as_str)
        .map(str::to_string);
    Some(ResourceId {
        api_version,
        kind,
        namespace,
        name,
    })
}

fn is_kptfile(id: &ResourceId) -> bool {
    id.kind == "Kptfile"
}

fn match_key(id: &ResourceId) -> MatchKey {
    if is_kptfile(id) {
        return MatchKey {
            group: id.group().to_string(),
            kind: id.kind.clone(),
            namespace: None,
            name: String::new(),
        };
    }
    MatchKey {
        group: id.group().to_string(),
        kind: id.kind.clone(),
        namespace: id.namespace.clone(),
        name: id.name.clone(),
    }
}

/// The merged documents of one file.
fn merge_resources(
    path: &str,
    base: &[Resource<'_>],
    upstream: &[Resource<'_>],
    local: &[Resource<'_>],
    conflicts: &mut Vec<Conflict>,
) -> Vec<Node> {
    // Indexed by identity, so files of many resources merge in linear time.
    let (base, upstream_by_key) = (by_key(base), by_key(upstream));
    let local_keys: HashSet<&MatchKey> = local.iter().map(|l| &l.key).collect();
    let mut out = Vec::new();
    for l in local {
        let b = base.get(&l.key).copied();
        let u = upstream_by_key.get(&l.key).copied();
        let mut fields = Fields {
            path,
            id: &l.id,
            conflicts,
        };
        match (b, u) {
            (None, None) => out.push(l.value.clone()),
            (Some(b), None) => {
                if b == l.value {
                    continue;
                }
                fields.resource_conflict(
                    "removed upstream but changed locally; the local resource is kept",
                );
                out.push(l.value.clone());
            }
            (b, Some(u)) => {
                let (b, u) = if is_kptfile(&l.id) {
                    (
                        b.map(|b| pin_local_kptfile_fields(b, l.value)),
                        pin_local_kptfile_fields(u, l.value),
                    )
                } else {
                    (b.cloned(), u.clone())
                };
                let empty = Node::Map(Vec::new());
                let b = b.unwrap_or(empty);
                if let Some(v) = fields.merge(String::new(), Some(&b), Some(&u), Some(l.value)) {
                    out.push(v);
                }
            }
        }
    }
    for u in upstream {
        if local_keys.contains(&u.key) {
            continue;
        }
        match base.get(&u.key).copied() {
            None => out.push(u.value.clone()),
            Some(b) if b == u.value => {}
            Some(_) => conflicts.push(Conflict {
                path: path.to_string(),
                resource: Some(u.id.clone()),
                field: None,
                detail: "removed locally but changed upstream; it stays removed".into(),
            }),
        }
    }
    out
}

/// A mapping's entries by key.
fn index(entries: &[(Scalar, Node)]) -> HashMap<&Scalar, &Node> {
    entries.iter().map(|(k, v)| (k, v)).collect()
}

/// The resources of `side` by identity (the first of a duplicated one;
/// files with duplicates are merged line by line before this).
fn by_key<'s, 'v>(side: &'s [Resource<'v>]) -> HashMap<&'s MatchKey, &'v Node> {
    let mut index = HashMap::with_capacity(side.len());
    for r in side {
        index.entry(&r.key).or_insert(r.value);
    }
    index
}

/// The Kptfile fields that are always the local ones.
const LOCAL_KPTFILE_FIELDS: [&str; 2] = ["upstream", "upstreamLock"];

/// `other` (a base or upstream Kptfile) with the fields that must stay local
/// set as in `local`, so that the merge keeps them.
fn pin_local_kptfile_fields(other: &Node, local: &Node) -> Node {
    let mut pinned = other.clone();
    for field in LOCAL_KPTFILE_FIELDS {
        pinned.set(field, local.get(field).cloned());
    }
    let local_name = local.get("metadata").and_then(|m| m.get("name")).cloned();
    if let Some(metadata) = pinned.get_mut("metadata") {
        metadata.set("name", local_name);
    }
    pinned
}

/// The field-by-field merge of one resource.
struct Fields<'a> {
    path: &'a str,
    id: &'a ResourceId,
    conflicts: &'a mut Vec<Conflict>,
}

impl Fields<'_> {
    fn resource_conflict(&mut self, detail: &str) {
        self.conflicts.push(Conflict {
            path: self.path.to_string(),
            resource: Some(self.id.clone()),
            field: None,
            detail: detail.to_string(),
        });
    }

    /// Merge one field; `None` in and out means the field is absent.
    fn merge(
        &mut self,
        field: String,
        b: Option<&Node>,
        u: Option<&Node>,
        l: Option<&Node>,
    ) -> Option<Node> {
        if u == b || u == l {
            return l.cloned();
        }
        if l == b {
            return u.cloned();
        }
        match (u, l) {
            (Some(Node::Map(um)), Some(Node::Map(lm))) => {
                let bm = match b {
                    Some(Node::Map(bm)) => Some(bm.as_slice()),
                    _ => None,
                };
                Some(Node::Map(self.merge_mapping(&field, bm, um, lm)))
            }
            (Some(Node::Seq(us)), Some(Node::Seq(ls))) => {
                let bs = match b {
                    Some(Node::Seq(bs)) => match names(bs) {
                        Some(_) => Some(bs.as_slice()),
                        None => return self.conflict(field, b, u, l),
                    },
                    _ => None,
                };
                if names(us).is_some() && names(ls).is_some() {
                    Some(Node::Seq(self.merge_named_list(&field, bs, us, ls)))
                } else {
                    self.conflict(field, b, u, l)
                }
            }
            _ => self.conflict(field, b, u, l),
        }
    }

    fn merge_mapping(
        &mut self,
        field: &str,
        b: Option<&[(Scalar, Node)]>,
        u: &[(Scalar, Node)],
        l: &[(Scalar, Node)],
    ) -> Vec<(Scalar, Node)> {
        // Indexed, so wide mappings merge in linear time.
        let (bi, ui, li) = (b.map(index).unwrap_or_default(), index(u), index(l));
        let base = |key: &Scalar| bi.get(key).copied();
        let mut out = Vec::new();
        for (key, lv) in l {
            let child = child_field(field, key);
            if let Some(v) = self.merge(child, base(key), ui.get(key).copied(), Some(lv)) {
                out.push((key.clone(), v));
            }
        }
        for (key, uv) in u {
            if li.contains_key(key) {
                continue;
            }
            let child = child_field(field, key);
            if let Some(v) = self.merge(child, base(key), Some(uv), None) {
                out.push((key.clone(), v));
            }
        }
        out
    }

    fn merge_named_list(
        &mut self,
        field: &str,
        b: Option<&[Node]>,
        u: &[Node],
        l: &[Node],
    ) -> Vec<Node> {
        let (bi, ui, li) = (named(b.unwrap_or_default()), named(u), named(l));
        let mut out = Vec::new();
        for le in l {
            let Some(name) = element_name(le) else {
                continue;
            };
            let child = format!("{field}[name={name}]");
            if let Some(v) = self.merge(
                child,
                bi.get(name).copied(),
                ui.get(name).copied(),
                Some(le),
            ) {
                out.push(v);
            }
        }
        for ue in u {
            let Some(name) = element_name(ue) else {
                continue;
            };
            if li.contains_key(name) {
                continue;
            }
            let child = format!("{field}[name={name}]");
            if let Some(v) = self.merge(child, bi.get(name).copied(), Some(ue), None) {
                out.push(v);
            }
        }
        out
    }

    /// Record a conflict on `field` and keep the local value.
    fn conflict(
        &mut self,
        field: String,
        b: Option<&Node>,
        u: Option<&Node>,
        l: Option<&Node>,
    ) -> Option<Node> {
        let detail = match (b, u, l) {
            (None, Some(u), Some(l)) => format!(
                "added upstream as {} and locally as {}",
                render(u),
                render(l)
            ),
            (Some(b), None, Some(l)) => format!(
                "removed upstream (was {}) but changed locally to {}",
                render(b),
                render(l)
            ),
            (Some(b), Some(u), None) => format!(
                "changed upstream from {} to {} but removed locally",
                render(b),
                render(u)
            ),
            (Some(b), Some(u), Some(l)) => format!(
                "changed upstream from {} to {} and locally to {}",
                render(b),
                render(u),
                render(l)
            ),
            // Not reached: with two sides absent, two sides are equal.
            _ => "changed differently upstream and locally".to_string(),
        };
        self.conflicts.push(Conflict {
            path: self.path.to_string(),
            resource: Some(self.id.clone()),
            field: Some(if field.is_empty() {
                "(the whole resource)".to_string()
            } else {
                field
            }),
            detail: format!("{detail}; the local value is kept"),
        });
        l.cloned()
    }
}

/// The dotted path of `key` under `field`. Keys that would read ambiguously
/// in a dotted path (annotation keys such as `example.com/owner`) are
/// bracketed and quoted: `metadata.annotations["example.com/owner"]`.
fn child_field(field: &str, key: &Scalar) -> String {
    let key = key.value.clone();
    let plain = !key.is_empty()
        && !key
            .chars()
            .any(|c| matches!(c, '.' | '[' | ']' | '"' | ' ' | '='));
    if plain {
        if field.is_empty() {
            key
        } else {
            format!("{field}.{key}")
        }
    } else {
        format!("{field}[{}]", node::double_quoted(&key))
    }
}

/// The elements of `list` by their `name` (the first of a name).
fn named(list: &[Node]) -> HashMap<&str, &Node> {
    let mut index = HashMap::with_capacity(list.len());
    for element in list {
        if let Some(name) = element_name(element) {
            index.entry(name).or_insert(element);
        }
    }
    index
}

/// The `name` of a list element that is a mapping with a string `name`.
fn element_name(element: &Node) -> Option<&str> {
    match element {
        Node::Map(_) => element.get("name")?.as_str(),
        _ => None,
    }
}

/// The names of a list's elements, when every element is a mapping with a
/// string `name` and no name repeats: then the list is merged by name.
fn names(list: &[Node]) -> Option<Vec<&str>> {
    let mut names = Vec::with_capacity(list.len());
    for element in list {
        let name = element_name(element)?;
        if names.contains(&name) {
            return None;
        }
        names.push(name);
    }
    Some(names)
}

/// A value on one line for a conflict's detail.
fn render(value: &Node) -> String {
    node::render(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge_str(b: &str, u: &str, l: &str) -> (String, Vec<Conflict>) {
        let mut conflicts = Vec::new();
        let out = merge_file(
            "x.yaml",
            b.as_bytes(),
            u.as_bytes(),
            l.as_bytes(),
            &mut conflicts,
        );
        (String::from_utf8(out).unwrap_or_default(), conflicts)
    }

    #[test]
    fn child_field_quotes_dotted_keys() {
        assert_eq!(child_field("", &Scalar::plain("spec")), "spec");
        assert_eq!(
            child_field("spec", &Scalar::plain("replicas")),
            "spec.replicas"
        );
        assert_eq!(
            child_field("metadata.annotations", &Scalar::plain("example.com/owner")),
            "metadata.annotations[\"example.com/owner\"]"
        );
        assert_eq!(child_field("data", &Scalar::plain("3")), "data.3");
    }

    #[test]
    fn invalid_yaml_is_a_conflict_not_a_panic() {
        let (out, conflicts) = merge_str("a: 1\n", "a: [2\n", "a: 3\n");
        assert_eq!(out, "a: 3\n");
        assert_eq!(conflicts.len(), 1);
        assert!(
            conflicts[0]
                .detail
                .starts_with("both sides changed it, and the upstream file is not valid YAML"),
            "{}",
            conflicts[0].detail
        );
    }

    #[test]
    fn non_krm_yaml_is_merged_line_by_line() {
        let (out, conflicts) = merge_str(
            "# values\nreplicas: 1\nname: web\nimage: web:1\nteam: a\nport: 80\n",
            "# values\nreplicas: 1\nname: web\nimage: web:2\nteam: a\nport: 80\n",
            "# values\nreplicas: 3\nname: web\nimage: web:1\nteam: a\nport: 8080\n",
        );
        assert!(conflicts.is_empty(), "{conflicts:?}");
        assert_eq!(
            out,
            "# values\nreplicas: 3\nname: web\nimage: web:2\nteam: a\nport: 8080\n"
        );
    }

    #[test]
    fn scalar_lists_are_atomic() {
        let b = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  args: [a]\n";
        let u = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  args: [a, b]\n";
        let l = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  args: [a, c]\n";
        let (out, conflicts) = merge_str(b, u, l);
        assert_eq!(out, l);
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].field.as_deref(), Some("spec.args"));
        assert_eq!(
            conflicts[0].detail,
            "changed upstream from [\"a\"] to [\"a\", \"b\"] and locally to [\"a\", \"c\"]; \
             the local value is kept"
        );
    }

    #[test]
    fn fields_removed_on_one_side_are_removed() {
        let b = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels:\n    tier: web\n    team: a\ndata:\n  x: \"1\"\n  y: \"2\"\n  z: \"3\"\n";
        // Upstream drops data.y and changes z; local drops the team label
        // and changes x.
        let u = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels:\n    tier: web\n    team: a\ndata:\n  x: \"1\"\n  z: \"4\"\n";
        let l = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels:\n    tier: web\ndata:\n  x: \"9\"\n  y: \"2\"\n  z: \"3\"\n";
        let (out, conflicts) = merge_str(b, u, l);
        assert!(conflicts.is_empty(), "{conflicts:?}");
        assert_eq!(
            out,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels:\n    tier: web\ndata:\n  x: \"9\"\n  z: \"4\"\n"
        );
    }

    #[test]
    fn removed_on_one_side_and_changed_on_the_other_is_a_conflict() {
        let b = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  annotations:\n    example.com/owner: a\ndata:\n  x: \"1\"\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gone\ndata:\n  k: v\n";
        let u = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  annotations:\n    example.com/owner: b\ndata:\n  x: \"1\"\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gone\ndata:\n  k: w\n";
        let l = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  annotations: {}\ndata:\n  x: \"2\"\n";
        let (out, conflicts) = merge_str(b, u, l);
        let shown: Vec<String> = conflicts.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "x.yaml: v1 ConfigMap c: metadata.annotations[\"example.com/owner\"]: changed \
                 upstream from \"a\" to \"b\" but removed locally; the local value is kept",
                "x.yaml: v1 ConfigMap gone: removed locally but changed upstream; it stays removed",
            ]
        );
        assert_eq!(out, l);
    }

    #[test]
    fn api_version_bump_still_matches() {
        let b = "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata:\n  name: p\nspec:\n  minAvailable: 1\n";
        let u = "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: p\nspec:\n  minAvailable: 1\n";
        let l = "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata:\n  name: p\nspec:\n  minAvailable: 2\n";
        let (out, conflicts) = merge_str(b, u, l);
        assert!(conflicts.is_empty(), "{conflicts:?}");
        assert_eq!(
            out,
            "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: p\nspec:\n  minAvailable: 2\n"
        );
    }
}
