#!/usr/bin/env python3
"""Compressed answers (issue 14, item 2): bytes per poll of the published view.

A repository with T published revisions (default 1,000 and 10,000), each tag
at its own commit (no two tags share a SHA, as in a real repository: hex
SHAs are what compresses least). git-sync's no-op poll of the published
view, `git fetch <view> main --verbose --no-progress --prune --no-auto-gc
--depth 1` (its `ls-refs` carries `ref-prefix refs/tags/`, so it lists every
tag), is run with three `Accept-Encoding`s:

  - identity: `-c http.extraHeader=Accept-Encoding: identity` (curl then
    sends that instead of its own list): answers as they are;
  - gzip: `-c http.extraHeader=Accept-Encoding: gzip`;
  - git's default: `deflate, gzip, br, zstd` where git's libcurl has zstd
    (cadgate answers zstd), else gzip.

Bytes per poll are every response body byte cadgate sent for the polls
(its `http_response_bytes` metric, all git services) / polls; the `ls-refs`
column is the same request replayed with urllib, raw body bytes. Server CPU
per poll is cadgate plus its git children (/proc/<pid>/stat). Medians from
--polls samples (default 30; too few for a p99, so none is given).

Writes its section of BENCHMARKS.md. Usage:
  scripts/bench-compression.py [--tags 1000,10000] [--polls 30]
"""
import argparse, base64, datetime, hashlib, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmarks_md import write_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICKS = os.sysconf("SC_CLK_TCK")
REVISIONS = 10
MISSES = 10


def run(*args, cwd=None, env=None, stdin=None):
    out = subprocess.run(args, cwd=cwd, env=env, input=stdin, capture_output=True)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, args))}\n{out.stderr.decode()}")
    return out.stdout.decode().strip()


def kptfile(name):
    return f"apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: {name}\n"


def generate(git_dir, tags):
    """tags/10 packages x 10 revisions; every revision its own commit on
    main, and its tag there (made with one `git update-ref --stdin`)."""
    run("git", "init", "-q", "--bare", "-b", "main", git_dir)
    packages = tags // REVISIONS
    chunks, names, mark = [], [], 0
    for n in range(1, REVISIONS + 1):
        for p in range(packages):
            name = f"pkg{p:05d}"
            mark += 1
            files = {f"{name}/Kptfile": kptfile(name), f"{name}/data.yaml": f"name: {name}\nrevision: {n}\n"}
            chunks.append(b"commit refs/heads/main\nmark :%d\ncommitter Bench <b@example.com> %d +0000\ndata 7\nrelease\n"
                          % (mark, 1_700_000_000 + mark))
            for path, text in files.items():
                data = text.encode()
                chunks.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data))
            chunks.append(b"\n")
            names.append(f"refs/tags/{name}/v{n}")
    marks = os.path.join(os.path.dirname(git_dir), "marks")
    run("git", "--git-dir", git_dir, "fast-import", "--quiet", f"--export-marks={marks}", stdin=b"".join(chunks))
    sha = dict(line.split() for line in open(marks))
    refs = "".join(f"create {ref} {sha[f':{i + 1}']}\n" for i, ref in enumerate(names))
    run("git", "--git-dir", git_dir, "update-ref", "--stdin", stdin=refs.encode())
    run("git", "--git-dir", git_dir, "pack-refs", "--all")
    run("git", "--git-dir", git_dir, "repack", "-adq")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICKS


def response_bytes(base):
    """cadgate's response body bytes so far, all git services."""
    text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
    total = 0
    for line in text.splitlines():
        m = re.match(r'[a-z_]*http_response_bytes_total\{[^}]*service="([^"]+)"[^}]*\} (\d+)', line)
        if m and m.group(1).startswith("git-"):
            total += int(m.group(2))
    return total


def pkt(line):
    return b"%04x%s" % (len(line) + 4, line)


def ls_refs_request(miss=None):
    """The `ls-refs` of git-sync's poll of `main` (git 2.47, protocol v2);
    with `miss`, one more prefix that matches nothing, so the request is
    one cadgate has not answered yet (git computes it)."""
    prefixes = [b"main", b"refs/main", b"refs/tags/main", b"refs/heads/main", b"refs/remotes/main",
                b"refs/remotes/main/HEAD", b"refs/tags/"]
    if miss is not None:
        prefixes.append(b"refs/bench-miss/%d" % miss)
    body = pkt(b"command=ls-refs\n") + pkt(b"agent=git/2.47.3\n") + pkt(b"object-format=sha1\n") + b"0001"
    body += pkt(b"peel\n") + pkt(b"symrefs\n") + pkt(b"unborn\n")
    body += b"".join(pkt(b"ref-prefix " + p + b"\n") for p in prefixes)
    return body + b"0000"


def ls_refs_bytes(base, auth, accept, miss=None):
    headers = {"Authorization": auth, "Git-Protocol": "version=2",
               "Content-Type": "application/x-git-upload-pack-request"}
    if accept:
        headers["Accept-Encoding"] = accept
    req = urllib.request.Request(f"{base}/published/bench.git/git-upload-pack", data=ls_refs_request(miss), headers=headers)
    with urllib.request.urlopen(req, timeout=60) as r:
        return len(r.read()), r.headers.get("Content-Encoding") or "none"


def measure(tags, polls, cadgate, work, env):
    data = os.path.join(work, f"data-{tags}")
    authoring = os.path.join(data, "repositories", "bench.git")
    os.makedirs(os.path.dirname(authoring))
    print(f"==> generating {tags} published revisions", file=sys.stderr)
    generate(authoring, tags)
    token = "bench-token"
    sock = socket.socket(); sock.bind(("127.0.0.1", 0)); port = sock.getsockname()[1]; sock.close()
    config = os.path.join(work, f"cadgate-{tags}.toml")
    with open(config, "w") as f:
        f.write(f'[server]\nlisten = "127.0.0.1:{port}"\ndata_dir = "{data}"\n\n[[repository]]\nname = "bench"\n\n'
                f'[[user]]\nname = "deployer"\ntoken_sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"\nroles = ["reader"]\n')
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([cadgate, "serve", "--config", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        for _ in range(6000):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1); break
            except Exception:
                if server.poll() is not None:
                    sys.exit("cadgate exited during start")
                time.sleep(0.05)
        url = f"http://deployer:{token}@127.0.0.1:{port}/published/bench.git"
        auth = "Basic " + base64.b64encode(f"deployer:{token}".encode()).decode()
        for label, accept in (("identity", "identity"), ("gzip", "gzip"), ("git's default", None)):
            extra = ["-c", f"http.extraHeader=Accept-Encoding: {accept}"] if accept else []
            root = os.path.join(work, f"root-{tags}-{len(rows)}")
            run("git", "init", "-q", "-b", "git-sync", root, env=env)
            fetch = ["git", *extra, "-C", root, "fetch", url, "main", "--verbose", "--no-progress", "--prune",
                     "--no-auto-gc", "--depth", "1"]
            run(*fetch, env=env)
            head = run("git", "-C", root, "rev-parse", "FETCH_HEAD^{}", env=env)
            run("git", "-C", root, "reset", "-q", "--soft", head, "--", env=env)
            run(*fetch, env=env)  # the poll's answers are now remembered
            sent, cpu = response_bytes(base), cpu_seconds(server.pid)
            times = []
            for _ in range(polls):
                start = time.perf_counter()
                run(*fetch, env=env)
                times.append((time.perf_counter() - start) * 1000)
            per_poll = (response_bytes(base) - sent) / polls
            cpu_per_poll = (cpu_seconds(server.pid) - cpu) / polls * 1000
            if run("git", "-C", root, "rev-parse", "FETCH_HEAD^{}", env=env) != head:
                sys.exit("a no-op poll moved FETCH_HEAD")
            git_accept = accept or ("deflate, gzip, br, zstd" if zstd_in_curl() else "deflate, gzip")
            ls_refs, coding = ls_refs_bytes(base, auth, git_accept)
            # The first poll after a publish: an `ls-refs` git computes, and
            # cadgate compresses, afresh.
            cpu = cpu_seconds(server.pid)
            for i in range(MISSES):
                ls_refs_bytes(base, auth, git_accept, miss=len(rows) * MISSES + i)
            miss_cpu = (cpu_seconds(server.pid) - cpu) / MISSES * 1000
            rows.append((label, coding, per_poll, ls_refs, cpu_per_poll, miss_cpu, statistics.median(times)))
    finally:
        server.terminate(); server.wait()
    return rows


def zstd_in_curl():
    """Whether git's libcurl (assumed the system's) decodes zstd."""
    try:
        return "zstd" in subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.lower()
    except OSError:
        return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tags", default="1000,10000")
    parser.add_argument("--polls", type=int, default=30)
    parser.add_argument("--cadgate", help="a cadgate binary to use instead of building the release one (a dry run: writes nothing)")
    args = parser.parse_args()
    sizes = [int(t) for t in args.tags.split(",")]
    if args.cadgate:
        cadgate = args.cadgate
    else:
        print("==> building cadgate (release)", file=sys.stderr)
        run("cargo", "build", "--release", "-q", "-p", "cadgate", cwd=ROOT)
        cadgate = os.path.join(ROOT, "target/release/cadgate")
    work = tempfile.mkdtemp(prefix="cadgate-bench-compression.")
    env = dict(os.environ, HOME=work, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.path.join(work, "gitconfig"),
               GIT_TERMINAL_PROMPT="0")
    results = {}
    try:
        for tags in sizes:
            results[tags] = measure(tags, args.polls, cadgate, work, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = []
    for tags, rows in results.items():
        plain = rows[0][2]
        for label, coding, per_poll, ls_refs, cpu, miss_cpu, p50 in rows:
            lines.append(f"| {tags:,} | {label} | {coding} | {per_poll:,.0f} | {per_poll / plain:.2f}× | {ls_refs:,} | {cpu:.2f} | {miss_cpu:.1f} | {p50:.1f} |")
    cpu_name = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
    largest = results[sizes[-1]]
    section = f"""<!-- bench-compression:start -->
## Compressed answers: bytes per poll of the published view (issue 14, item 2)

`scripts/bench-compression.py --tags {args.tags} --polls {args.polls}` — {datetime.date.today()}, {os.cpu_count()} cores ({cpu_name}), {run('git', '--version')}, {subprocess.run(['curl', '--version'], capture_output=True, text=True).stdout.splitlines()[0].split(' (')[0]}.
Repository: tags/10 packages x 10 published revisions, every tag at its own commit. The poll is git-sync's no-op poll of the published view, `git fetch <view> main --verbose --no-progress --prune --no-auto-gc --depth 1` (protocol v2: capabilities, an `ls-refs` with `ref-prefix refs/tags/` that lists every tag, a `fetch` with the `have`), after two polls that made cadgate remember its answers.
Bytes per poll: every response body byte cadgate sent (`http_response_bytes`, git services) / {args.polls} polls. `ls-refs` answer: the same request sent once more with urllib, raw body bytes. Server CPU (cadgate and its git children, `/proc/<pid>/stat`, 10 ms ticks): per poll answered from memory, and per `ls-refs` that misses the remembered answers ({MISSES} requests, each with one more `ref-prefix` matching nothing: git computes the answer and cadgate compresses it, as for the first poll after a publish). Medians of {args.polls} samples (no p99 from so few). Bytes are exact; CPU is counted in 10 ms ticks (so ±1 ms per figure here); poll latencies are wall time and were taken while other builds shared the machine.

| tags | Accept-Encoding | answered in | bytes per poll | vs identity | `ls-refs` answer (bytes) | server CPU per poll, answered from memory (ms) | server CPU per `ls-refs` git computes (ms) | poll p50 (ms) |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(lines)}

The `ls-refs` answer is nearly all of a poll's bytes, and it shrinks {largest[0][2] / largest[2][2]:.1f}× with git's default `Accept-Encoding` at {sizes[-1]:,} tags (most of what is left is the hex SHAs, 40 characters of 20 bytes' entropy each). A remembered answer's compressed form is remembered with it, so a poll answered from memory costs no compression; the first poll after a publish (the last CPU column) pays git's work and one compression. A client that sends no `Accept-Encoding` (libgit2) or `identity` (dulwich) gets the identity row.
<!-- bench-compression:end -->"""
    if args.cadgate:
        print(section)
    else:
        write_section("bench-compression", section)


if __name__ == "__main__":
    main()
