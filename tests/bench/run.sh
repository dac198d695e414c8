#!/usr/bin/env bash
# elevate's benchmark: one run, one machine, everything side by side.
#
#   1. `elevate run /usr/bin/true` vs `sudo -n /usr/bin/true` vs `doas -n /usr/bin/true` vs
#      `/usr/bin/true`, as the same unprivileged user with equivalent rules (hyperfine -N).
#   2. Decision throughput and latency with 64 concurrent clients (elevate-loadgen, `check`).
#   3. The daemon's RSS (VmRSS, VmHWM) with the shipped example policy, after the runs.
#
# Run as root on Debian/Ubuntu:   sudo tests/bench/run.sh
# Everything happens inside a private mount namespace with a copy of /etc bound over /etc and
# a tmpfs on /home: the user, the sudoers rule, doas.conf and the policy exist only there.
#
# Environment:
#   ELEVATE_BIN_DIR   take elevated, elevate and elevate-loadgen from here instead of building
#                     them (`cargo build --release -p elevated -p elevate-cli -p elevate-bench`)
#   BENCH_RUNS=200 BENCH_WARMUP=20            hyperfine runs and warm-up runs per command
#   BENCH_CLIENTS=64 BENCH_DURATION=5         load generator clients and measured seconds
#
# Output: a table with each figure, its target and PASS/MISS, and target/bench/summary.json.
# Exit status: 0 when everything was measured (missed targets are reported, not failures),
# non-zero only when something could not be measured.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/tests/bench"
OUT="$ROOT/target/bench"
USER_NAME=benchuser
HF_RUNS=${BENCH_RUNS:-200}
HF_WARMUP=${BENCH_WARMUP:-20}
LG_CLIENTS=${BENCH_CLIENTS:-64}
LG_DURATION=${BENCH_DURATION:-5}
LG_WARMUP=1

die() { echo "bench: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }

# --- outside the namespace: prerequisites and binaries -------------------------------------

if [ "${ELEVATE_BENCH_INNER:-}" != 1 ]; then
  [ "$(id -u)" -eq 0 ] || die "needs root (it creates a user and a mount namespace): sudo $0"

  need=(sudo opendoas hyperfine util-linux passwd procps python3)
  missing=()
  for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
      die "could not install ${missing[*]}; install them with: apt-get update && apt-get install -y ${missing[*]}"
  fi

  if [ -n "${ELEVATE_BIN_DIR:-}" ]; then
    BIN_DIR=$(cd "$ELEVATE_BIN_DIR" && pwd)
  else
    if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
      export PATH="$HOME/.cargo/bin:$PATH"
    fi
    command -v cargo >/dev/null || die "no cargo: install Rust (rustup), or set ELEVATE_BIN_DIR"
    target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
    say "building release binaries in $target_dir"
    (cd "$ROOT" && CARGO_TARGET_DIR="$target_dir" cargo build --release --quiet \
      -p elevated -p elevate-cli -p elevate-bench) || die "release build failed"
    BIN_DIR="$target_dir/release"
  fi
  for b in elevated elevate elevate-loadgen; do
    [ -x "$BIN_DIR/$b" ] || die "$BIN_DIR/$b is missing (build: cargo build --release -p elevated -p elevate-cli -p elevate-bench)"
  done

  mkdir -p "$OUT"
  export ELEVATE_BENCH_INNER=1 BIN_DIR
  exec unshare --mount --propagation private -- bash "${BASH_SOURCE[0]}" "$@"
fi

# --- inside the private mount namespace ----------------------------------------------------

# shellcheck source=tests/lib/sandbox.sh
. "$ROOT/tests/lib/sandbox.sh"
sandbox_setup # /etc copy bound over /etc, tmpfs /home, root-owned 0755 tmpfs $SANDBOX on /mnt
SCRATCH=$SANDBOX

PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

# Binaries where the unprivileged user can execute them, whatever the checkout's permissions.
install -d -m 0755 "$SCRATCH/bin"
install -m 0755 "$BIN_DIR/elevated" "$BIN_DIR/elevate" "$BIN_DIR/elevate-loadgen" "$SCRATCH/bin/"
BIN="$SCRATCH/bin"

sandbox_user "$USER_NAME"
USER_HOME=$(getent passwd "$USER_NAME" | cut -d: -f6)

# Equivalent rules for the three tools: benchuser may run /usr/bin/true as root, no password.
# sudo: Debian's default /etc/sudoers stays as it is (env_reset, mail_badpass, secure_path,
# use_pty, @includedir /etc/sudoers.d); only this one drop-in is added.
printf '%s ALL=(root) NOPASSWD: /usr/bin/true\n' "$USER_NAME" >/etc/sudoers.d/90-elevate-bench
chmod 0440 /etc/sudoers.d/90-elevate-bench
visudo -cq || die "sudoers does not validate"
printf 'permit nopass %s as root cmd /usr/bin/true\n' "$USER_NAME" >/etc/doas.conf
chmod 0400 /etc/doas.conf

# elevate: the shipped example policy plus one profile for the benchmark.
POLICY_DIR="$SCRATCH/policy.d"
install -d -m 0755 "$POLICY_DIR"
install -m 0644 "$ROOT"/policy.d/*.toml "$POLICY_DIR/"
policy_files=$(find "$POLICY_DIR" -name '*.toml' | wc -l)
cat >"$POLICY_DIR/90-bench.toml" <<EOF
# Benchmark only: the same rule as the sudoers drop-in and doas.conf.
[[profile]]
name = "bench-true"
description = "Benchmark: run /usr/bin/true as root"
users = ["$USER_NAME"]
run_as = "root"
access = "standing"

[[profile.command]]
path = "/usr/bin/true"
EOF
chmod 0644 "$POLICY_DIR/90-bench.toml"

# The decision benchmark sends far more requests per second from one uid than the abuse
# limits allow (50/s, burst 100, 32 connections per uid): raise them, and say so.
CONFIG="$SCRATCH/elevated.toml"
cat >"$CONFIG" <<'EOF'
[limits]
requests_per_second = 10000000
burst = 10000000
max_connections = 1024
max_connections_per_uid = 256
EOF

# State and the audit log on the real disk, as in production: the fsync of every run's audit
# record is part of what `elevate run` costs.
RUN_DIR="$OUT/run"
rm -rf "$RUN_DIR"
install -d -m 0700 "$RUN_DIR" "$RUN_DIR/state"
SOCK="$SCRATCH/elevated.sock"
DAEMON_LOG="$RUN_DIR/elevated.log"

"$BIN/elevated" --config "$CONFIG" --socket "$SOCK" --policy-dir "$POLICY_DIR" \
  --state-dir "$RUN_DIR/state" --audit-log "$RUN_DIR/audit.jsonl" >"$DAEMON_LOG" 2>&1 &
DPID=$!
stop_daemon() {
  if [ -n "${DPID:-}" ] && kill -0 "$DPID" 2>/dev/null; then
    kill -TERM "$DPID" 2>/dev/null || true
    wait "$DPID" 2>/dev/null || true
  fi
  DPID=
}
trap 'stop_daemon' EXIT
for _ in $(seq 100); do
  [ -S "$SOCK" ] && break
  kill -0 "$DPID" 2>/dev/null || { cat "$DAEMON_LOG" >&2; die "elevated exited at start"; }
  sleep 0.05
done
[ -S "$SOCK" ] || die "elevated did not create $SOCK (log: $DAEMON_LOG)"

status_kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$DPID/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$DPID/stat"; }
rss_start_kib=$(status_kib VmRSS)

# Run as the unprivileged user: its uid, gid and groups, a clean environment, in its home.
as_user() {
  (cd "$USER_HOME" && setpriv --reuid="$USER_NAME" --regid="$USER_NAME" --init-groups --reset-env -- "$@")
}

USER_OUT="$SCRATCH/out"
install -d -m 0755 -o "$USER_NAME" "$USER_OUT"

# Every command must work before it is timed (hyperfine would also stop on a failure, less clearly).
ELEVATE_CMD="$BIN/elevate --socket $SOCK run /usr/bin/true"
for cmd in "/usr/bin/true" "$ELEVATE_CMD" "sudo -n /usr/bin/true" "doas -n /usr/bin/true"; do
  # shellcheck disable=SC2086 # the command is deliberately split into words, as hyperfine -N does
  as_user $cmd </dev/null || die "as $USER_NAME, \`$cmd\` failed (exit $?): nothing to compare"
done

say "1/3 hyperfine: $HF_RUNS runs of each command as $USER_NAME"
as_user hyperfine -N --style basic --warmup "$HF_WARMUP" --runs "$HF_RUNS" \
  --export-json "$USER_OUT/hyperfine.json" \
  -n true "/usr/bin/true" \
  -n elevate "$ELEVATE_CMD" \
  -n sudo "sudo -n /usr/bin/true" \
  -n doas "doas -n /usr/bin/true" >&2 || die "hyperfine failed"

say "2/3 elevate-loadgen: $LG_CLIENTS clients for ${LG_DURATION}s as $USER_NAME"
cpu0=$(cpu_ticks)
t0=$(date +%s.%N)
lg_rc=0
as_user "$BIN/elevate-loadgen" --socket "$SOCK" --clients "$LG_CLIENTS" --duration "$LG_DURATION" \
  --warmup "$LG_WARMUP" --json >"$USER_OUT/loadgen.json" || lg_rc=$?
t1=$(date +%s.%N)
cpu1=$(cpu_ticks)
case $lg_rc in
  0) ;;
  1) say "the load generator saw errors: they are in the table" ;;
  *) die "the load generator could not measure (exit $lg_rc)" ;;
esac

say "3/3 daemon memory"
rss_kib=$(status_kib VmRSS)
hwm_kib=$(status_kib VmHWM)
kill -0 "$DPID" 2>/dev/null || die "elevated died during the benchmark (log: $DAEMON_LOG)"
stop_daemon

cp "$USER_OUT/hyperfine.json" "$USER_OUT/loadgen.json" "$OUT/"
FACTS="$OUT/facts.env"
{
  echo "nproc=$(nproc)"
  echo "cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  echo "mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "kernel=$(uname -r)"
  echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "sudo_version=$(sudo -V | head -n1)"
  echo "doas_version=$(dpkg-query -W -f='${Version}' opendoas 2>/dev/null || echo unknown)"
  echo "hyperfine_version=$(hyperfine --version)"
  echo "elevate_version=$("$BIN/elevated" --version 2>/dev/null | awk '{ print $NF }')"
  echo "user=$USER_NAME"
  echo "hf_runs=$HF_RUNS"
  echo "hf_warmup=$HF_WARMUP"
  echo "daemon_cpu_s_during_load=$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$(getconf CLK_TCK)" 'BEGIN { print (b - a) / hz }')"
  echo "load_wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
  echo "rss_start_kib=$rss_start_kib"
  echo "rss_kib=$rss_kib"
  echo "hwm_kib=$hwm_kib"
  echo "policy_files=$policy_files"
} >"$FACTS"

"$PY" "$HERE/summarize.py" "$FACTS" "$OUT/hyperfine.json" "$OUT/loadgen.json" "$OUT/summary.json"
