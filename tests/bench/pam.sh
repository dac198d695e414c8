#!/usr/bin/env bash
# pam_elevate.so's cost to a login: `pamtester SERVICE USER acct_mgmt` through a stack with
# pam_elevate.so, against the same stack with only pam_permit.so, side by side in one run
# (hyperfine). Three cases for the module: a user no rule gates (the daemon answers
# PAM_IGNORE), a gated user allowed by a standing rule (an audit record is fsync'd before the
# answer), and a gated user allowed by an active lease.
#
# Run as root on Debian/Ubuntu:   sudo tests/bench/pam.sh
# Inside a private mount namespace with a copy of /etc: the services, users and policy exist
# only there. The state and audit log are on the real disk (target/bench/pam), as in
# production. Environment: ELEVATE_BIN_DIR (release elevated, elevate and
# libpam_elevate.so), BENCH_RUNS=300, BENCH_WARMUP=30.
#
# Prints a table (p50 of each, the module's added latency, the target: ≤ 1 ms at p50) and
# writes target/bench/pam.json. Exit status: non-zero only when something could not be measured.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT="$ROOT/target/bench"
RUNS=${BENCH_RUNS:-300}
WARMUP=${BENCH_WARMUP:-30}
die() { echo "bench-pam: $*" >&2; exit 1; }

if [ "${ELEVATE_BENCH_INNER:-}" != 1 ]; then
  [ "$(id -u)" -eq 0 ] || die "needs root (users, PAM services and a mount namespace): sudo $0"
  missing=()
  for p in pamtester hyperfine util-linux passwd python3; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
      die "could not install ${missing[*]}: apt-get install -y ${missing[*]}"
  fi
  if [ -n "${ELEVATE_BIN_DIR:-}" ]; then
    BIN_DIR=$(cd "$ELEVATE_BIN_DIR" && pwd)
  else
    if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
    command -v cargo >/dev/null || die "no cargo: install Rust (rustup), or set ELEVATE_BIN_DIR"
    (cd "$ROOT" && cargo build --release --quiet -p elevated -p elevate-cli -p pam-elevate) || die "release build failed"
    BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/release"
  fi
  for f in elevated elevate libpam_elevate.so; do [ -e "$BIN_DIR/$f" ] || die "$BIN_DIR/$f missing (cargo build --release -p elevated -p elevate-cli -p pam-elevate)"; done
  mkdir -p "$OUT"
  export ELEVATE_BENCH_INNER=1 BIN_DIR
  exec unshare --mount --propagation private -- bash "${BASH_SOURCE[0]}" "$@"
fi

# --- inside the namespace -------------------------------------------------------------------
. "$ROOT/tests/lib/sandbox.sh"
sandbox_setup
install -d -m 0755 "$SANDBOX/bin" "$SANDBOX/lib" "$SANDBOX/policy.d"
install -m 0755 "$BIN_DIR/elevated" "$BIN_DIR/elevate" "$SANDBOX/bin/"
install -m 0644 "$BIN_DIR/libpam_elevate.so" "$SANDBOX/lib/pam_elevate.so"
MOD=$SANDBOX/lib/pam_elevate.so
sandbox_user pb-free
sandbox_user pb-standing
sandbox_user pb-lease

SOCK=$SANDBOX/elevated.sock
printf '#%%PAM-1.0\naccount required pam_permit.so\n' >/etc/pam.d/pb-permit
printf '#%%PAM-1.0\naccount required %s socket=%s\naccount required pam_permit.so\n' "$MOD" "$SOCK" >/etc/pam.d/pb-elevate
cat >"$SANDBOX/policy.d/10-bench.toml" <<'TOML'
[[login]]
services = ["pb-elevate"]
users = ["pb-standing"]
access = "standing"

[[login]]
services = ["pb-elevate"]
users = ["pb-lease"]
access = "lease"

[[profile]]
name = "pb-shell"
users = ["pb-lease"]
access = "lease"
login = ["pb-elevate"]
max_duration = "1h"
TOML
chmod 0644 /etc/pam.d/pb-* "$SANDBOX/policy.d/10-bench.toml"
RUN=$OUT/pam
rm -rf "$RUN"; install -d -m 0700 "$RUN" "$RUN/state"
printf '[limits]\nrequests_per_second = 1000000\nburst = 1000000\n' >"$SANDBOX/elevated.toml"
"$SANDBOX/bin/elevated" --config "$SANDBOX/elevated.toml" --socket "$SOCK" --policy-dir "$SANDBOX/policy.d" \
  --state-dir "$RUN/state" --audit-log "$RUN/audit.jsonl" >"$RUN/elevated.log" 2>&1 &
DPID=$!
trap 'kill $DPID 2>/dev/null; wait $DPID 2>/dev/null' EXIT
for _ in $(seq 100); do "$SANDBOX/bin/elevate" --socket "$SOCK" status >/dev/null 2>&1 && break; sleep 0.05; done
setpriv --reuid=pb-lease --regid=pb-lease --init-groups env ELEVATE_SOCKET="$SOCK" \
  "$SANDBOX/bin/elevate" request pb-shell --for 1h --reason bench >/dev/null || die "lease request failed"
for u in pb-free pb-standing pb-lease; do
  pamtester pb-elevate "$u" acct_mgmt >/dev/null 2>&1 || die "pamtester pb-elevate $u acct_mgmt fails"
done

hyperfine -N --style basic --runs "$RUNS" --warmup "$WARMUP" --export-json "$OUT/pam-hyperfine.json" \
  -n "pam_permit only" "pamtester pb-permit pb-free acct_mgmt" \
  -n "pam_elevate, not gated" "pamtester pb-elevate pb-free acct_mgmt" \
  -n "pam_elevate, standing rule" "pamtester pb-elevate pb-standing acct_mgmt" \
  -n "pam_elevate, active lease" "pamtester pb-elevate pb-lease acct_mgmt" >&2

python3 - "$OUT/pam-hyperfine.json" "$OUT/pam.json" <<'PY'
import json, statistics, sys
res = {r["command"]: sorted(r["times"]) for r in json.load(open(sys.argv[1]))["results"]}
def pct(xs, p): return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000
base = pct(res["pam_permit only"], 50)
rows, out = [], {"baseline_p50_ms": round(base, 3)}
print("\npamtester acct_mgmt (one process per login check), p50 / p90 in ms:")
print(f"  {'stack':34} {'p50':>7} {'p90':>7} {'added p50':>10}")
for name, ts in res.items():
    p50, p90 = pct(ts, 50), pct(ts, 90)
    added = p50 - base
    print(f"  {name:34} {p50:7.3f} {p90:7.3f} {added:+10.3f}")
    out[name] = {"p50_ms": round(p50, 3), "p90_ms": round(p90, 3), "added_p50_ms": round(added, 3)}
worst = max(v["added_p50_ms"] for k, v in out.items() if isinstance(v, dict) and k != "pam_permit only")
verdict = "met" if worst <= 1.0 else "MISSED"
print(f"\n  target: pam_elevate.so adds <= 1 ms at p50: worst case +{worst:.3f} ms -> {verdict}")
out["worst_added_p50_ms"] = worst; out["target_met"] = worst <= 1.0
json.dump(out, open(sys.argv[2], "w"), indent=1)
PY
