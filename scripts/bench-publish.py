#!/usr/bin/env python3
"""Publish latency and draft-push overhead (issue 3).

For repositories holding N published packages (default 10, 1000, 10000):
  - publish latency through cadgate: the `git push +proposal:main` that
    publishes, timed from start to exit, p50/p99 over --runs publishes;
  - draft push: the same one-package draft pushed over file:// into a bare
    copy of the repository with cadgate's proc-receive hook installed, and
    into one without hooks; the ratio is the hook's overhead.

Writes its section of BENCHMARKS.md. Usage:
  scripts/bench-publish.py [--sizes 10,1000,10000] [--runs 30]
"""
import argparse, hashlib, os, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request, datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmarks_md import write_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args, cwd=None, env=None, stdin=None):
    out = subprocess.run(args, cwd=cwd, env=env, input=stdin, capture_output=True)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, args))}\n{out.stderr.decode()}")
    return out.stdout.decode().strip()


def timed(*args, cwd=None, env=None):
    start = time.perf_counter()
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True)
    elapsed = (time.perf_counter() - start) * 1000
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{out.stderr.decode()}")
    return elapsed


def kptfile(name):
    return f"apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: {name}\n"


def generate(git_dir, n):
    """A bare repository whose main holds n packages, each tagged v1."""
    run("git", "init", "-q", "--bare", "-b", "main", git_dir)
    lines = []
    mark = 0
    files = []
    for i in range(n):
        for path, text in ((f"pkg{i:05d}/Kptfile", kptfile(f"pkg{i:05d}")), (f"pkg{i:05d}/data.yaml", f"n: {i}\n")):
            mark += 1
            data = text.encode()
            lines.append(b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(data), data))
            files.append((path, mark))
    lines.append(b"commit refs/heads/main\ncommitter Bench <b@example.com> 1700000000 +0000\ndata 5\nseed\n")
    lines += [b"M 100644 :%d %s\n" % (m, p.encode()) for p, m in files]
    lines.append(b"\n")
    run("git", "--git-dir", git_dir, "fast-import", "--quiet", stdin=b"".join(lines))
    main = run("git", "--git-dir", git_dir, "rev-parse", "main")
    refs = "".join(f"create refs/tags/pkg{i:05d}/v1 {main}\n" for i in range(n))
    run("git", "--git-dir", git_dir, "update-ref", "--stdin", stdin=refs.encode())
    run("git", "--git-dir", git_dir, "pack-refs", "--all")
    run("git", "--git-dir", git_dir, "repack", "-adq")


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print("==> building cadgate (release)", file=sys.stderr)
    run("cargo", "build", "--release", "-q", "-p", "cadgate", "-p", "cadgate-hooks", cwd=ROOT)
    cadgate = os.path.join(ROOT, "target/release/cadgate")
    hook_bin = os.path.join(ROOT, "target/release/cadgate-hook")
    work = tempfile.mkdtemp(prefix="cadgate-bench-publish.")
    env = dict(os.environ, HOME=work, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.path.join(work, "gitconfig"), GIT_TERMINAL_PROMPT="0")
    run("git", "config", "--global", "user.name", "Bench", env=env)
    run("git", "config", "--global", "user.email", "bench@example.com", env=env)
    rows = []
    try:
        for n in sizes:
            print(f"==> {n} packages", file=sys.stderr)
            data = os.path.join(work, f"data{n}")
            repo = os.path.join(data, "repositories", "bench.git")
            os.makedirs(os.path.dirname(repo))
            generate(repo, n)
            token = "bench-token"
            sock = socket.socket(); sock.bind(("127.0.0.1", 0)); port = sock.getsockname()[1]; sock.close()
            config = os.path.join(work, f"c{n}.toml")
            with open(config, "w") as f:
                f.write(f'[server]\nlisten = "127.0.0.1:{port}"\ndata_dir = "{data}"\n\n[policy]\nself_approval = true\n\n'
                        f'[[repository]]\nname = "bench"\n\n[[user]]\nname = "bench"\ntoken_sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"\nroles = ["admin"]\n')
            server = subprocess.Popen([cadgate, "serve", "--config", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                for _ in range(200):
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1); break
                    except Exception:
                        time.sleep(0.05)
                url = f"http://bench:{token}@127.0.0.1:{port}/bench.git"
                clone = os.path.join(work, f"w{n}")
                run("git", "clone", "-q", url, clone, env=env)
                publish = []
                for r in range(args.runs):
                    pkg = f"pkg{(r * 7919) % n:05d}"
                    run("git", "fetch", "-q", "origin", cwd=clone, env=env)
                    run("git", "reset", "-q", "--hard", "origin/main", cwd=clone, env=env)
                    with open(os.path.join(clone, pkg, "data.yaml"), "w") as f:
                        f.write(f"run: {r}\n")
                    run("git", "commit", "-qam", f"{pkg} run {r}", cwd=clone, env=env)
                    run("git", "push", "-q", "origin", f"HEAD:refs/heads/drafts/{pkg}/r{r}", cwd=clone, env=env)
                    run("git", "push", "-q", "origin", f"HEAD:refs/heads/proposed/{pkg}/r{r}", cwd=clone, env=env)
                    publish.append(timed("git", "push", "-q", "origin", "+HEAD:refs/heads/main", cwd=clone, env=env))
            finally:
                server.terminate(); server.wait()
            # Draft push overhead: the hook versus no hook, same file:// push.
            hooks = os.path.join(work, f"hooks{n}")
            os.makedirs(hooks)
            with open(os.path.join(hooks, "proc-receive"), "w") as f:
                f.write(f"#!/bin/sh\nexec '{hook_bin}' proc-receive\n")
            os.chmod(os.path.join(hooks, "proc-receive"), 0o755)
            plain = os.path.join(work, f"plain{n}.git")
            hooked = os.path.join(work, f"hooked{n}.git")
            for target in (plain, hooked):
                run("git", "clone", "-q", "--bare", repo, target, env=env)
            run("git", "--git-dir", hooked, "config", "core.hooksPath", hooks, env=env)
            run("git", "--git-dir", hooked, "config", "receive.procReceiveRefs", "refs", env=env)
            denv = dict(env, CADGATE_USER="bench", CADGATE_ROLE="admin", CADGATE_SELF_APPROVAL="true")
            draft_plain, draft_hooked, publish_plain, publish_hooked = [], [], [], []
            for r in range(args.runs):
                pkg = f"pkg{(r * 104729) % n:05d}"
                run("git", "fetch", "-q", hooked, "main", cwd=clone, env=env)
                run("git", "reset", "-q", "--hard", "FETCH_HEAD", cwd=clone, env=env)
                with open(os.path.join(clone, pkg, "data.yaml"), "w") as f:
                    f.write(f"draft: {r}\n")
                run("git", "commit", "-qam", f"{pkg} draft {r}", cwd=clone, env=env)
                ref = f"HEAD:refs/heads/drafts/{pkg}/d{r}"
                draft_plain.append(timed("git", "push", "-q", plain, ref, cwd=clone, env=denv))
                draft_hooked.append(timed("git", "push", "-q", hooked, ref, cwd=clone, env=denv))
                # Publish over file://: the hook's publish versus moving the
                # branch to the same commit with no hook at all.
                run("git", "push", "-q", hooked, f"HEAD:refs/heads/proposed/{pkg}/d{r}", cwd=clone, env=denv)
                publish_hooked.append(timed("git", "push", "-q", hooked, "+HEAD:refs/heads/main", cwd=clone, env=denv))
                publish_plain.append(timed("git", "push", "-q", plain, "+HEAD:refs/heads/main", cwd=clone, env=denv))
            rows.append((n, statistics.median(publish), percentile(publish, 0.99), statistics.median(draft_hooked), statistics.median(draft_plain),
                         statistics.median(publish_hooked), statistics.median(publish_plain)))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
    table = "\n".join(f"| {n} | {p50:.0f} | {p99:.0f} | {ph:.0f} | {pp:.0f} | {ph / pp:.2f}× | {dh:.0f} | {dp:.0f} | {dh / dp:.2f}× |"
                      for n, p50, p99, dh, dp, ph, pp in rows)
    worst = max(r[2] for r in rows)
    growth = rows[-1][2] / rows[0][2] if rows else 0
    plain_growth = rows[-1][6] / rows[0][6] if rows else 0
    added = ", ".join(f"{r[5] - r[6]:.0f} ms at {r[0]}" for r in rows)
    overhead = max(r[3] / r[4] for r in rows)
    met = lambda ok: "**met**" if ok else "**not met**"
    section = f"""<!-- bench-publish:start -->
## Publish latency and draft push overhead (issue 3)

`scripts/bench-publish.py --sizes {args.sizes} --runs {args.runs}` — {datetime.date.today()}, {os.cpu_count()} cores ({cpu}), {run('git', '--version')}.
Each repository holds N packages at its root, each with a published v1 (so the root tree has N entries and N tags are advertised).
Publish via HTTP: the `git push +proposal:main` through cadgate (release build), timed to exit, p50/p99.
Over file:// into two bare copies, one with cadgate's proc-receive hook and one without hooks, medians:
publish (the same `git push +HEAD:main`, which the hook turns into approval commit + tag) and a one-package draft push. Milliseconds.

| packages | HTTP publish p50 | HTTP publish p99 | file:// publish, hook | branch push, no hook | ratio | draft push, hook | draft push, no hook | ratio |
|---|---|---|---|---|---|---|---|---|
{table}

Goals: publish p99 < 250 ms — worst {worst:.0f} ms, {met(worst < 250)}.
Publish p99 within 1.5× from the smallest to the largest repository — {growth:.2f}×, {met(growth <= 1.5)}: the same push without any hook grows {plain_growth:.2f}× over that range
(git's own ref advertisement, `--not --all` negotiation and connectivity check over N tags, and an N-entry root tree in every commit); what the hook adds is {added}.
Draft push ≤ 1.3× the unhooked push — worst {overhead:.2f}×, {met(overhead <= 1.3)}.
<!-- bench-publish:end -->"""
    write_section("bench-publish", section)


if __name__ == "__main__":
    main()
