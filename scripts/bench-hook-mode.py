#!/usr/bin/env python3
"""Hook mode through Apache + git http-backend (issue 5).

Two copies of one repository (N packages, each published once) served by the
same Apache httpd: one with `cadgate hook install`, one without. Measures,
over HTTP with Basic auth:
  - a one-package draft push into each (the same commit), median, and
    the ratio hooked / plain;
  - publishing through the hook (`git push +proposal:main`: approval commit,
    tag, published sibling) against moving the branch of the plain copy to
    the same commit, median and ratio.

Needs Debian's apache2 and apache2-utils (installed with apt-get when
missing) and runs Apache's workers as www-data when started as root.
Writes its section of BENCHMARKS.md. Usage:
  scripts/bench-hook-mode.py [--packages 1000] [--runs 30]
"""
import argparse, datetime, importlib.util, os, shutil, socket, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmarks_md import write_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("bench_publish", os.path.join(ROOT, "scripts", "bench-publish.py"))
bench_publish = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_publish)
run, timed, generate = bench_publish.run, bench_publish.timed, bench_publish.generate

APACHE, MODULES = "/usr/sbin/apache2", "/usr/lib/apache2/modules"


def ensure_apache():
    """Install Debian's apache2 and apache2-utils when missing (the packaged
    service is stopped: the benchmarks start their own Apache)."""
    if os.path.exists(APACHE) and shutil.which("htpasswd"):
        return
    print("==> installing apache2 apache2-utils", file=sys.stderr)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "apache2", "apache2-utils"], check=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    subprocess.run(sudo + ["service", "apache2", "stop"], capture_output=True)


def apache_config(work, port, user):
    backend = os.path.join(run("git", "--exec-path"), "git-http-backend")
    mods = ["mpm_event", "authz_core", "authz_user", "authn_core", "authn_file", "auth_basic", "alias", "cgid", "env", "setenvif"]
    lines = [f"ServerName 127.0.0.1", f"Listen 127.0.0.1:{port}", f"PidFile {work}/run/httpd.pid", f"ErrorLog {work}/run/error.log",
             f"DefaultRuntimeDir {work}/run", f"Mutex file:{work}/run default", f"ScriptSock {work}/run/cgid.sock"]
    if user:
        lines += [f"User {user}", f"Group {user}"]
    lines += [f"LoadModule {m}_module {MODULES}/mod_{m}.so" for m in mods]
    lines += [f"SetEnv GIT_PROJECT_ROOT {work}/root", "SetEnv GIT_HTTP_EXPORT_ALL 1", 'SetEnvIf Git-Protocol ".*" GIT_PROTOCOL=$0',
              f"ScriptAlias /git/ {backend}/", "<Location /git/>", "  AuthType Basic", '  AuthName "bench"', "  AuthBasicProvider file",
              f"  AuthUserFile {work}/run/htpasswd", "  Require valid-user", "</Location>"]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    ensure_apache()
    print("==> building cadgate (release)", file=sys.stderr)
    run("cargo", "build", "--release", "-q", "-p", "cadgate", cwd=ROOT)
    work = tempfile.mkdtemp(prefix="cadgate-bench-hook.")
    os.chmod(work, 0o755)
    user = "www-data" if os.geteuid() == 0 else None
    env = dict(os.environ, HOME=os.path.join(work, "home"), GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.path.join(work, "home", ".gitconfig"), GIT_TERMINAL_PROMPT="0")
    os.makedirs(env["HOME"])
    run("git", "config", "--global", "user.name", "Bench", env=env)
    run("git", "config", "--global", "user.email", "bench@example.com", env=env)
    started = False
    try:
        for d in ("root", "run"):
            os.makedirs(os.path.join(work, d))
        print(f"==> generating {args.packages} packages", file=sys.stderr)
        seed = os.path.join(work, "seed.git")
        generate(seed, args.packages)
        plain, hooked = os.path.join(work, "root", "plain.git"), os.path.join(work, "root", "hooked.git")
        for target in (plain, hooked):
            run("git", "clone", "-q", "--bare", seed, target, env=env)
        cadgate = os.path.join(work, "cadgate")
        shutil.copy(os.path.join(ROOT, "target", "release", "cadgate"), cadgate)
        token = "bench-token"
        config = os.path.join(work, "cadgate.toml")
        with open(config, "w") as f:
            f.write('[policy]\nself_approval = true\n\n[[repository]]\nname = "hooked"\n\n'
                    f'[[user]]\nname = "bench"\ntoken_sha256 = "{bench_publish.hashlib.sha256(token.encode()).hexdigest()}"\nroles = ["admin"]\n')
        run(cadgate, "hook", "install", "--config", config, "--repository", "hooked", hooked)
        run("htpasswd", "-c", "-b", "-B", "-C", "4", os.path.join(work, "run", "htpasswd"), "bench", token)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
        with open(os.path.join(work, "run", "httpd.conf"), "w") as f:
            f.write(apache_config(work, port, user))
        if user:
            run("chown", "-R", f"{user}:{user}", work)
        run(APACHE, "-f", os.path.join(work, "run", "httpd.conf"), "-k", "start")
        started = True
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close(); break
            except OSError:
                time.sleep(0.05)
        url = lambda name: f"http://bench:{token}@127.0.0.1:{port}/git/{name}.git"
        clone = os.path.join(work, "w")
        run("git", "clone", "-q", url("hooked"), clone, env=env)
        run("git", "remote", "add", "plain", url("plain"), cwd=clone, env=env)
        draft_plain, draft_hooked, publish_plain, publish_hooked = [], [], [], []
        for r in range(args.runs):
            pkg = f"pkg{(r * 7919) % args.packages:05d}"
            run("git", "fetch", "-q", "origin", cwd=clone, env=env)
            run("git", "reset", "-q", "--hard", "origin/main", cwd=clone, env=env)
            with open(os.path.join(clone, pkg, "data.yaml"), "w") as f:
                f.write(f"run: {r}\n")
            run("git", "commit", "-qam", f"{pkg} run {r}", cwd=clone, env=env)
            ref = f"HEAD:refs/heads/drafts/{pkg}/r{r}"
            draft_plain.append(timed("git", "push", "-q", "plain", ref, cwd=clone, env=env))
            draft_hooked.append(timed("git", "push", "-q", "origin", ref, cwd=clone, env=env))
            run("git", "push", "-q", "origin", f"HEAD:refs/heads/proposed/{pkg}/r{r}", cwd=clone, env=env)
            publish_hooked.append(timed("git", "push", "-q", "origin", "+HEAD:refs/heads/main", cwd=clone, env=env))
            publish_plain.append(timed("git", "push", "-q", "plain", "+HEAD:refs/heads/main", cwd=clone, env=env))
    finally:
        if started:
            subprocess.run(["kill", open(os.path.join(work, "run", "httpd.pid")).read().strip()], capture_output=True)
            time.sleep(0.5)
        shutil.rmtree(work, ignore_errors=True)

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
    dh, dp = statistics.median(draft_hooked), statistics.median(draft_plain)
    ph, pp = statistics.median(publish_hooked), statistics.median(publish_plain)
    met = lambda ok: "**met**" if ok else "**not met**"
    section = f"""<!-- bench-hook-mode:start -->
## Hook mode through Apache + git http-backend (issue 5)

`scripts/bench-hook-mode.py --packages {args.packages} --runs {args.runs}` — {datetime.date.today()}, {os.cpu_count()} cores ({cpu}), {run('git', '--version')}, {run(APACHE, '-v').splitlines()[0]}.
Two copies of a repository with {args.packages:,} published packages behind one Apache httpd (mpm_event, mod_cgid, HTTP Basic), one with `cadgate hook install` (release build), one without. Medians of {args.runs} pushes, milliseconds.

| push | with the hook | without | ratio |
|---|---|---|---|
| one-package draft | {dh:.0f} | {dp:.0f} | {dh / dp:.2f}× |
| publish (`+proposal:main`; without the hook: the same branch move) | {ph:.0f} | {pp:.0f} | {ph / pp:.2f}× |

Goal: a draft push ≤ 1.3× the unhooked push — {dh / dp:.2f}×, {met(dh / dp <= 1.3)}. Publishing through the hook also writes the approval commit, the tag, the audit note and the published sibling.
<!-- bench-hook-mode:end -->"""
    write_section("bench-hook-mode", section)


if __name__ == "__main__":
    main()
