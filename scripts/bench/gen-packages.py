#!/usr/bin/env python3
"""Write a git fast-import stream: PACKAGES kpt packages, each added in its own
commit, then EDITS commits that each change one package's ConfigMap.
About 8 objects per package plus 4 per edit."""
import sys

packages = int(sys.argv[1])
edits = int(sys.argv[2])
out = sys.stdout.buffer
mark = 0
when = 1_700_000_000


def blob(text):
    global mark
    mark += 1
    data = text.encode()
    out.write(b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(data), data))
    return mark


def commit(message, files, first):
    global when
    when += 60
    msg = message.encode()
    out.write(b"commit refs/heads/main\ncommitter Bench <bench@example.com> %d +0000\ndata %d\n%s\n" % (when, len(msg), msg))
    if first:
        out.write(b"from 0000000000000000000000000000000000000000\n")
    for path, m in files:
        out.write(b"M 100644 :%d %s\n" % (m, path.encode()))
    out.write(b"\n")


for p in range(packages):
    name = f"pkg{p:04d}"
    files = [
        (f"{name}/Kptfile", blob(f"apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: {name}\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\ninfo:\n  description: benchmark package {p}\n")),
        (f"{name}/deployment.yaml", blob(f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: ns-{p % 50}\nspec:\n  replicas: {1 + p % 5}\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n      - name: app\n        image: registry.example.com/{name}:v{p % 7}\n        ports:\n        - containerPort: {8000 + p % 1000}\n")),
        (f"{name}/service.yaml", blob(f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: ns-{p % 50}\nspec:\n  selector:\n    app: {name}\n  ports:\n  - port: 80\n    targetPort: {8000 + p % 1000}\n")),
        (f"{name}/configmap.yaml", blob(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-config\ndata:\n  revision: \"0\"\n  owner: team-{p % 13}\n")),
        (f"{name}/README.md", blob(f"# {name}\n\nBenchmark package number {p}.\n")),
    ]
    commit(f"Add package {name}", files, p == 0)

for e in range(edits):
    p = (e * 7919) % packages
    name = f"pkg{p:04d}"
    m = blob(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-config\ndata:\n  revision: \"{e + 1}\"\n  owner: team-{p % 13}\n")
    commit(f"{name}: revision {e + 1}", [(f"{name}/configmap.yaml", m)], False)
