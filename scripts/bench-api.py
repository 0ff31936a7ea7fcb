#!/usr/bin/env python3
"""The JSON API's listing at scale (issue 7).

A repository with --packages packages x --revisions published revisions
(100,000 package revisions by default), served by cadgate (release build).
Measures, in milliseconds, p50/p99 over --calls:
  - the full listing, GET /api/v1/repositories/bench/revisions (10,000 per
    page, every page followed through its continue token);
  - a filtered listing of one package (?package=pkgNNNNN);
and cadgate's resident memory after the first call and after all of them
(VmRSS), with its peak (VmHWM). Plain git's floor in the same run:
`git for-each-ref` of the same repository. Writes its section of
BENCHMARKS.md. Usage:
  scripts/bench-api.py [--packages 10000] [--revisions 10] [--calls 20]
"""
import argparse, base64, datetime, hashlib, importlib.util, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmarks_md import write_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("bench_view", os.path.join(ROOT, "scripts", "bench-published-view.py"))
bench_view = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_view)
run, generate, percentile = bench_view.run, bench_view.generate, bench_view.percentile


def memory_kib(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--packages", type=int, default=10000)
    parser.add_argument("--revisions", type=int, default=10)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    print("==> building cadgate (release)", file=sys.stderr)
    run("cargo", "build", "--release", "-q", "-p", "cadgate", cwd=ROOT)
    cadgate = os.path.join(ROOT, "target/release/cadgate")
    work = tempfile.mkdtemp(prefix="cadgate-bench-api.")
    server = None
    try:
        data = os.path.join(work, "data")
        authoring = os.path.join(data, "repositories", "bench.git")
        os.makedirs(os.path.dirname(authoring))
        total = args.packages * args.revisions
        print(f"==> generating {args.packages} packages x {args.revisions} revisions", file=sys.stderr)
        generate(authoring, args.packages, args.revisions)
        token = "bench-token"
        sock = socket.socket(); sock.bind(("127.0.0.1", 0)); port = sock.getsockname()[1]; sock.close()
        config = os.path.join(work, "cadgate.toml")
        with open(config, "w") as f:
            f.write(f'[server]\nlisten = "127.0.0.1:{port}"\ndata_dir = "{data}"\n\n[[repository]]\nname = "bench"\n\n'
                    f'[[user]]\nname = "bench"\ntoken_sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"\nroles = ["reader"]\n')
        print("==> starting cadgate (builds the published view first)", file=sys.stderr)
        server = subprocess.Popen([cadgate, "serve", "--config", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(12000):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1); break
            except Exception:
                if server.poll() is not None:
                    sys.exit("cadgate exited during start")
                time.sleep(0.05)
        auth = "Basic " + base64.b64encode(f"bench:{token}".encode()).decode()
        base = f"http://127.0.0.1:{port}/api/v1/repositories/bench/revisions"

        def fetch(url):
            with urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": auth}), timeout=600) as r:
                return r.read()

        def timed_get(url):
            """Milliseconds to the last byte of the answer, and the answer."""
            start = time.perf_counter(); body = fetch(url)
            return (time.perf_counter() - start) * 1000, json.loads(body)

        def full_listing():
            """All revisions (one answer: no limit), timed without the client's JSON parsing."""
            ms, body = timed_get(base)
            if "continue" in body:
                sys.exit("a listing without limit must come in one answer")
            return ms, body["items"]

        print("==> full listings", file=sys.stderr)
        first_ms, items = full_listing()
        if len(items) != total:
            sys.exit(f"listed {len(items)} revisions, expected {total}")
        rss_first = memory_kib(server.pid, "VmRSS")
        for _ in range(3):
            full_listing()
        rss_warm = memory_kib(server.pid, "VmRSS")
        full = [full_listing()[0] for _ in range(args.calls)]
        # After a change: a ref moved before each call (outside the package
        # namespaces, so the listing's content stays the same size), so the
        # remembered answer cannot be used and the listing is computed.
        tip = run("git", "--git-dir", authoring, "rev-parse", "main")
        changed = []
        for i in range(args.calls):
            run("git", "--git-dir", authoring, "update-ref", f"refs/heads/bench-noise/{i}", tip)
            changed.append(full_listing()[0])
        package = f"pkg{args.packages // 2:05d}"
        print("==> filtered listings", file=sys.stderr)
        filtered = []
        for _ in range(args.calls * 5):
            ms, body = timed_get(f"{base}?package={package}")
            if len(body["items"]) != args.revisions:
                sys.exit(f"filtered listing gave {len(body['items'])} items")
            filtered.append(ms)
        rss_settled = memory_kib(server.pid, "VmRSS")
        # The same again: a server whose memory grows with repeated calls
        # grows here; one that has settled stays.
        for i in range(args.calls):
            run("git", "--git-dir", authoring, "update-ref", f"refs/heads/bench-noise/again-{i}", tip)
            full_listing()
            full_listing()
            timed_get(f"{base}?package={package}")
        rss_last, peak = memory_kib(server.pid, "VmRSS"), memory_kib(server.pid, "VmHWM")
        floor = []
        for _ in range(args.calls):
            start = time.perf_counter()
            run("git", "--git-dir", authoring, "for-each-ref", "--format=%(refname) %(objectname)")
            floor.append((time.perf_counter() - start) * 1000)
    finally:
        if server:
            server.terminate(); server.wait()
        shutil.rmtree(work, ignore_errors=True)

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
    met = lambda ok: "**met**" if ok else "**not met**"
    p50_full, p50_filtered = statistics.median(full), statistics.median(filtered)
    section = f"""<!-- bench-api:start -->
## The JSON API's listing (issue 7)

`scripts/bench-api.py --packages {args.packages} --revisions {args.revisions} --calls {args.calls}` — {datetime.date.today()}, {os.cpu_count()} cores ({cpu}), {run('git', '--version')}.
One repository with {args.packages:,} packages x {args.revisions} published revisions = {total:,} package revisions (tags). cadgate release build; each call is a full HTTP request with Basic auth, timed to the last byte of the JSON (the client's own parsing of it is not counted). Milliseconds.

| call | p50 | p99 |
|---|---|---|
| full listing ({total:,} revisions in one answer), repository unchanged since the last call | {p50_full:.0f} | {percentile(full, 0.99):.0f} |
| full listing after a change (a ref moved before each call) | {statistics.median(changed):.0f} | {percentile(changed, 0.99):.0f} |
| one package (`?package={package}`, {args.revisions} revisions) | {p50_filtered:.0f} | {percentile(filtered, 0.99):.0f} |
| plain git's floor: `git for-each-ref` of the same repository | {statistics.median(floor):.0f} | {percentile(floor, 0.99):.0f} |

The first full listing after the server started took {first_ms:.0f} ms: it reads each revision's Kptfile and approval commit once; later listings take those facts of immutable objects from memory and read only the refs. While the refs are unchanged, the answer itself is remembered (the refs are still read and digested on every call, so a push shows at once).
Memory (resident): {rss_first / 1024:.0f} MiB after the first full listing, {rss_warm / 1024:.0f} MiB after three more, {rss_settled / 1024:.0f} MiB after {args.calls * 2} more full and {args.calls * 5} filtered ones, {rss_last / 1024:.0f} MiB after the same number again; peak {peak / 1024:.0f} MiB. What is held: the facts of every revision's objects (read once), one remembered answer per filter and caller (96 MiB at most), and the allocator's free pages of the threads that built answers.

Goals: full list p50 ≤ 200 ms — {p50_full:.0f} ms unchanged, {met(p50_full <= 200)}; {statistics.median(changed):.0f} ms after a change, {met(statistics.median(changed) <= 200)}; filtered ≤ 10 ms — {p50_filtered:.0f} ms, {met(p50_filtered <= 10)}; memory that does not grow with repeated calls — {met(rss_last <= rss_settled * 1.1)} ({rss_last / rss_settled:.2f}× over the second round of {args.calls * 2} full and {args.calls} filtered listings).
<!-- bench-api:end -->"""
    write_section("bench-api", section)
    print(section)


if __name__ == "__main__":
    main()
