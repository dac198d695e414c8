#!/usr/bin/env bash
# End-to-end tests: the real elevated and elevate binaries, real users and groups, real
# /etc — inside a private mount namespace with a copy of /etc, so the machine is untouched.
#
#   sudo tests/e2e/run.sh                 build (cargo) and run every tests/e2e/t_*.sh
#   ELEVATE_BIN_DIR=target/release ...    use already-built binaries
#
# Ends with "N passed, N failed"; exits non-zero if anything failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

if [ -z "${ELEVATE_E2E_INSIDE:-}" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "e2e: must run as root (it creates users inside a mount namespace)" >&2; exit 1; }
  for t in unshare:util-linux setpriv:util-linux useradd:passwd groupadd:passwd python3:python3 \
           mount:mount pgrep:procps; do
    command -v "${t%%:*}" >/dev/null || { echo "e2e: missing ${t%%:*}: apt-get install ${t#*:}" >&2; exit 1; }
  done
  if [ -z "${ELEVATE_BIN_DIR:-}" ]; then
    (cd "$repo" && cargo build --quiet -p elevated -p elevate-cli) || { echo "e2e: build failed" >&2; exit 1; }
    ELEVATE_BIN_DIR="$repo/target/debug"
  fi
  for b in elevated elevate; do
    [ -x "$ELEVATE_BIN_DIR/$b" ] || { echo "e2e: $ELEVATE_BIN_DIR/$b not found (cargo build -p elevated -p elevate-cli)" >&2; exit 1; }
  done
  export ELEVATE_BIN_DIR ELEVATE_E2E_INSIDE=1
  exec unshare --mount --propagation private "$0" "$@"
fi

# --- inside the namespace ---------------------------------------------------------------
source "$repo/tests/lib/sandbox.sh"
source "$here/lib.sh"
sandbox_setup || exit 1
sandbox_install_bins "$ELEVATE_BIN_DIR/elevated" "$ELEVATE_BIN_DIR/elevate"

# Layout under the sandbox (all root-owned, 0755 unless said otherwise).
SOCK=$SANDBOX/run/elevated.sock
POL=$SANDBOX/policy.d
STATE=$SANDBOX/state
AUDIT=$SANDBOX/log/audit.jsonl
DLOG=$SANDBOX/log/elevated.log
CMDS=$SANDBOX/cmds
install -d -m 0755 "$SANDBOX/run" "$POL" "$SANDBOX/log" "$CMDS"
export SOCK POL STATE AUDIT DLOG CMDS

# Users: alice (webops), carol (webops only), bob (nothing), svc (a run_as target).
sandbox_user alice webops
sandbox_user carol webops
sandbox_user bob
sandbox_user svc

# t_10 writes the policy and test commands the later files use, so it always runs first.
tests=("$here/t_10_run.sh")
for t in "$@"; do [ "$(basename "$t")" = t_10_run.sh ] || tests+=("$here/$(basename "$t")"); done
[ $# -gt 0 ] || tests=("$here"/t_*.sh)
for t in "${tests[@]}"; do
  echo "# $(basename "$t")"
  # shellcheck disable=SC1090
  source "$t"
  stop_daemon
done

if [ "$FAILED" -gt 0 ]; then
  echo "# failed:"; printf '#   %s\n' "${FAILURES[@]}"
  echo "# daemon log (last 30 lines):"; tail -30 "$DLOG" | sed 's/^/#   /'
fi
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
