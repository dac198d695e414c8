# shellcheck shell=bash
# Assertions, JSON look-ups, shared fixtures and daemon control for the end-to-end suite.
# Sourced by run.sh inside the sandbox.

PASSED=0
FAILED=0
FAILURES=()

# The counts also go to $E2E_COUNTS (if set) after every assertion, so that run.sh can still
# report them if the suite is stopped by its time limit.
counts() { [ -z "${E2E_COUNTS:-}" ] || echo "$PASSED $FAILED" >"$E2E_COUNTS"; }
ok() { PASSED=$((PASSED + 1)); echo "ok - $1"; counts; }
# notok NAME DETAIL...: each DETAIL follows, every line of it indented.
notok() {
  FAILED=$((FAILED + 1)); FAILURES+=("$1"); echo "not ok - $1"
  shift; local l; for l in "$@"; do printf '%s\n' "$l" | sed 's/^/    /'; done
  counts
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

# assert NAME CMD...: CMD succeeds. Its output is shown only if it fails, under the "not ok"
# line (e.g. the AssertionError of a Python check given as a here-document: CMD gets assert's
# stdin). Sets OUT, ERR and RC like capture.
assert() {
  local name=$1; shift
  capture "$@"
  if [ "$RC" = 0 ]; then ok "$name"; else
    notok "$name" "exit $RC: $*" ${OUT:+"stdout: ${OUT:0:1500}"} ${ERR:+"stderr: ${ERR:0:1500}"}
  fi
}

# The CLI as USER, with the test socket and a clean environment (plus VAR=value words
# before the command, e.g.: as alice LANG=C elevate id).
# Every such command is stopped after $T seconds (default 30) so that a hang fails one
# assertion instead of the suite; --foreground keeps it in the caller's process group.
as() {
  local u=$1; shift
  as_user "$u" /usr/bin/timeout --foreground -k 5 "${T:-30}" \
    env ELEVATE_SOCKET="$SOCK" PATH="$SANDBOX/bin:/usr/bin:/bin" "$@"
}

# as_sh USER 'shell code': a shell as USER with the same environment as `as`.
as_sh() { as "$1" sh -c "$2"; }

# Daemon control (tests/lib/sandbox.sh does the work). CONFIG, POLICY_DIR, STATE and
# AUDIT_LOG may be overridden per call (e.g. CONFIG=$SANDBOX/limits.toml start_daemon).
start_daemon() {
  sandbox_daemon_start "$SANDBOX/bin" "$SOCK" "$DLOG" --config "${CONFIG:-/dev/null}" --socket "$SOCK" \
    --policy-dir "${POLICY_DIR:-$POL}" --state-dir "$STATE" --audit-log "${AUDIT_LOG:-$AUDIT}" "$@" || return 1
  DPID=$SANDBOX_DPID
}

# stop_daemon: SIGTERM and wait; the daemon's exit status is left in DRC.
stop_daemon() {
  DRC=
  [ -n "${DPID:-}" ] || return 0
  sandbox_daemon_stop "$DPID"; DRC=$?
  DPID=
}

# Reload and wait until the daemon reports a reload newer than the previous one.
reload_daemon() {
  sandbox_daemon_reload "$SANDBOX/bin" "$SOCK" "$DPID" || { echo "# reload_daemon: no new reload reported" >&2; return 1; }
}

# status_field a.b: one field of `elevate status --json` (json_get .a.b: a missing field says so).
status_field() { "$SANDBOX/bin/elevate" --socket "$SOCK" status --json | json_get ".$1"; }

# Write a policy file (root-owned 0644) from stdin.
policy_file() {
  cat >"$POL/$1"
  chown root:root "$POL/$1"
  chmod 0644 "$POL/$1"
}

# in_group USER GROUP: a new login of USER would be in GROUP (id reads /etc/group now).
in_group() { id -nG "$1" | tr ' ' '\n' | grep -qx "$2"; }

# wait_for SECONDS CMD...: run CMD every 0.1 s until it succeeds or SECONDS pass.
wait_for() { local i; for i in $(seq $(($1 * 10))); do "${@:2}" && return 0; sleep 0.1; done; return 1; }

# alive PID: the process exists and is not a zombie.
alive() {
  local st
  st=$(sed 's/.*) //' "/proc/${1:-none}/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "${st%% *}" != Z ]
}

# wait_gone PID SECONDS: true once PID no longer runs.
wait_gone() {
  local i
  for i in $(seq $(($2 * 20))); do alive "$1" || return 0; sleep 0.05; done
  return 1
}

# mkcmd NAME MODE <<script: a root-owned test command in $CMDS.
mkcmd() {
  cat >"$CMDS/$1"; chown root:root "$CMDS/$1"; chmod "$2" "$CMDS/$1"
}

# wait_file FILE SECONDS: true once FILE exists and is not empty.
wait_file() {
  local i
  for i in $(seq $(($2 * 20))); do [ -s "$1" ] && return 0; sleep 0.05; done
  return 1
}

# --- JSON -------------------------------------------------------------------------------
# JSON on stdin, a jq-like PATH (helpers/json_pick.py says it all): .key, [N], [], [key=value]
# (the elements whose key is value; [k=a|b,k2=c] for either value and both keys), and a final
# `| length` or `| keys`. When PATH does not fit, the error names the step (e.g. the missing
# key and the keys there are) and shows the JSON.
JSON_PICK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/helpers/json_pick.py
# json_get [--json] PATH: each value PATH selects, one per line; strings bare and the rest as
# JSON (--json: strings quoted too, so "false" and false differ). Fails if PATH selects nothing.
json_get() { python3 "$JSON_PICK" get "$@"; }
# json_count PATH: how many values PATH selects (0 is an answer; a missing key is an error).
json_count() { python3 "$JSON_PICK" count "$@"; }
# json_has PATH...: true when every PATH selects at least one value.
json_has() { python3 "$JSON_PICK" has "$@"; }

# --- Shared fixtures ----------------------------------------------------------------------
# Each t_*.sh calls the ones it needs, so that it runs alone (run.sh t_60_leases.sh) as well as
# after the others. Each is idempotent: after the first call, later ones do nothing.
FIXTURES=" "
# fixture_once NAME: true the first time it is asked for NAME, false after.
fixture_once() { [[ "$FIXTURES" != *" $1 "* ]] && FIXTURES+="$1 "; }

# fixture_user NAME [GROUP...]: the user NAME (home on the sandbox's /home) in GROUPs, unless
# NAME exists already.
fixture_user() { id -u "$1" >/dev/null 2>&1 || sandbox_user "$@"; }

# fixture_users: alice (webops), carol (webops only), bob (nothing), svc (a run_as target).
fixture_users() {
  fixture_user alice webops
  fixture_user carol webops
  fixture_user bob
  fixture_user svc
}

# fixture_commands: the root-owned test commands in $CMDS that the base policy names.
fixture_commands() {
  fixture_once commands || return 0
  fixture_users   # bob owns some of them
  mkcmd exit-with 0755 <<'SH'
#!/bin/sh
exit "$1"
SH
  mkcmd selfkill 0755 <<'SH'
#!/bin/sh
kill -TERM $$
SH
  mkcmd sleeper 0755 <<SH
#!/bin/sh
echo \$\$ > $SANDBOX/run/sleeper.pid
exec sleep "\$1"
SH
  mkcmd ww-script 0777 <<'SH'
#!/bin/sh
echo should-never-run
SH
  # Each refused executable breaks exactly one rule; everything else about it is fine.
  local never='#!/bin/sh
echo should-never-run'
  install -d -m 0775 "$CMDS/gw" && mkcmd gw/script 0755 <<<"$never"        # group-writable dir
  install -d -m 0757 "$CMDS/ow" && mkcmd ow/script 0755 <<<"$never"        # world-writable dir
  install -d -m 0755 -o bob "$CMDS/bobdir" && mkcmd bobdir/script 0755 <<<"$never"  # dir not root's
  install -d -m 0755 "$CMDS/ok"
  mkcmd ok/bob-owned 0755 <<<"$never"; chown bob "$CMDS/ok/bob-owned"      # file not root's
  mkcmd ok/gw-file 0775 <<<"$never"                                        # group-writable file
  mkcmd ok/fine 0755 <<'SH'
#!/bin/sh
echo fine
SH
  ln -sf /usr/bin/whoami "$CMDS/whoami-link"
  ln -sfn /usr/bin "$CMDS/bin-link"        # a symlinked directory on the way to a real binary
  mkcmd usr1 0755 <<SH
#!/bin/sh
trap 'exit 42' USR1
echo \$\$ > $SANDBOX/run/usr1.pid
while :; do sleep 0.1; done
SH
}

# fixture_policy NAME: a shared policy file in $POL, with the users and commands it names.
#   base   10-test.toml: "basic" (alice: the test commands, argument patterns, env_keep_unsafe KEEPME),
#          "as-svc" (group webops: id -un/-gn as svc), "lease-only" (alice: uptime, by lease)
fixture_policy() {
  case $1 in
    base) ;;
    *) echo "fixture_policy: no shared policy named '$1' (there is: base)" >&2; return 1 ;;
  esac
  fixture_users
  fixture_commands
  fixture_once "policy-$1" || return 0
  policy_file 10-test.toml <<TOML
[[profile]]
name = "basic"
description = "alice's test commands"
users = ["alice"]
env_keep_unsafe = ["KEEPME"]

[[profile.command]]
path = "/usr/bin/id"
rest = "any"

[[profile.command]]
path = "/usr/bin/env"

[[profile.command]]
path = "/usr/bin/cat"

[[profile.command]]
path = "/usr/bin/pwd"

[[profile.command]]
path = "/usr/bin/false"

[[profile.command]]
path = "/usr/bin/echo"
args = ["restart", { one_of = ["nginx.service", "php-fpm.service"] }]

[[profile.command]]
path = "/usr/bin/echo"
args = ["since", { regex = "--since=[0-9:-]+" }]

[[profile.command]]
path = "/usr/bin/printf"
args = ["%s|"]
rest = "any"

[[profile.command]]
path = "$CMDS/exit-with"
args = [{ regex = "[0-9]+" }]

[[profile.command]]
path = "$CMDS/selfkill"

[[profile.command]]
path = "$CMDS/sleeper"
args = [{ regex = "[0-9]+" }]

[[profile.command]]
path = "$CMDS/ww-script"

[[profile.command]]
path = "$CMDS/gw/script"

[[profile.command]]
path = "$CMDS/ok/bob-owned"

[[profile.command]]
path = "$CMDS/ow/script"

[[profile.command]]
path = "$CMDS/bobdir/script"

[[profile.command]]
path = "$CMDS/ok/gw-file"

[[profile.command]]
path = "$CMDS/ok/fine"

[[profile.command]]
path = "$CMDS/usr1"

[[profile.command]]
path = "$CMDS/whoami-link"

[[profile]]
name = "as-svc"
groups = ["webops"]
run_as = "svc"

[[profile.command]]
path = "/usr/bin/id"
args = [{ one_of = ["-un", "-gn"] }]

[[profile]]
name = "lease-only"
users = ["alice"]
access = "lease"

[[profile.command]]
path = "/usr/bin/uptime"
TOML
}
