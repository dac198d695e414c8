# shellcheck shell=bash
# Assertions and daemon control for the end-to-end suite. Sourced by run.sh inside the sandbox.

PASSED=0
FAILED=0
FAILURES=()

ok() { PASSED=$((PASSED + 1)); echo "ok - $1"; }
notok() {
  FAILED=$((FAILED + 1)); FAILURES+=("$1"); echo "not ok - $1"
  shift; local l; for l in "$@"; do printf '    %s\n' "$l"; done
}

# capture CMD...: sets OUT, ERR, RC.
capture() {
  local errf; errf=$(mktemp)
  OUT=$("$@" 2>"$errf"); RC=$?
  ERR=$(cat "$errf"); rm -f "$errf"
}

# expect NAME RC REGEX CMD...: CMD exits RC and stdout+stderr match the extended REGEX ('' = any).
expect() {
  local name=$1 want=$2 pat=$3; shift 3
  capture "$@"
  if [ "$RC" = "$want" ] && { [ -z "$pat" ] || grep -qE -- "$pat" <<<"$OUT"$'\n'"$ERR"; }; then
    ok "$name"
  else
    notok "$name" "exit $RC (want $want), pattern: $pat" "stdout: ${OUT:0:600}" "stderr: ${ERR:0:600}"
  fi
}

# expect_not NAME REGEX: the last captured output must NOT match.
expect_not() {
  if grep -qE -- "$2" <<<"$OUT"$'\n'"$ERR"; then notok "$1" "unexpected match for $2" "stdout: ${OUT:0:600}"; else ok "$1"; fi
}

# assert NAME CMD...: CMD succeeds.
assert() {
  local name=$1; shift
  if "$@"; then ok "$name"; else notok "$name" "failed: $*"; fi
}

# The CLI as USER, with the test socket and a clean environment (plus VAR=value words
# before the command, e.g.: as alice LANG=C elevate id).
as() {
  local u=$1; shift
  as_user "$u" env ELEVATE_SOCKET="$SOCK" PATH="$SANDBOX/bin:/usr/bin:/bin" "$@"
}

# Daemon control. DAEMON_ARGS may add flags (e.g. another --config).
start_daemon() {
  "$SANDBOX/bin/elevated" --config "${CONFIG:-/dev/null}" --socket "$SOCK" --policy-dir "${POLICY_DIR:-$POL}" \
    --state-dir "$STATE" --audit-log "${AUDIT_LOG:-$AUDIT}" >>"$DLOG" 2>&1 &
  DPID=$!
  local i
  for i in $(seq 200); do
    "$SANDBOX/bin/elevate" --socket "$SOCK" status >/dev/null 2>&1 && return 0
    kill -0 "$DPID" 2>/dev/null || break
    sleep 0.05
  done
  echo "daemon did not start; log:" >&2; tail -20 "$DLOG" >&2
  return 1
}

stop_daemon() {
  [ -n "${DPID:-}" ] || return 0
  kill -TERM "$DPID" 2>/dev/null
  wait "$DPID" 2>/dev/null
  DPID=
}

# Reload and wait until the daemon reports a reload newer than the previous one.
reload_daemon() {
  local before after i
  before=$(status_field last_reload.at)
  sleep 0.01
  kill -HUP "$DPID"
  for i in $(seq 100); do
    after=$(status_field last_reload.at)
    [ "$after" != "$before" ] && return 0
    sleep 0.05
  done
  return 1
}

# status_field a.b: one field of `elevate status --json`.
status_field() {
  "$SANDBOX/bin/elevate" --socket "$SOCK" status --json 2>/dev/null |
    python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[k]
print(json.dumps(v) if isinstance(v,(list,dict,bool)) else v)' "$1"
}

# Write a policy file (root-owned 0644) from stdin.
policy_file() {
  cat >"$POL/$1"
  chown root:root "$POL/$1"
  chmod 0644 "$POL/$1"
}

# wait_gone PID SECONDS: true once PID no longer exists.
wait_gone() {
  local i
  for i in $(seq $(($2 * 20))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
  return 1
}
