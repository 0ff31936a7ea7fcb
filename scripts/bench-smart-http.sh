#!/usr/bin/env bash
# Smart-HTTP benchmark (issue 2): cadgate vs `git clone file://` (upload-pack
# directly, no HTTP) vs Apache httpd serving `git http-backend` as CGI, on the
# same generated repository, in the same run, reported as ratios.
#
#   scripts/bench-smart-http.sh           # full run (~2,000 packages, ~48k objects)
#   scripts/bench-smart-http.sh --quick   # smoke run (small repository, few runs)
#   scripts/bench-smart-http.sh --keep    # keep the work directory
#
# Installs apache2 and hyperfine with apt-get when missing. Writes its section
# of BENCHMARKS.md. Everything listens on 127.0.0.1 only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
quick=0 keep=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --keep) keep=1 ;;
    *) echo "usage: $0 [--quick] [--keep]" >&2; exit 2 ;;
  esac
done
if ((quick)); then packages=200 edits=800 runs_clone=3 runs_fetch=10
else packages=2000 edits=8000 runs_clone=10 runs_fetch=40; fi

log() { printf '==> %s\n' "$*" >&2; }
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
[ -x /usr/sbin/apache2 ] || need+=(apache2)
command -v htpasswd >/dev/null || need+=(apache2-utils)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd=sudo
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/cadgate-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/apache/httpd.pid" ] && kill "$(cat "$work/apache/httpd.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  if ((keep)); then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done; echo "nothing answers at $1" >&2; exit 1; }

log "building cadgate (release)"
(cd "$root" && cargo build --release -q -p cadgate)
cadgate="$root/target/release/cadgate"

export HOME="$work/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL="$work/home/.gitconfig" GIT_TERMINAL_PROMPT=0
mkdir -p "$HOME"

log "generating $packages packages with $edits edits"
repo="$work/cadgate/repositories/bench.git"
mkdir -p "$(dirname "$repo")"
git init -q --bare -b main "$repo"
python3 "$root/scripts/bench/gen-packages.py" "$packages" "$edits" | git --git-dir "$repo" fast-import --quiet
git --git-dir "$repo" repack -adfq --write-bitmap-index
git --git-dir "$repo" commit-graph write --reachable
git --git-dir "$repo" pack-refs --all
objects=$(git --git-dir "$repo" count-objects -v | awk '/^in-pack:/ {print $2}')
pack_kib=$(git --git-dir "$repo" count-objects -v | awk '/^size-pack:/ {print $2}')
log "repository: $objects objects, pack $pack_kib KiB"

token=bench-token-$RANDOM$RANDOM
port_c=$(free_port)
cat > "$work/cadgate.toml" <<TOML
[server]
listen = "127.0.0.1:$port_c"
data_dir = "$work/cadgate"

[[repository]]
name = "bench"

[[user]]
name = "bench"
token_sha256 = "$(printf %s "$token" | sha256sum | cut -d' ' -f1)"
roles = ["reader"]
TOML
log "starting cadgate on 127.0.0.1:$port_c"
"$cadgate" serve --config "$work/cadgate.toml" > "$work/cadgate.out" 2> "$work/cadgate.log" &
pids+=($!)
wait_http "http://127.0.0.1:$port_c/healthz"

log "starting Apache httpd + git http-backend"
port_a=$(free_port)
mkdir -p "$work/apache" "$work/apache-root"
cp -a "$repo" "$work/apache-root/bench.git"
chown -R www-data:www-data "$work/apache-root" "$work/apache"
htpasswd -cbB -C 4 "$work/apache/htpasswd" bench "$token" 2>/dev/null
chown www-data "$work/apache/htpasswd"
mods=/usr/lib/apache2/modules
backend="$(git --exec-path)/git-http-backend"
cat > "$work/apache/httpd.conf" <<CONF
ServerName 127.0.0.1
Listen 127.0.0.1:$port_a
PidFile $work/apache/httpd.pid
ErrorLog $work/apache/error.log
DefaultRuntimeDir $work/apache
Mutex file:$work/apache default
ScriptSock $work/apache/cgid.sock
User www-data
Group www-data
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule authz_user_module $mods/mod_authz_user.so
LoadModule authn_core_module $mods/mod_authn_core.so
LoadModule authn_file_module $mods/mod_authn_file.so
LoadModule auth_basic_module $mods/mod_auth_basic.so
LoadModule alias_module $mods/mod_alias.so
LoadModule cgid_module $mods/mod_cgid.so
LoadModule env_module $mods/mod_env.so
LoadModule setenvif_module $mods/mod_setenvif.so
SetEnv GIT_PROJECT_ROOT $work/apache-root
SetEnv GIT_HTTP_EXPORT_ALL 1
SetEnvIf Git-Protocol ".*" GIT_PROTOCOL=\$0
ScriptAlias / $backend/
<Location />
  AuthType Basic
  AuthName "bench"
  AuthBasicProvider file
  AuthUserFile $work/apache/htpasswd
  Require valid-user
</Location>
CONF
/usr/sbin/apache2 -f "$work/apache/httpd.conf" -k start
wait_http "http://127.0.0.1:$port_a/"

url_c="http://bench:$token@127.0.0.1:$port_c/bench.git"
url_a="http://bench:$token@127.0.0.1:$port_a/bench.git"
url_f="file://$repo"
# Every server must give the same refs before anything is timed.
for url in "$url_c" "$url_a" "$url_f"; do
  [ "$(git ls-remote "$url" refs/heads/main | cut -f1)" = "$(git --git-dir "$repo" rev-parse main)" ] \
    || { echo "wrong refs from ${url%%@*}..." >&2; exit 1; }
done

results="$work/results"; mkdir -p "$results"
bench() { # name runs command-with-URL prepare
  local name=$1 runs=$2 cmd=$3 prep=$4
  log "case: $name"
  hyperfine -N --style none --warmup 1 --runs "$runs" \
    --prepare "$prep" \
    --export-json "$results/$name.json" \
    -n cadgate "${cmd//URL/$url_c}" \
    -n file "${cmd//URL/$url_f}" \
    -n apache "${cmd//URL/$url_a}" >&2
}
dest="$work/dest"
bench full-clone "$runs_clone" "git clone --bare -q URL $dest" "rm -rf $dest"
bench shallow-clone "$runs_clone" "git clone --bare -q --depth 1 URL $dest" "rm -rf $dest"
for name in cadgate file apache; do
  case $name in cadgate) u=$url_c ;; file) u=$url_f ;; apache) u=$url_a ;; esac
  git clone -q -n "$u" "$work/fetch-$name"
done
# hyperfine substitutes URL only in the command; each server fetches into its own clone.
log "case: noop-fetch (v2) and noop-fetch-v0"
for proto in 2 0; do
  hyperfine -N --style none --warmup 2 --runs "$runs_fetch" \
    --export-json "$results/noop-fetch-v$proto.json" \
    -n cadgate "git -C $work/fetch-cadgate -c protocol.version=$proto fetch -q origin" \
    -n file "git -C $work/fetch-file -c protocol.version=$proto fetch -q origin" \
    -n apache "git -C $work/fetch-apache -c protocol.version=$proto fetch -q origin" >&2
done

log "writing BENCHMARKS.md"
python3 - "$results" "$root/BENCHMARKS.md" "$objects" "$pack_kib" "$packages" "$edits" "$quick" <<'PY'
import json, os, statistics, subprocess, sys, datetime
results, out, objects, pack_kib, packages, edits, quick = sys.argv[1:]
def load(name):
    data = json.load(open(os.path.join(results, name + ".json")))
    return {r["command"]: sorted(r["times"]) for r in data["results"]}
def p(times, q):
    return times[min(len(times) - 1, int(round(q * (len(times) - 1))))] * 1000
cases = [("full-clone", "full clone (`git clone --bare`)"), ("shallow-clone", "shallow clone (`--depth 1`)"),
         ("noop-fetch-v2", "no-op fetch, protocol v2"), ("noop-fetch-v0", "no-op fetch, protocol v0")]
rows, figures = [], {}
for key, label in cases:
    t = load(key)
    med = {k: statistics.median(v) * 1000 for k, v in t.items()}
    figures[key] = med
    rows.append(f"| {label} | {med['cadgate']:.1f} (p90 {p(t['cadgate'], .9):.1f}) | {med['file']:.1f} | {med['apache']:.1f} | {med['cadgate']/med['file']:.2f}× | {med['apache']/med['cadgate']:.2f}× |")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
full = figures["full-clone"]["cadgate"] / figures["full-clone"]["file"]
noop = figures["noop-fetch-v2"]["apache"] / figures["noop-fetch-v2"]["cadgate"]
met = lambda ok: "**met**" if ok else "**not met**"
section = f"""<!-- bench-smart-http:start -->
## Smart HTTP (issue 2)

`scripts/bench-smart-http.sh{' --quick' if quick == '1' else ''}` — {datetime.date.today()}, {os.cpu_count()} cores ({cpu}), {git}.
Repository: {packages} kpt packages, {edits} further commits, {objects} objects, {pack_kib} KiB packed (bitmaps, commit-graph).
cadgate: release build, HTTP Basic. Apache httpd (mpm_event, mod_cgid) running `git http-backend` with HTTP Basic.
file://: `git upload-pack` spawned directly by the client, no HTTP. Medians in ms over hyperfine runs.

| case | cadgate | file:// | Apache + http-backend | cadgate / file:// | Apache / cadgate |
|---|---|---|---|---|---|
{chr(10).join(rows)}

Goals: full clone ≤ 1.10× direct upload-pack — {full:.2f}×, {met(full <= 1.10)}; no-op fetch ≥ 2× faster than Apache + http-backend — {noop:.2f}×, {met(noop >= 2.0)}.
<!-- bench-smart-http:end -->"""
text = open(out).read() if os.path.exists(out) else "# Benchmarks\n\nEvery figure here comes from a script under `scripts/`, run on one machine, comparing cadgate with plain git in the same run.\n"
start, end = "<!-- bench-smart-http:start -->", "<!-- bench-smart-http:end -->"
if start in text and end in text:
    text = text[:text.index(start)] + section + text[text.index(end) + len(end):]
else:
    text = text.rstrip() + "\n\n" + section + "\n"
open(out, "w").write(text)
print(section)
PY
