#!/usr/bin/env bash
# End-to-end tests: the real elevated and elevate binaries, real users and groups, real
# /etc — inside a private mount namespace with a copy of /etc, so the machine is untouched.
#
#   sudo tests/e2e/run.sh                      build (cargo) and run every tests/e2e/t_*.sh
#   sudo tests/e2e/run.sh t_60_leases.sh       only these files, in the order given (each sets up
#                                              its own users, policy and daemon: lib.sh's fixture_*)
#   ELEVATE_BIN_DIR=target/release ...         use already-built binaries
#   ELEVATE_E2E_TIMEOUT=300                    the whole suite's time limit, seconds
#
# Prints "ok - NAME" / "not ok - NAME" per assertion and ends with "N passed, N failed" alone
# on the last line; exits non-zero if anything failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
source "$repo/tests/lib/sandbox.sh"

if [ -z "${ELEVATE_E2E_INSIDE:-}" ]; then
  fail() { echo "e2e: $*" >&2; echo "0 passed, 1 failed"; exit 1; }
  [ "$(id -u)" -eq 0 ] || fail "must run as root (it creates users inside a mount namespace)"
  for t in unshare:util-linux setpriv:util-linux useradd:passwd groupadd:passwd usermod:passwd \
           python3:python3 mount:mount pgrep:procps timeout:coreutils su:util-linux \
           grpck:passwd pamtester:pamtester sshd:openssh-server ssh:openssh-client \
           ssh-keygen:openssh-client script:bsdutils dbus-daemon:dbus-daemon \
           gdbus:libglib2.0-bin dbus-send:dbus-bin busctl:systemd systemd-socket-activate:systemd \
           faketime:faketime; do
    command -v "${t%%:*}" >/dev/null || fail "missing ${t%%:*}: apt-get install ${t#*:}"
  done
  if [ -z "${ELEVATE_BIN_DIR:-}" ]; then
    if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then PATH=$HOME/.cargo/bin:$PATH; fi
    command -v cargo >/dev/null || fail "missing cargo: install a Rust toolchain (https://rustup.rs) or set ELEVATE_BIN_DIR"
    (cd "$repo" && cargo build --quiet -p elevated -p elevate-cli -p pam-elevate) ||
      fail "build failed (cargo build -p elevated -p elevate-cli -p pam-elevate)"
    ELEVATE_BIN_DIR="${CARGO_TARGET_DIR:-$repo/target}/debug"
  fi
  # The PAM module, and a copy built with the panic-injection test argument (its own target
  # directory, so the real module is never built with it).
  if [ -z "${ELEVATE_PAM_PANIC_MODULE:-}" ]; then
    if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then PATH=$HOME/.cargo/bin:$PATH; fi
    ptarget="${CARGO_TARGET_DIR:-$repo/target}/pam-panic"
    (cd "$repo" && cargo build --quiet -p pam-elevate --features panic-injection --target-dir "$ptarget") ||
      fail "build failed (cargo build -p pam-elevate --features panic-injection)"
    ELEVATE_PAM_PANIC_MODULE="$ptarget/debug/libpam_elevate.so"
  fi
  ELEVATE_PAM_MODULE=${ELEVATE_PAM_MODULE:-$ELEVATE_BIN_DIR/libpam_elevate.so}
  [ -f "$ELEVATE_PAM_MODULE" ] || fail "$ELEVATE_PAM_MODULE not found (cargo build -p pam-elevate)"
  export ELEVATE_PAM_MODULE ELEVATE_PAM_PANIC_MODULE
  ELEVATE_BIN_DIR=$(cd "$ELEVATE_BIN_DIR" 2>/dev/null && pwd) || fail "ELEVATE_BIN_DIR does not exist"
  for b in elevated elevate; do
    [ -x "$ELEVATE_BIN_DIR/$b" ] || fail "$ELEVATE_BIN_DIR/$b not found (cargo build -p elevated -p elevate-cli)"
  done
  # The counts survive the time limit in this file (outside the namespace, gone afterwards).
  E2E_COUNTS=$(mktemp /tmp/elevate-e2e-counts.XXXXXX)
  trap 'rm -f "$E2E_COUNTS"' EXIT
  export ELEVATE_BIN_DIR ELEVATE_E2E_INSIDE=1 E2E_COUNTS
  limit=${ELEVATE_E2E_TIMEOUT:-300}
  # The sandbox's parent namespace is this one: sandbox_enter's check in the child.
  SANDBOX_PARENT_NS=$(readlink /proc/self/ns/mnt); export SANDBOX_PARENT_NS
  timeout -k 10 "$limit" unshare --mount --propagation private -- bash "$0" "$@"
  rc=$?
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    read -r p f <"$E2E_COUNTS" 2>/dev/null || { p=0; f=0; }
    echo "not ok - the suite finished within ${limit}s (stopped by the time limit)"
    echo "$p passed, $((f + 1)) failed"
    exit 1
  fi
  exit "$rc"
fi

# --- inside the namespace ---------------------------------------------------------------
sandbox_in_private_ns || { echo "e2e: not in a private mount namespace" >&2; echo "0 passed, 1 failed"; exit 1; }
source "$here/lib.sh"
sandbox_setup || { echo "0 passed, 1 failed"; exit 1; }
sandbox_install_bins "$ELEVATE_BIN_DIR/elevated" "$ELEVATE_BIN_DIR/elevate"
# The copy of /etc is the machine's: an installed elevate's own config must not leak in.
rm -rf /etc/elevate

# Layout under the sandbox (all root-owned, 0755 unless said otherwise).
SOCK=$SANDBOX/run/elevated.sock
POL=$SANDBOX/policy.d
STATE=$SANDBOX/state
AUDIT=$SANDBOX/log/audit.jsonl
DLOG=$SANDBOX/log/elevated.log
CMDS=$SANDBOX/cmds
install -d -m 0755 "$SANDBOX/run" "$POL" "$SANDBOX/log" "$CMDS"
export SOCK POL STATE AUDIT DLOG CMDS
# Daemons started by the tests never touch a real system bus; t_80 starts a private one.
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$SANDBOX/run/no-system-bus

# Users, policy files and daemons are each file's own business (lib.sh's fixture_* functions,
# idempotent), so any file runs alone or after the others.
tests=()
for t in "$@"; do
  t=$here/$(basename "$t")
  [ -f "$t" ] || { echo "e2e: no such test file: $t" >&2; echo "0 passed, 1 failed"; exit 1; }
  tests+=("$t")
done
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
