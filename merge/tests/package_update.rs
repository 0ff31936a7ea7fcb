//! Upgrading a realistic kpt package (Kptfile, a Deployment with two
//! containers, a ConfigMap, a README) from upstream v1 to v2 while it carries
//! local changes.

use cadgate_merge::{merge, Conflict, Files, Merged, ResourceId};

const KPTFILE_V1: &str = r#"apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: web-app
  annotations:
    config.kubernetes.io/local-config: "true"
info:
  description: The web frontend blueprint
pipeline:
  mutators:
    - image: gcr.io/kpt-fn/set-namespace:v0.4.1
      configMap:
        namespace: default
"#;

/// The downstream Kptfile: renamed by `kpt pkg get`, with the upstream it
/// was fetched from.
const KPTFILE_LOCAL: &str = r#"apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: shop-web
  annotations:
    config.kubernetes.io/local-config: "true"
upstream:
  type: git
  git:
    repo: https://git.example.com/catalog
    directory: /web-app
    ref: web-app/v1
  updateStrategy: resource-merge
upstreamLock:
  type: git
  git:
    repo: https://git.example.com/catalog
    directory: /web-app
    ref: web-app/v1
    commit: 1111111111111111111111111111111111111111
info:
  description: The web frontend blueprint
pipeline:
  mutators:
    - image: gcr.io/kpt-fn/set-namespace:v0.4.1
      configMap:
        namespace: default
"#;

const DEPLOYMENT_V1: &str = r#"# The web frontend: nginx with an envoy sidecar.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels:
    app: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: nginx:1.25
          ports:
            - name: http
              containerPort: 80
          env:
            - name: LOG_LEVEL
              value: info
        - name: sidecar
          image: envoyproxy/envoy:v1.28.0
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  selector:
    app: web
  ports:
    - name: http
      port: 80
      targetPort: http
"#;

const CONFIGMAP_V1: &str = r#"# Settings the frontend reads at start.
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-settings
  namespace: default
data:
  greeting: hello
  timeout: "30s"
"#;

const README_V1: &str = "# web-app

The web frontend blueprint.

## Usage

Set the namespace with the set-namespace function.

## Ports

The container listens on port 80.
";

fn package(entries: &[(&str, &str)]) -> Files {
    entries
        .iter()
        .map(|(path, text)| (path.to_string(), text.as_bytes().to_vec()))
        .collect()
}

/// The upstream package at v1: the base of every update here.
fn base() -> Files {
    package(&[
        ("Kptfile", KPTFILE_V1),
        ("deployment.yaml", DEPLOYMENT_V1),
        ("configmap.yaml", CONFIGMAP_V1),
        ("README.md", README_V1),
    ])
}

/// The downstream package as `kpt pkg get` left it.
fn local() -> Files {
    let mut files = base();
    files.insert("Kptfile".into(), KPTFILE_LOCAL.as_bytes().to_vec());
    files
}

/// `files` with `path` rewritten by `edit`.
fn edit(mut files: Files, path: &str, edit: impl FnOnce(&str) -> String) -> Files {
    let old = String::from_utf8(files[path].clone()).expect("test files are UTF-8");
    let new = edit(&old);
    assert_ne!(old, new, "the edit of {path} changed nothing");
    files.insert(path.to_string(), new.into_bytes());
    files
}

fn replace(files: Files, path: &str, from: &str, to: &str) -> Files {
    edit(files, path, |text| {
        assert!(text.contains(from), "{path} has no {from:?}");
        text.replacen(from, to, 1)
    })
}

fn text<'a>(merged: &'a Merged, path: &str) -> &'a str {
    let bytes = merged
        .files
        .get(path)
        .unwrap_or_else(|| panic!("{path} is missing from the merge"));
    std::str::from_utf8(bytes).expect("merged files are UTF-8")
}

fn web_deployment() -> ResourceId {
    ResourceId {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: Some("default".into()),
        name: "web".into(),
    }
}

fn web_service() -> ResourceId {
    ResourceId {
        api_version: "v1".into(),
        kind: "Service".into(),
        namespace: Some("default".into()),
        name: "web".into(),
    }
}

fn assert_clean(merged: &Merged) {
    assert!(
        merged.conflicts.is_empty(),
        "unexpected conflicts: {:#?}",
        merged.conflicts
    );
}

#[test]
fn upstream_image_and_local_replicas_are_both_kept() {
    let upstream = replace(base(), "deployment.yaml", "nginx:1.25", "nginx:1.27");
    let local = replace(local(), "deployment.yaml", "replicas: 1", "replicas: 3");
    let merged = merge(&base(), &upstream, &local);
    assert_clean(&merged);
    // Changes on different lines: the line merge agrees with the resource
    // merge, so the comment survives.
    assert_eq!(
        text(&merged, "deployment.yaml"),
        DEPLOYMENT_V1
            .replace("nginx:1.25", "nginx:1.27")
            .replace("replicas: 1", "replicas: 3")
    );
    // Everything else is the local package.
    for path in ["Kptfile", "configmap.yaml", "README.md"] {
        assert_eq!(merged.files[path], local[path], "{path}");
    }
    assert_eq!(merged.files.len(), 4);
}

#[test]
fn changes_a_line_merge_cannot_combine_are_merged_by_field() {
    // Adjacent lines: upstream adds minReadySeconds right after replicas,
    // local changes replicas. A line merge conflicts; the fields do not.
    let upstream = replace(
        base(),
        "deployment.yaml",
        "  replicas: 1\n",
        "  replicas: 1\n  minReadySeconds: 5\n",
    );
    let local = replace(local(), "deployment.yaml", "replicas: 1", "replicas: 3");
    let merged = merge(&base(), &upstream, &local);
    assert_clean(&merged);
    // Written anew: the comment is gone, key order is local's with the
    // upstream key appended, sequences indented under their key.
    assert_eq!(
        text(&merged, "deployment.yaml"),
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels:
    app: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: nginx:1.25
          ports:
            - name: http
              containerPort: 80
          env:
            - name: LOG_LEVEL
              value: info
        - name: sidecar
          image: envoyproxy/envoy:v1.28.0
  minReadySeconds: 5
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  selector:
    app: web
  ports:
    - name: http
      port: 80
      targetPort: http
"#
    );
}

#[test]
fn containers_and_env_merge_by_name() {
    // Upstream: a new env var on web, a new sidecar image, a new init-free
    // container. Local: its own env var on web and a log level change.
    let upstream = replace(
        base(),
        "deployment.yaml",
        "              value: info\n        - name: sidecar\n          image: envoyproxy/envoy:v1.28.0\n",
        "              value: info\n            - name: FEATURE_CART\n              value: \"on\"\n        - name: sidecar\n          image: envoyproxy/envoy:v1.30.1\n        - name: metrics\n          image: prom/statsd-exporter:v0.26.0\n",
    );
    let local = edit(local(), "deployment.yaml", |text| {
        text.replace(
            "            - name: LOG_LEVEL\n              value: info\n",
            "            - name: LOG_FORMAT\n              value: json\n            - name: LOG_LEVEL\n              value: debug\n",
        )
        .replace("  template:\n", "  strategy:\n    type: Recreate\n  template:\n")
    });
    let merged = merge(&base(), &upstream, &local);
    assert_clean(&merged);
    assert_eq!(
        text(&merged, "deployment.yaml"),
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels:
    app: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  strategy:
    type: Recreate
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: nginx:1.25
          ports:
            - name: http
              containerPort: 80
          env:
            - name: LOG_FORMAT
              value: json
            - name: LOG_LEVEL
              value: debug
            - name: FEATURE_CART
              value: "on"
        - name: sidecar
          image: envoyproxy/envoy:v1.30.1
        - name: metrics
          image: prom/statsd-exporter:v0.26.0
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  selector:
    app: web
  ports:
    - name: http
      port: 80
      targetPort: http
"#
    );
}

#[test]
fn the_same_field_changed_differently_is_a_conflict_naming_resource_and_field() {
    let upstream = edit(base(), "deployment.yaml", |text| {
        text.replace("nginx:1.25", "nginx:1.27")
            .replace("replicas: 1", "replicas: 2")
    });
    let local = replace(
        local(),
        "deployment.yaml",
        "nginx:1.25",
        "nginx:1.25-alpine",
    );
    let merged = merge(&base(), &upstream, &local);
    assert_eq!(
        merged.conflicts,
        vec![Conflict {
            path: "deployment.yaml".into(),
            resource: Some(web_deployment()),
            field: Some("spec.template.spec.containers[name=web].image".into()),
            detail: "changed upstream from \"nginx:1.25\" to \"nginx:1.27\" and locally to \
                     \"nginx:1.25-alpine\"; the local value is kept"
                .into(),
        }]
    );
    assert_eq!(
        merged.conflicts[0].to_string(),
        "deployment.yaml: apps/v1 Deployment default/web: \
         spec.template.spec.containers[name=web].image: changed upstream from \"nginx:1.25\" \
         to \"nginx:1.27\" and locally to \"nginx:1.25-alpine\"; the local value is kept"
    );
    // The rest of the merge still happened: upstream's replicas, local's image.
    let merged_text = text(&merged, "deployment.yaml");
    assert!(merged_text.contains("  replicas: 2\n"), "{merged_text}");
    assert!(
        merged_text.contains("image: nginx:1.25-alpine\n"),
        "{merged_text}"
    );
    assert!(!merged_text.contains("nginx:1.27"), "{merged_text}");
}

#[test]
fn a_resource_added_upstream_is_appended_after_the_local_ones() {
    let upstream = edit(base(), "configmap.yaml", |text| {
        format!(
            "{text}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-features\n  namespace: default\ndata:\n  cart: \"on\"\n"
        )
    });
    let upstream = package_with(
        upstream,
        "pdb.yaml",
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: web\n  namespace: default\nspec:\n  minAvailable: 1\n",
    );
    let local = replace(
        local(),
        "configmap.yaml",
        "greeting: hello",
        "greeting: hej",
    );
    let merged = merge(&base(), &upstream, &local);
    assert_clean(&merged);
    assert_eq!(
        text(&merged, "configmap.yaml"),
        "# Settings the frontend reads at start.\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-settings\n  namespace: default\ndata:\n  greeting: hej\n  timeout: \"30s\"\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-features\n  namespace: default\ndata:\n  cart: \"on\"\n"
    );
    assert_eq!(merged.files["pdb.yaml"], upstream["pdb.yaml"]);
}

fn package_with(mut files: Files, path: &str, content: &str) -> Files {
    files.insert(path.to_string(), content.as_bytes().to_vec());
    files
}

#[test]
fn a_resource_deleted_upstream_and_untouched_locally_is_removed() {
    let service_start = DEPLOYMENT_V1
        .find("---\n")
        .expect("the deployment file has a Service");
    let upstream = edit(base(), "deployment.yaml", |_| {
        DEPLOYMENT_V1[..service_start].to_string()
    });
    let mut upstream = upstream;
    upstream.remove("configmap.yaml");
    let local = replace(local(), "deployment.yaml", "replicas: 1", "replicas: 3");
    let merged = merge(&base(), &upstream, &local);
    assert_clean(&merged);
    assert_eq!(
        text(&merged, "deployment.yaml"),
        DEPLOYMENT_V1[..service_start].replace("replicas: 1", "replicas: 3")
    );
    assert!(!merged.files.contains_key("configmap.yaml"));
}

#[test]
fn a_resource_deleted_upstream_but_changed_locally_is_a_conflict() {
    let service_start = DEPLOYMENT_V1
        .find("---\n")
        .expect("the deployment file has a Service");
    let mut upstream = edit(base(), "deployment.yaml", |_| {
        DEPLOYMENT_V1[..service_start].to_string()
    });
    upstream.remove("configmap.yaml");
    let local = edit(local(), "deployment.yaml", |text| {
        text.replace("      port: 80\n", "      port: 8080\n")
    });
    let local = replace(local, "configmap.yaml", "greeting: hello", "greeting: hej");
    let merged = merge(&base(), &upstream, &local);
    assert_eq!(
        merged.conflicts,
        vec![
            Conflict {
                path: "configmap.yaml".into(),
                resource: None,
                field: None,
                detail: "removed upstream but changed locally; the local file is kept".into(),
            },
            Conflict {
                path: "deployment.yaml".into(),
                resource: Some(web_service()),
                field: None,
                detail: "removed upstream but changed locally; the local resource is kept".into(),
            },
        ]
    );
    // The local versions stay.
    assert_eq!(merged.files["configmap.yaml"], local["configmap.yaml"]);
    assert_eq!(merged.files["deployment.yaml"], local["deployment.yaml"]);
}

#[test]
fn readme_changes_on_different_lines_are_both_kept() {
    let upstream = replace(
        base(),
        "README.md",
        "The web frontend blueprint.",
        "The web frontend blueprint, v2.",
    );
    let local = replace(
        local(),
        "README.md",
        "The container listens on port 80.",
        "The container listens on port 80; the shop exposes it as 443.",
    );
    let merged = merge(&base(), &upstream, &local);
    assert_clean(&merged);
    assert_eq!(
        text(&merged, "README.md"),
        "# web-app

The web frontend blueprint, v2.

## Usage

Set the namespace with the set-namespace function.

## Ports

The container listens on port 80; the shop exposes it as 443.
"
    );
}

#[test]
fn readme_changes_to_the_same_line_conflict() {
    let upstream = replace(
        base(),
        "README.md",
        "Set the namespace with the set-namespace function.",
        "Set the namespace with `kpt fn eval --image set-namespace`.",
    );
    let local = replace(
        local(),
        "README.md",
        "Set the namespace with the set-namespace function.",
        "The shop deploys it to the shop namespace.",
    );
    let merged = merge(&base(), &upstream, &local);
    assert_eq!(merged.conflicts.len(), 1, "{:#?}", merged.conflicts);
    let conflict = &merged.conflicts[0];
    assert_eq!(conflict.path, "README.md");
    assert_eq!(conflict.resource, None);
    assert_eq!(conflict.field, None);
    assert_eq!(
        conflict.detail,
        "upstream and local changed the same lines (1 region); the local file is kept. \
         First region:\n<<<<<<< local\nThe shop deploys it to the shop namespace.\n\
         ||||||| base\nSet the namespace with the set-namespace function.\n=======\n\
         Set the namespace with `kpt fn eval --image set-namespace`.\n>>>>>>> upstream"
    );
    assert_eq!(merged.files["README.md"], local["README.md"]);
}

#[test]
fn the_kptfile_keeps_the_local_upstream_lock_and_name() {
    // Upstream v2: a new description, a new validator, and the blueprint's
    // own upstream (it was itself derived from another package).
    let upstream = edit(base(), "Kptfile", |_| {
        r#"apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: web-app
  annotations:
    config.kubernetes.io/local-config: "true"
upstream:
  type: git
  git:
    repo: https://git.example.com/base-blueprints
    directory: /frontend
    ref: v7
  updateStrategy: resource-merge
upstreamLock:
  type: git
  git:
    repo: https://git.example.com/base-blueprints
    directory: /frontend
    ref: v7
    commit: 2222222222222222222222222222222222222222
info:
  description: The web frontend blueprint, with a cart
pipeline:
  mutators:
    - image: gcr.io/kpt-fn/set-namespace:v0.4.1
      configMap:
        namespace: default
  validators:
    - image: gcr.io/kpt-fn/kubeval:v0.3.0
"#
        .to_string()
    });
    let merged = merge(&base(), &upstream, &local());
    assert_clean(&merged);
    assert_eq!(
        text(&merged, "Kptfile"),
        r#"apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: shop-web
  annotations:
    config.kubernetes.io/local-config: "true"
upstream:
  type: git
  git:
    repo: https://git.example.com/catalog
    directory: /web-app
    ref: web-app/v1
  updateStrategy: resource-merge
upstreamLock:
  type: git
  git:
    repo: https://git.example.com/catalog
    directory: /web-app
    ref: web-app/v1
    commit: 1111111111111111111111111111111111111111
info:
  description: The web frontend blueprint, with a cart
pipeline:
  mutators:
    - image: gcr.io/kpt-fn/set-namespace:v0.4.1
      configMap:
        namespace: default
  validators:
    - image: gcr.io/kpt-fn/kubeval:v0.3.0
"#
    );
}

#[test]
fn a_file_one_side_left_alone_keeps_the_other_sides_exact_bytes() {
    // Local changes the Deployment's comments and quoting only; upstream does
    // not touch that file. Upstream changes the ConfigMap (with a comment of
    // its own); local does not touch that file.
    let local = edit(local(), "deployment.yaml", |text| {
        text.replace(
            "# The web frontend: nginx with an envoy sidecar.\n",
            "# The web frontend: nginx with an envoy sidecar.\n# Shop: three replicas in production.\n",
        )
        .replace("replicas: 1", "replicas: 3 # scaled for the shop")
    });
    let upstream = edit(base(), "configmap.yaml", |text| {
        text.replace(
            "  timeout: \"30s\"\n",
            "  # Raised for slow payment providers.\n  timeout: '45s'\n",
        )
    });
    let merged = merge(&base(), &upstream, &local);
    assert_clean(&merged);
    assert_eq!(merged.files["deployment.yaml"], local["deployment.yaml"]);
    assert_eq!(merged.files["configmap.yaml"], upstream["configmap.yaml"]);
    assert!(text(&merged, "configmap.yaml").contains("# Raised for slow payment providers.\n"));
    assert!(text(&merged, "deployment.yaml").contains("replicas: 3 # scaled for the shop\n"));
}

#[test]
fn a_merge_equal_to_the_local_documents_keeps_the_local_bytes() {
    // Both sides make the same change; local also adds comments.
    let upstream = replace(base(), "deployment.yaml", "nginx:1.25", "nginx:1.27");
    let local = replace(
        local(),
        "deployment.yaml",
        "          image: nginx:1.25\n",
        "          # Pinned by the shop's security review.\n          image: \"nginx:1.27\"\n",
    );
    let merged = merge(&base(), &upstream, &local);
    assert_clean(&merged);
    assert_eq!(merged.files["deployment.yaml"], local["deployment.yaml"]);
}

#[test]
fn a_resource_added_on_both_sides_merges_against_an_empty_base() {
    let hpa_upstream = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\n  namespace: default\nspec:\n  minReplicas: 2\n  maxReplicas: 10\n";
    let hpa_local = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\n  namespace: default\nspec:\n  minReplicas: 3\n  maxReplicas: 10\n";
    let upstream = package_with(base(), "hpa.yaml", hpa_upstream);
    let local = package_with(local(), "hpa.yaml", hpa_local);
    let merged = merge(&base(), &upstream, &local);
    assert_eq!(
        merged.conflicts,
        vec![Conflict {
            path: "hpa.yaml".into(),
            resource: Some(ResourceId {
                api_version: "autoscaling/v2".into(),
                kind: "HorizontalPodAutoscaler".into(),
                namespace: Some("default".into()),
                name: "web".into(),
            }),
            field: Some("spec.minReplicas".into()),
            detail: "added upstream as 2 and locally as 3; the local value is kept".into(),
        }]
    );
    assert_eq!(merged.files["hpa.yaml"], hpa_local.as_bytes());
}

#[test]
fn invalid_yaml_in_a_file_both_sides_changed_is_a_conflict() {
    let upstream = replace(
        base(),
        "configmap.yaml",
        "greeting: hello",
        "greeting: [hello",
    );
    let local = replace(
        local(),
        "configmap.yaml",
        "timeout: \"30s\"",
        "timeout: \"60s\"",
    );
    let merged = merge(&base(), &upstream, &local);
    assert_eq!(merged.conflicts.len(), 1, "{:#?}", merged.conflicts);
    let conflict = &merged.conflicts[0];
    assert_eq!(conflict.path, "configmap.yaml");
    assert!(
        conflict
            .detail
            .starts_with("both sides changed it, and the upstream file is not valid YAML ("),
        "{}",
        conflict.detail
    );
    assert!(conflict.detail.ends_with("; the local file is kept"));
    assert_eq!(merged.files["configmap.yaml"], local["configmap.yaml"]);
}

#[test]
fn scalars_written_anew_keep_their_text_and_meaning() {
    // Both sides change adjacent lines, so the file is written anew: the
    // version-like float, the octal mode, the all-digit commit id and the
    // YAML 1.1 boolean-like strings must come out as they went in.
    let base_cm =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: \"1\"\n  b: x\n";
    let upstream_cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  annotations:\n    version: 1.10\n    mode: 0644\n    commit: 1111111111111111111111111111111111111111\ndata:\n  a: \"yes\"\n  n: \"null\"\n  b: x\n";
    let local_cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: \"1\"\n  b: \"multi\\nline: value\\n\"\n  on: 'on'\n";
    let f = |text: &str| package(&[("cm.yaml", text)]);
    let merged = merge(&f(base_cm), &f(upstream_cm), &f(local_cm));
    assert_clean(&merged);
    assert_eq!(
        text(&merged, "cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  annotations:\n    version: 1.10\n    mode: 0644\n    commit: 1111111111111111111111111111111111111111\ndata:\n  a: \"yes\"\n  b: \"multi\\nline: value\\n\"\n  on: 'on'\n  n: \"null\"\n"
    );
}

#[test]
fn a_kptfile_local_left_alone_still_keeps_its_name_and_has_no_upstream_of_upstreams() {
    // Local's Kptfile is the base one byte for byte (no upstream section
    // yet); upstream v2 renames its Kptfile and records its own upstream.
    let local = package_with(local(), "Kptfile", KPTFILE_V1);
    let upstream = edit(base(), "Kptfile", |text| {
        text.replace("  name: web-app\n", "  name: web-frontend\n")
            .replace(
                "info:\n",
                "upstreamLock:\n  type: git\n  git:\n    repo: https://git.example.com/base-blueprints\n    directory: /frontend\n    ref: v7\n    commit: 2222222222222222222222222222222222222222\ninfo:\n",
            )
            .replace(
                "  description: The web frontend blueprint\n",
                "  description: The web frontend blueprint, with a cart\n",
            )
    });
    let merged = merge(&base(), &upstream, &local);
    assert_clean(&merged);
    assert_eq!(
        text(&merged, "Kptfile"),
        KPTFILE_V1.replace(
            "  description: The web frontend blueprint\n",
            "  description: The web frontend blueprint, with a cart\n",
        )
    );
}

#[test]
fn truncated_and_garbled_files_never_panic() {
    // Every prefix (in steps) of the deployment file as the upstream or the
    // local side, against a valid change on the other: each merge finishes,
    // and either merges cleanly or reports conflicts on deployment.yaml only.
    let changed = DEPLOYMENT_V1.replace("replicas: 1", "replicas: 3");
    for cut in (1..DEPLOYMENT_V1.len()).step_by(7) {
        let truncated = &DEPLOYMENT_V1[..cut];
        let garbled = format!("{truncated}\t: [ {{\n");
        for broken in [truncated, garbled.as_str()] {
            let broken_side = package_with(local(), "deployment.yaml", broken);
            let valid_side = package_with(local(), "deployment.yaml", &changed);
            for (upstream, local) in [(&broken_side, &valid_side), (&valid_side, &broken_side)] {
                let merged = merge(&base(), upstream, local);
                for conflict in &merged.conflicts {
                    assert_eq!(conflict.path, "deployment.yaml", "{conflict}");
                }
                assert!(merged.files.contains_key("deployment.yaml"));
            }
        }
    }
}
