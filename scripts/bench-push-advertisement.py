#!/usr/bin/env python3
"""What a push costs as published revisions pile up (issue 14, item 4).

For repositories holding N published tags (default 1,000 and 10,000: N
packages, each with a published v1), two cadgate servers run side by side,
each on its own copy of the repository: the baseline build (by default the commit
before the one that added smart_http/push_advertisement.rs) and this tree's build, both
release, each built from `git archive` of its commit. Interleaved, sample by sample:
  - the bytes of the authoring view's receive-pack advertisement
    (`GET /bench.git/info/refs?service=git-receive-pack`, no compression
    asked for) and how many refs it lists;
  - a one-package draft push (`git push origin HEAD:refs/heads/drafts/F/ws`
    of a fresh commit), timed from start to exit.

Writes its section of BENCHMARKS.md. Usage:
  scripts/bench-push-advertisement.py [--sizes 1000,10000] [--runs 30] [--baseline <commit>] [--after <commit, default HEAD>]
"""
import argparse, base64, datetime, hashlib, importlib.util, os, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmarks_md import write_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The repository generator of bench-publish.py: N packages, each tagged v1.
_spec = importlib.util.spec_from_file_location("bench_publish", os.path.join(ROOT, "scripts", "bench-publish.py"))
bench_publish = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_publish)
run, timed, generate = bench_publish.run, bench_publish.timed, bench_publish.generate

TOKEN = "bench-token"


def build(source, out):
    """A release build of cadgate from `source`, copied to `out`."""
    run("cargo", "build", "--release", "-q", "-p", "cadgate", cwd=source,
        env=dict(os.environ, CARGO_TARGET_DIR=os.path.join(ROOT, "target")))
    shutil.copy(os.path.join(ROOT, "target", "release", "cadgate"), out)


def extract(commit, into):
    """The tree of `commit`, written to the directory `into`."""
    os.makedirs(into)
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
    # `-m`: the files get the time of extraction. Cargo names a workspace
    # crate's build by its path relative to the workspace, so both trees
    # share the same outputs in target/; it rebuilds only sources newer
    # than those outputs (git archive's commit times would be older).
    subprocess.run(["tar", "-x", "-m", "-C", into], input=archive, check=True)
    return into


def start(binary, data, work, label):
    sock = socket.socket(); sock.bind(("127.0.0.1", 0)); port = sock.getsockname()[1]; sock.close()
    config = os.path.join(work, f"{label}.toml")
    with open(config, "w") as f:
        f.write(f'[server]\nlisten = "127.0.0.1:{port}"\ndata_dir = "{data}"\n\n[policy]\nself_approval = true\n\n'
                f'[[repository]]\nname = "bench"\n\n[[user]]\nname = "bench"\ntoken_sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"\nroles = ["admin"]\n')
    server = subprocess.Popen([binary, "serve", "--config", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return server, port
        except Exception:
            time.sleep(0.1)
    server.terminate()
    sys.exit(f"{label}: the server did not start")


def advertisement(port):
    """(bytes, refs listed) of the receive-pack advertisement."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/bench.git/info/refs?service=git-receive-pack",
        headers={"Authorization": "Basic " + base64.b64encode(f"bench:{TOKEN}".encode()).decode()})
    body = urllib.request.urlopen(request, timeout=60).read()
    refs, i = 0, 0
    while i + 4 <= len(body):
        n = int(body[i:i + 4], 16)
        if n == 0:
            i += 4
            continue
        line = body[i + 4:i + n]
        if not line.startswith(b"#") and b"capabilities^{}" not in line:
            refs += 1
        i += n
    return len(body), refs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--baseline", default=None, help="commit to compare with (default: the one before the change)")
    parser.add_argument("--after", default="HEAD", help="commit to measure (default: HEAD; commit first)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.baseline is None:
        # The commit before the one that added the change.
        added = run("git", "log", "--diff-filter=A", "--format=%H", "--", "proxy/src/smart_http/push_advertisement.rs", cwd=ROOT).split()
        args.baseline = f"{added[-1]}^"
    baseline = args.baseline
    baseline = run("git", "rev-parse", "--short=12", baseline, cwd=ROOT)
    work = tempfile.mkdtemp(prefix="cadgate-bench-push-adv.")
    env = dict(os.environ, HOME=work, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.path.join(work, "gitconfig"), GIT_TERMINAL_PROMPT="0")
    run("git", "config", "--global", "user.name", "Bench", env=env)
    run("git", "config", "--global", "user.email", "bench@example.com", env=env)
    rows = []
    try:
        print(f"==> building the baseline {baseline} (release)", file=sys.stderr)
        builds = {"before": os.path.join(work, "cadgate-before"), "after": os.path.join(work, "cadgate-after")}
        build(extract(baseline, os.path.join(work, "baseline-src")), builds["before"])
        after = run("git", "rev-parse", "--short=12", args.after, cwd=ROOT)
        print(f"==> building {after} (release)", file=sys.stderr)
        build(extract(after, os.path.join(work, "after-src")), builds["after"])
        if open(builds["before"], "rb").read() == open(builds["after"], "rb").read():
            sys.exit("the two builds are the same binary: cargo did not rebuild")
        for n in sizes:
            print(f"==> {n} tags", file=sys.stderr)
            seed = os.path.join(work, f"seed{n}.git")
            generate(seed, n)
            servers, clones = {}, {}
            try:
                for label, binary in builds.items():
                    data = os.path.join(work, f"data-{label}-{n}")
                    os.makedirs(os.path.join(data, "repositories"))
                    shutil.copytree(seed, os.path.join(data, "repositories", "bench.git"))
                    servers[label] = start(binary, data, work, f"{label}-{n}")
                    clone = os.path.join(work, f"w-{label}-{n}")
                    run("git", "clone", "-q", "--no-tags", f"http://bench:{TOKEN}@127.0.0.1:{servers[label][1]}/bench.git", clone, env=env)
                    clones[label] = clone
                ads = {label: [] for label in builds}
                pushes = {label: [] for label in builds}
                order = list(builds)
                for r in range(args.runs):
                    for label in order:
                        ads[label].append(advertisement(servers[label][1]))
                        clone = clones[label]
                        pkg = f"pkg{(r * 7919) % n:05d}"
                        with open(os.path.join(clone, pkg, "data.yaml"), "w") as f:
                            f.write(f"draft: {r}\n")
                        run("git", "commit", "-qam", f"{pkg} draft {r}", cwd=clone, env=env)
                        pushes[label].append(timed("git", "push", "-q", "origin", f"HEAD:refs/heads/drafts/{pkg}/d{r}", cwd=clone, env=env))
                        run("git", "reset", "-q", "--hard", "origin/main", cwd=clone, env=env)
                    order.reverse()
            finally:
                for server, _ in servers.values():
                    server.terminate(); server.wait()
            rows.append((n, {label: (statistics.median(b for b, _ in ads[label]), statistics.median(c for _, c in ads[label]),
                                     statistics.median(pushes[label]), min(pushes[label]), max(pushes[label]))
                             for label in builds}))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
    lines = []
    for n, m in rows:
        b, a = m["before"], m["after"]
        lines.append(f"| {n} | {b[0]:,.0f} B, {b[1]:.0f} refs | {a[0]:,.0f} B, {a[1]:.0f} refs "
                     f"| {b[2]:.0f} ({b[3]:.0f}–{b[4]:.0f}) | {a[2]:.0f} ({a[3]:.0f}–{a[4]:.0f}) | {a[2] / b[2]:.2f}× |")
    flat_bytes = rows[-1][1]["after"][0] == rows[0][1]["after"][0]
    growth = rows[-1][1]["after"][2] / rows[0][1]["after"][2] if rows else 0
    met = lambda ok: "**met**" if ok else "**not met**"
    section = f"""<!-- bench-push-advertisement:start -->
## What a pusher is shown: the receive-pack advertisement (issue 14, item 4)

`scripts/bench-push-advertisement.py --sizes {args.sizes} --runs {args.runs}` — {datetime.date.today()}, {os.cpu_count()} cores ({cpu}), {run('git', '--version')}.
Each repository holds N packages at its root, each with a published v1 (N tags, packed refs). Two cadgate servers (release builds) run side by side on copies of it:
before = commit `{baseline}`, after = commit `{after}`. Samples are interleaved (before, after, after, before, …), {args.runs} per server and size.
Advertisement: `GET /bench.git/info/refs?service=git-receive-pack` without `Accept-Encoding` (the same bytes every sample).
Draft push: `git push -q origin HEAD:refs/heads/drafts/F/dR` of a fresh one-file commit, timed to exit; median (min–max) in ms. With {args.runs} samples no p99 is claimed.

| tags | advertisement before | advertisement after | draft push before | draft push after | after / before |
|---|---|---|---|---|---|
{chr(10).join(lines)}

The advertisement after the change lists the branch and what the pusher's own pushes made (drafts, proposals, deletion proposals, notes) and no tag without a deletion proposal, so its size does not depend on N — {met(flat_bytes)} ({rows[0][1]["after"][0]:,.0f} B at {rows[0][0]}, {rows[-1][1]["after"][0]:,.0f} B at {rows[-1][0]}).
Draft push from the smallest to the largest repository after the change: {growth:.2f}× (goal ≤ 1.3× from 1,000 to 100,000 revisions — {met(growth <= 1.3)} over the sizes measured here).
The advertisement is no longer what grows (the same bytes at every size); the rest of the push (git's own receive-pack work over N refs, cadgate's hook, the N-entry root tree every commit carries here) was not broken down by this script.
The machine was shared with other builds while this ran: see the min–max spread.
<!-- bench-push-advertisement:end -->"""
    write_section("bench-push-advertisement", section)


if __name__ == "__main__":
    main()
