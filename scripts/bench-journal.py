#!/usr/bin/env python3
"""What the intent journal costs a publish (issue 12, finding 3).

Builds the proc-receive hook twice — from this checkout and from the commit
before the journal existed (--base) — and publishes over file:// into two
bare copies of the same repository, one per hook, with the same settings.
The two sides are interleaved (which goes first alternates every run), so
drift of the machine hits both alike. Each publish is the `git push
+proposal:main` that the hook turns into approval commit + tag + proposal
deletion + notes, timed from start to exit. Reports medians and p90.

Writes its section of BENCHMARKS.md. Usage:
  scripts/bench-journal.py [--runs 60] [--packages 1000] [--base COMMIT] [--debug]
"""
import argparse, datetime, os, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmarks_md import write_section  # noqa: E402
from importlib import import_module  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
publish_bench = import_module("bench-publish")
run, timed, generate, percentile = publish_bench.run, publish_bench.timed, publish_bench.generate, publish_bench.percentile


def build(source, profile, out):
    """Build cadgate-hook from the checkout at `source`, copy it to `out`."""
    args = ["cargo", "build", "-q", "-p", "cadgate-hooks", "--bin", "cadgate-hook"]
    if profile == "release":
        args.append("--release")
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(ROOT, "target"))
    run(*args, cwd=source, env=env)
    shutil.copy(os.path.join(ROOT, "target", profile, "cadgate-hook"), out)


def transactions(work, env, seed, count):
    """git's own publish transaction (branch, tag, proposal deletion, notes:
    one `update-ref --stdin`) in a files and a reftable copy, interleaved.
    Medians in ms (process start to exit)."""
    times = {}
    repos = {}
    for backend in ("files", "reftable"):
        repo = os.path.join(work, f"tx-{backend}.git")
        run("git", "init", "-q", "--bare", f"--ref-format={backend}", repo, env=env)
        run("git", "--git-dir", repo, "fetch", "-q", seed, "+refs/heads/main:refs/heads/main", env=env)
        times[backend] = []
        repos[backend] = repo
    c = run("git", "--git-dir", repos["files"], "rev-parse", "main", env=env)
    tree = run("git", "--git-dir", repos["files"], "rev-parse", "main^{tree}", env=env)
    for repo in repos.values():
        d = run("git", "--git-dir", repo, "commit-tree", tree, "-p", c, "-m", "approval", env=env)
    for i in range(count):
        order = ("files", "reftable") if i % 2 == 0 else ("reftable", "files")
        old, new = (c, d) if i % 2 == 0 else (d, c)
        for backend in order:
            repo = repos[backend]
            run("git", "--git-dir", repo, "update-ref", f"refs/heads/proposed/p/w{i}", c, env=env)
            script = (f"start\nupdate refs/heads/main {new} {old}\ncreate refs/tags/p/v{i} {new}\n"
                      f"delete refs/heads/proposed/p/w{i} {c}\nupdate refs/notes/cadgate {new} {old if i else '0' * 40}\n"
                      "prepare\ncommit\n")
            start = time.perf_counter()
            subprocess.run(["git", "--git-dir", repo, "update-ref", "--stdin"], input=script.encode(), env=env, check=True, capture_output=True)
            times[backend].append((time.perf_counter() - start) * 1000)
    return {b: statistics.median(t) for b, t in times.items()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--base", default=None, help="the commit before the journal (default: found from git log)")
    parser.add_argument("--debug", action="store_true", help="debug builds (faster to build; the journal's cost is I/O)")
    args = parser.parse_args()
    profile = "debug" if args.debug else "release"
    base = args.base or run("git", "log", "-1", "--format=%H", "--diff-filter=A", "--", "hooks/src/journal.rs", cwd=ROOT) + "^"
    base = run("git", "rev-parse", "--short", base, cwd=ROOT)
    work = tempfile.mkdtemp(prefix="cadgate-bench-journal.", dir=os.path.join(ROOT, "target"))
    env = dict(os.environ, HOME=work, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.path.join(work, "gitconfig"), GIT_TERMINAL_PROMPT="0")
    run("git", "config", "--global", "user.name", "Bench", env=env)
    run("git", "config", "--global", "user.email", "bench@example.com", env=env)
    try:
        # The base first: the shared target directory ends with this checkout's build.
        print(f"==> building the hook at {base} and here ({profile})", file=sys.stderr)
        tree = os.path.join(work, "base-tree")
        os.makedirs(tree)
        archive = subprocess.run(["git", "archive", base], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        build(tree, profile, os.path.join(work, "hook-base"))
        build(ROOT, profile, os.path.join(work, "hook-journal"))
        seed = os.path.join(work, "seed.git")
        generate(seed, args.packages)
        sides = {}
        for side in ("base", "journal"):
            hooks = os.path.join(work, f"hooks-{side}")
            os.makedirs(hooks)
            with open(os.path.join(hooks, "proc-receive"), "w") as f:
                f.write(f"#!/bin/sh\nexec '{os.path.join(work, 'hook-' + side)}' proc-receive\n")
            os.chmod(os.path.join(hooks, "proc-receive"), 0o755)
            repo = os.path.join(work, f"{side}.git")
            run("git", "clone", "-q", "--bare", seed, repo, env=env)
            for key, value in (("core.hooksPath", hooks), ("receive.procReceiveRefs", "refs"), ("receive.autogc", "false"),
                               ("core.logAllRefUpdates", "always")):
                run("git", "--git-dir", repo, "config", key, value, env=env)
            clone = os.path.join(work, f"w-{side}")
            run("git", "clone", "-q", repo, clone, env=env)
            sides[side] = (repo, clone, [])
        denv = dict(env, CADGATE_USER="bench", CADGATE_ROLE="admin", CADGATE_SELF_APPROVAL="true")
        for r in range(args.runs):
            order = ("base", "journal") if r % 2 == 0 else ("journal", "base")
            for side in order:
                repo, clone, times = sides[side]
                pkg = f"pkg{(r * 7919) % args.packages:05d}"
                run("git", "fetch", "-q", "origin", cwd=clone, env=env)
                run("git", "reset", "-q", "--hard", "origin/main", cwd=clone, env=env)
                with open(os.path.join(clone, pkg, "data.yaml"), "w") as f:
                    f.write(f"run: {r}\n")
                run("git", "commit", "-qam", f"{pkg} run {r}", cwd=clone, env=env)
                run("git", "push", "-q", "origin", f"HEAD:refs/heads/drafts/{pkg}/r{r}", cwd=clone, env=denv)
                run("git", "push", "-q", "origin", f"HEAD:refs/heads/proposed/{pkg}/r{r}", cwd=clone, env=denv)
                times.append(timed("git", "push", "-q", "origin", "+HEAD:refs/heads/main", cwd=clone, env=denv))
        tx = transactions(work, env, seed, args.runs)
        for side in ("base", "journal"):
            repo = sides[side][0]
            tags = run("git", "--git-dir", repo, "tag", "--list", "*/v2", env=env).split()
            if len(tags) != args.runs:
                sys.exit(f"{side}: {len(tags)} publishes landed of {args.runs}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base_t, journal_t = sides["base"][2], sides["journal"][2]
    mb, mj = statistics.median(base_t), statistics.median(journal_t)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
    fs = run("df", "--output=fstype", ROOT).split()[-1]
    git_version = run("git", "--version")
    section = f"""<!-- bench-journal:start -->
## The intent journal's cost per publish (issue 12)

`scripts/bench-journal.py --runs {args.runs} --packages {args.packages}{' --debug' if args.debug else ''}` — {datetime.date.today()}, {os.cpu_count()} cores ({cpu}), {git_version}, {fs} file system, {profile} build.
The same publish (`git push +proposal:main` over file://, which the hook turns into approval commit, tag, proposal deletion and notes in one ref transaction) into two bare copies of a repository holding {args.packages} published packages: one hook built at `{base}` (before the journal), one built from this checkout (journal written and fsynced with its directory before the transaction, removed after; stale-lock scan under the lifecycle lock). The sides alternate run by run. Milliseconds.

| hook | publish p50 | publish p90 |
|---|---|---|
| without the journal (`{base}`) | {mb:.1f} | {percentile(base_t, 0.9):.1f} |
| with the journal | {mj:.1f} | {percentile(journal_t, 0.9):.1f} |

The journal adds {mj - mb:+.1f} ms to the median publish ({(mj / mb - 1) * 100:+.1f}%): one file fsync and two directory fsyncs, and a scan of `refs/` for stale locks.
For scale, git's own publish transaction alone (`git update-ref --stdin` of branch, tag, proposal deletion and notes, {args.runs} interleaved runs, process start to exit): files backend {tx["files"]:.1f} ms, reftable {tx["reftable"]:.1f} ms (median). Reftable is not used: cadgate reads refs with gix and Porch with go-git, and neither reads reftable (docs/crash-recovery.md).
Load average when the runs ended: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (a shared machine: compare medians; the p90s carry its noise).
<!-- bench-journal:end -->"""
    write_section("bench-journal", section)


if __name__ == "__main__":
    main()
