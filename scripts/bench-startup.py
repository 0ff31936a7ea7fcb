#!/usr/bin/env python3
"""How long `cadgate serve` takes to start with N repositories (issue 14, item 5).

For each size N: writes a config with N `[[repository]]` entries, starts the
server once on an empty data directory (the *first start*: it creates every
bare repository, its registered branch and its published view), then
restarts it `--samples` times on the same data directory (a *restart*: the
repositories exist; start-up must only check them). Each start is timed from
spawning the process until `/healthz` answers.

The floor, measured in the same run: one `git rev-parse --verify HEAD` per
repository, run in sequence (the least a start-up that asks git anything per
repository could cost).

Several binaries may be compared in one run (`--binary before=path
--binary after=path`): their samples are interleaved (which goes first
alternates), so drift of the machine hits each alike.

Writes its section of BENCHMARKS.md with --write. Usage:
  scripts/bench-startup.py [--sizes 100,1000] [--samples 5]
                           [--binary label=path ...] [--write]
"""
import argparse, datetime, os, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmarks_md import write_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(work, data, count, port):
    path = os.path.join(work, "cadgate.toml")
    with open(path, "w") as f:
        f.write(f'[server]\nlisten = "127.0.0.1:{port}"\ndata_dir = "{data}"\n\n')
        for i in range(count):
            f.write(f'[[repository]]\nname = "team-{i // 100:03}/repository-{i:05}"\n\n')
    return path


def start(binary, config, port, log):
    """Seconds from spawning the server until /healthz answers; then stop it."""
    began = time.perf_counter()
    server = subprocess.Popen([binary, "serve", "--config", config], stdout=log, stderr=log)
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
                return time.perf_counter() - began
            except OSError:
                if server.poll() is not None:
                    sys.exit(f"{binary} exited with {server.returncode} during start-up; see {log.name}")
                time.sleep(0.01)
    finally:
        server.terminate()
        server.wait()


def floor(data):
    """Seconds for one `git rev-parse` per repository, in sequence."""
    repos = []
    for top, dirs, _ in os.walk(os.path.join(data, "repositories")):
        for d in list(dirs):
            if d.endswith(".git"):
                repos.append(os.path.join(top, d))
                dirs.remove(d)
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")
    began = time.perf_counter()
    for repo in repos:
        subprocess.run(["git", "--git-dir", repo, "rev-parse", "--verify", "-q", "HEAD"],
                       env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--samples", type=int, default=5, help="restarts per size and binary")
    parser.add_argument("--binary", action="append", default=[],
                        help="label=path of a cadgate binary (default: after=target/release/cadgate, else debug)")
    parser.add_argument("--reuse", action="store_true",
                        help="only the first binary starts on an empty data directory; the others restart on its data")
    parser.add_argument("--write", action="store_true", help="write the section of BENCHMARKS.md")
    args = parser.parse_args()
    binaries = []
    for spec in args.binary or ["after=" + next(p for p in (os.path.join(ROOT, "target", b, "cadgate") for b in ("release", "debug")) if os.path.exists(p))]:
        label, _, path = spec.partition("=")
        binaries.append((label, os.path.abspath(path)))
    sizes = [int(s) for s in args.sizes.split(",")]
    work = tempfile.mkdtemp(prefix="cadgate-bench-startup.", dir=os.path.join(ROOT, "target"))
    results = {}
    try:
        for n in sizes:
            data, port = {}, free_port()
            for label, _ in binaries:
                data[label] = os.path.join(work, f"data-{n}-{binaries[0][0] if args.reuse else label}")
            firsts, restarts, floors = {}, {label: [] for label, _ in binaries}, []
            with open(os.path.join(work, f"server-{n}.log"), "w") as log:
                for label, binary in (binaries[:1] if args.reuse else binaries):
                    config = write_config(work, data[label], n, port)
                    firsts[label] = start(binary, config, port, log)
                for i in range(args.samples):
                    order = binaries if i % 2 == 0 else list(reversed(binaries))
                    for label, binary in order:
                        config = write_config(work, data[label], n, port)
                        restarts[label].append(start(binary, config, port, log))
                    floors.append(floor(data[binaries[0][0]]))
            results[n] = (firsts, restarts, floors)
            for label, _ in binaries:
                print(f"N={n} {label}: first start {firsts.get(label, float('nan')):.2f} s, restart median {statistics.median(restarts[label]):.2f} s "
                      f"(min {min(restarts[label]):.2f}, max {max(restarts[label]):.2f}), floor median {statistics.median(floors):.2f} s",
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for n, (firsts, restarts, floors) in results.items():
        fl = statistics.median(floors)
        for label, _ in binaries:
            med = statistics.median(restarts[label])
            first = f"{firsts[label]:.2f}" if label in firsts else "—"
            rows.append(f"| {n:,} | {label} | {first} | {med:.2f} ({min(restarts[label]):.2f}–{max(restarts[label]):.2f}) | {fl:.2f} | {med / fl:.1f}× |")
    section = f"""<!-- startup:start -->
## Start-up with many repositories (issue 14, item 5)

`scripts/bench-startup.py --sizes {args.sizes} --samples {args.samples}` ({datetime.date.today()}, {os.cpu_count()} cores, binaries: {", ".join(f"{label} = {os.path.relpath(path, ROOT)}" for label, path in binaries)}).
Each start is timed from spawning `cadgate serve` until `/healthz` answers. *First start*: an empty data directory (every bare repository, registered branch and published view is created; one sample{"; only the first binary, the others restart on its data (--reuse)" if args.reuse else ""}). *Restart*: the same data directory again (median of {args.samples} samples, min–max in brackets; too few samples for percentiles). *Floor*: one `git rev-parse --verify HEAD` per repository in sequence, in the same run (median of {args.samples}).

| repositories | binary | first start (s) | restart (s) | floor (s) | restart / floor |
|---|---|---|---|---|---|
{chr(10).join(rows)}
<!-- startup:end -->"""
    if args.write:
        write_section("startup", section)
    else:
        print(section)


if __name__ == "__main__":
    main()
