#!/usr/bin/env bash
# Audit-flood benchmark (a script, not a test): prints figures against the targets.
#
#   sudo tests/bench/audit_flood.sh [SECONDS]      (default 60)
#
# One unprivileged user with no grants sends run requests with one 60,000-byte argument, one
# connection each, as fast as the daemon answers, for SECONDS; meanwhile another user runs an
# allowed command once a second. Prints the audit log's growth (target <= 1 MiB for 60 s) and
# the daemon's RSS at the end and at its peak (target <= 32 MiB), and whether every allowed
# run succeeded. Runs in a private mount namespace with a copy of /etc: the machine is
# untouched. ELEVATE_BIN_DIR=... uses built binaries (default: a release build).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SECONDS_=${1:-60}
if [ "${ELEVATE_BENCH_INNER:-}" != 1 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "audit_flood bench: run as root" >&2; exit 1; }
  if [ -z "${ELEVATE_BIN_DIR:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet -p elevated -p elevate-cli)
    ELEVATE_BIN_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/release
  fi
  ELEVATE_BIN_DIR=$(cd "$ELEVATE_BIN_DIR" && pwd)
  export ELEVATE_BIN_DIR ELEVATE_BENCH_INNER=1
  exec unshare --mount --propagation private "$0" "$@"
fi
source "$ROOT/tests/lib/sandbox.sh"
sandbox_setup
sandbox_install_bins "$ELEVATE_BIN_DIR/elevated" "$ELEVATE_BIN_DIR/elevate"
B=$SANDBOX/bin
cp "$ROOT/tests/e2e/helpers/flood.py" "$SANDBOX/flood.py"
sandbox_user flooder
sandbox_user worker
install -d -m 0755 "$SANDBOX/policy" "$SANDBOX/log"
install -d -m 0700 "$SANDBOX/state"
cat >"$SANDBOX/policy/10-bench.toml" <<'TOML'
[[profile]]
name = "bench"
users = ["worker"]

[[profile.command]]
path = "/usr/bin/true"
TOML
chmod 0644 "$SANDBOX/policy/10-bench.toml"
SOCK=$SANDBOX/s.sock
AUDIT=$SANDBOX/log/audit.jsonl
sandbox_daemon_start "$B" "$SOCK" "$SANDBOX/log/daemon.log" --config /dev/null --socket "$SOCK" \
  --policy-dir "$SANDBOX/policy" --state-dir "$SANDBOX/state" --audit-log "$AUDIT"
DPID=$SANDBOX_DPID
rss0=$(awk '/VmRSS/{print $2}' "/proc/$DPID/status")
size0=$(stat -c %s "$AUDIT")

as_user flooder python3 "$SANDBOX/flood.py" "$SOCK" "$SECONDS_" 60000 >"$SANDBOX/flood.json" &
flooder=$!
runs=0 failed=0
while kill -0 "$flooder" 2>/dev/null; do
  if as_user worker env ELEVATE_SOCKET="$SOCK" "$B/elevate" /usr/bin/true >/dev/null 2>&1; then
    runs=$((runs + 1))
  else
    failed=$((failed + 1))
  fi
  sleep 1
done
wait "$flooder"
rss1=$(awk '/VmRSS/{print $2}' "/proc/$DPID/status")
hwm=$(awk '/VmHWM/{print $2}' "/proc/$DPID/status")
growth=$(( $(stat -c %s "$AUDIT") - size0 ))
sandbox_daemon_stop "$DPID" || true
coalesced=$(grep -c '"event":"audit.coalesced"' "$AUDIT" || true)

echo "flood ($SECONDS_ s, one 60,000-byte argument): $(cat "$SANDBOX/flood.json")"
echo "audit log growth: $growth bytes ($(awk -v b="$growth" 'BEGIN{printf "%.2f", b/1048576}') MiB; target <= 1 MiB for 60 s); audit.coalesced records: $coalesced"
echo "daemon RSS: $((rss0 / 1024)) MiB before, $((rss1 / 1024)) MiB after, peak $((hwm / 1024)) MiB (target <= 32 MiB)"
echo "other user's allowed runs meanwhile: $runs succeeded, $failed failed"
