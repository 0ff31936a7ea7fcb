#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, then
# checks formatting and lints, builds, and runs every test.
#
#   scripts/test.sh            # everything
#   scripts/test.sh -- NAME    # only tests whose name contains NAME
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

# System packages the tests drive for real. Installed only when missing.
need=()
command -v git >/dev/null 2>&1 || need+=(git)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-pip)
# Apache httpd + git http-backend: the third-party Git host of the hook-mode tests.
[ -x /usr/sbin/apache2 ] || need+=(apache2)
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# strace: the crash tests kill git between the renames of a ref transaction.
command -v strace >/dev/null 2>&1 || need+=(strace)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}"
  # The tests start their own Apache on free ports; the packaged service is not needed.
  if [[ " ${need[*]} " == *" apache2 "* ]]; then $sudo_cmd service apache2 stop >/dev/null 2>&1 || true; fi
fi

# dulwich and pygit2 (libgit2): Git implementations other than git, for the
# published-view tests.
for module in "dulwich:dulwich>=0.22" "pygit2:pygit2>=1.14"; do
  name="${module%%:*}" requirement="${module#*:}"
  if ! python3 -c "import $name" >/dev/null 2>&1; then
    log "installing $name (python3 -m pip)"
    python3 -m pip install --quiet --user "$requirement" 2>/dev/null \
      || python3 -m pip install --quiet --user --break-system-packages "$requirement"
  fi
done

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is not installed: install Rust with rustup (https://rustup.rs), then run this again" >&2
  exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

log "git $(git --version | cut -d' ' -f3), $(cargo --version)"

# The suite builds everything from scratch: incremental compilation would
# only add to the target directory (about 2 GB without it).
export CARGO_INCREMENTAL=0
free_kb=$(df -Pk . | awk 'NR==2 {print $4}')
log "disk: $((free_kb / 1024)) MB free here"
if [ "$free_kb" -lt $((3 * 1024 * 1024)) ]; then
  echo "warning: less than 3 GB free; the build and the tests' repositories may not fit" >&2
fi

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

# One build for the binaries the end-to-end tests run and the tests
# themselves: `cargo test --workspace` builds target/debug/cadgate and
# cadgate-hook (their packages have integration tests) with the same
# dependency features as the tests. A separate `cargo build` first would
# compile some 70 dependencies a second time with other features.
log "cargo test"
filter=()
if [ "${1:-}" = "--" ] && [ -n "${2:-}" ]; then filter=("$2"); fi
cargo test --workspace --locked -- "${filter[@]}"
log "target directory: $(du -sh target 2>/dev/null | cut -f1)"
