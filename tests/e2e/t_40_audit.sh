# shellcheck shell=bash
# The audit trail: every decision recorded, tamper-evident, and no audit means no run.

fixture_policy base
start_daemon || return
# One record of each kind the checks below look for, whatever ran before this file: a refusal
# (ww-script is world-writable), then an allowed run with its exit, then a denial.
as alice elevate "$CMDS/ww-script" >/dev/null 2>&1
as alice elevate id -u >/dev/null
as bob elevate id -u >/dev/null 2>&1
stop_daemon   # daemon.stop is the last record

ANCHOR=$STATE/audit-anchor.json
verify() { "$SANDBOX/bin/elevate" audit verify "$@"; }
expect "audit verify passes on the daemon's log" 0 'audit log OK' verify "$AUDIT" --anchor "$ANCHOR"
grep -q '"event":"run.allowed"' "$AUDIT" && grep -q '"event":"run.denied"' "$AUDIT" && grep -q '"event":"run.exit"' "$AUDIT" \
  && ok "allowed, denied and exit records are written" || notok "allowed, denied and exit records are written" "events in the log:" "$(grep -o '"event":"[a-z._]*"' "$AUDIT" | sort | uniq -c)"
assert "records carry requester, argv, profile, decision and UTC time" \
  python3 - "$AUDIT" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
a = [r for r in recs if r["event"] == "run.allowed"][-1]
assert a["requester"]["user"] == "alice" and a["requester"]["uid"] > 0 and a["requester"]["pid"] > 0, ("last run.allowed", a)
assert a["argv"] == ["/usr/bin/id", "-u"] and a["profile"] == "basic" and a["decision"] == "allow", ("last run.allowed", a)
assert a["time"].endswith("Z") and a["run_as"] == "root", ("last run.allowed", a)
d = [r for r in recs if r["event"] == "run.denied"][-1]
assert d["requester"]["user"] == "bob" and d["reason"], ("last run.denied", d)
e = [r for r in recs if r["event"] == "run.exit"][-1]
assert e["status"] == {"code": 0} and e["allowed_seq"] == a["seq"], ("last run.exit", e, "last run.allowed seq", a["seq"])
PY

assert "every record has v, seq, time, event, prev, hash; seq counts up by one and prev links" \
  python3 - "$AUDIT" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
for i, r in enumerate(recs):
    for k in ("v", "seq", "time", "event", "prev", "hash"):
        assert k in r, (i + 1, k, r)
    if i:
        assert r["seq"] == recs[i - 1]["seq"] + 1, (i + 1, r["seq"])
        assert r["prev"] == recs[i - 1]["hash"], (i + 1, "prev")
# The initial policy load may be recorded just before daemon.start.
assert "daemon.start" in [r["event"] for r in recs[:2]], [r["event"] for r in recs[:2]]
assert recs[-1]["event"] == "daemon.stop", recs[-1]["event"]
known = {"daemon.start", "policy.reload", "run.allowed", "run.denied", "run.refused", "run.exit", "daemon.stop"}
assert {r["event"] for r in recs} >= known, known - {r["event"] for r in recs}
PY
assert "every run.* record names the requester (uid, user, pid, exe, tty, loginuid, session) and argv; allowed ones their profile" \
  python3 - "$AUDIT" <<'PY'
import json, sys
bad = []
for n, l in enumerate(open(sys.argv[1]), 1):
    r = json.loads(l)
    if not r["event"].startswith("run."):
        continue
    missing = [k for k in ("requester", "argv") if k not in r]
    missing += ["requester." + k for k in ("uid", "user", "pid", "exe", "tty", "loginuid", "session") if k not in r.get("requester", {})]
    # A profile was chosen for every allowed run (rate-limit refusals come before any decision).
    if (r["event"] in ("run.allowed", "run.exit") or r.get("decision") == "allow") and not r.get("profile"):
        missing.append("profile (empty)")
    if not r.get("requester", {}).get("user"):
        missing.append("requester.user (empty)")
    if missing:
        why = r.get("error") or r.get("reason") or ""
        bad.append("line %d (%s): missing %s%s" % (n, r["event"], ", ".join(missing), " — " + why if why else ""))
for b in bad: print(b)
sys.exit(1 if bad else 0)
PY
assert "daemon.start and daemon.stop pair up across restarts" \
  python3 - "$AUDIT" <<'PY'
import json, sys
ev = [json.loads(l)["event"] for l in open(sys.argv[1])]
d = [e for e in ev if e.startswith("daemon.")]
assert d == ["daemon.start", "daemon.stop"] * (len(d) // 2) and len(d) % 2 == 0, d
PY

tampered=$SANDBOX/tampered.jsonl
cp "$AUDIT" "$tampered"; sed -i '0,/"argv":\["\/usr\/bin\/id","-u"\]/s//"argv":["\/usr\/bin\/id","-g"]/' "$tampered"
line=$(grep -n '"/usr/bin/id","-g"' "$tampered" | head -1 | cut -d: -f1)
expect "an edited record is detected, naming its line" 1 "tampered.jsonl:$line" verify "$tampered"
cp "$AUDIT" "$tampered"; sed -i '3d' "$tampered"
expect "a deleted middle record is detected, naming the line" 1 'BROKEN: .*tampered\.jsonl:3:' verify "$tampered"
n=$(wc -l <"$AUDIT")
cp "$AUDIT" "$tampered"; sed -i '$d' "$tampered"
expect "a truncated tail is detected with the anchor" 1 "BROKEN: .*tampered\.jsonl:$n: .*truncated" verify "$tampered" --anchor "$ANCHOR"
cp "$AUDIT" "$tampered"; sed -i '$d' "$tampered"; sed -i '$d' "$tampered"
expect "...also two records short" 1 'BROKEN.*truncated' verify "$tampered" --anchor "$ANCHOR"
cp "$AUDIT" "$tampered"; sed -i '4{h;d};5G' "$tampered"
expect "two swapped records are detected" 1 'BROKEN: .*tampered\.jsonl:4:' verify "$tampered"
cp "$AUDIT" "$tampered"; python3 - "$tampered" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
i = next(i for i, l in enumerate(lines) if '"event":"run.denied"' in l)
r = json.loads(lines[i]); r["requester"]["user"] = "alice"   # re-serialized: the hash no longer matches
lines[i] = json.dumps(r, separators=(",", ":"))
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
expect "a re-serialized record with another requester is detected" 1 'BROKEN' verify "$tampered"
cp "$AUDIT" "$tampered"; printf '{"v":1,"event":"run.allowed","argv":["forged\\n{}"]}\n' >>"$tampered"
expect "an appended forged record is detected" 1 'BROKEN' verify "$tampered"
# The oldest records cut: what is left still chains, but does not start at a log's first record.
cp "$AUDIT" "$tampered"; sed -i '1,2d' "$tampered"
expect "removing the first lines of the log is detected, even with the anchor" 1 \
  'BROKEN: .*tampered\.jsonl:1: seq 3: missing-start: the oldest records are missing' verify "$tampered" --anchor "$ANCHOR"
expect "...accepted only with --allow-missing-start, which says what is unproven" 0 \
  'not proven: the oldest records \(before seq 3\) could have been removed' verify "$tampered" --anchor "$ANCHOR" --allow-missing-start
# No anchor: the newest records could have been cut. Not skipped, unless asked to.
expect "FILEs without an anchor are not proven at the end" 1 'BROKEN: .*unanchored: the newest records' verify "$AUDIT"
last_seq=$(tail -n1 "$AUDIT" | python3 -c 'import json, sys; print(json.load(sys.stdin)["seq"])')
cp "$ANCHOR" "$SANDBOX/anchor.saved"; rm -f "$ANCHOR"
cat >"$SANDBOX/verify.toml" <<TOML
audit_log = "$AUDIT"
state_dir = "$STATE"
TOML
expect "a deleted anchor fails the default verify" 1 'BROKEN: .*unanchored: .*no anchor' \
  "$SANDBOX/bin/elevate" --config "$SANDBOX/verify.toml" audit verify
expect "...unless --no-anchor, which says what is unproven" 0 \
  "not proven: the newest records \(after seq $last_seq\) could have been removed: no anchor" \
  "$SANDBOX/bin/elevate" --config "$SANDBOX/verify.toml" audit verify --no-anchor
mv "$SANDBOX/anchor.saved" "$ANCHOR"
expect "with the anchor back, the default verify passes" 0 'audit log OK: .*anchor matches' \
  "$SANDBOX/bin/elevate" --config "$SANDBOX/verify.toml" audit verify

# --- a failed audit write means the command does not run
install -d -m 0755 "$SANDBOX/tinylog"
mount -t tmpfs -o size=256k elevate-tinylog "$SANDBOX/tinylog"
# Its own state dir too: the anchor there belongs to one log only.
STATE=$SANDBOX/state-tiny AUDIT_LOG=$SANDBOX/tinylog/audit.jsonl start_daemon || return
dd if=/dev/zero of="$SANDBOX/tinylog/filler" bs=4k count=1000 2>/dev/null
cat >"$CMDS/marker" <<SH
#!/bin/sh
touch $SANDBOX/run/marker-ran
SH
chmod 0755 "$CMDS/marker"
sandbox_group tinygrp
policy_file 92-marker.toml <<TOML
[[profile]]
name = "marker"
users = ["alice"]
[[profile.command]]
path = "$CMDS/marker"

[[profile]]
name = "tiny-lease"
users = ["alice"]
access = "lease"
max_duration = "10m"
grant_groups = ["tinygrp"]
[[profile.command]]
path = "$CMDS/marker"
TOML
reload_daemon
# The log's last page may still have room: keep writing (denials) until it has none.
for _ in $(seq 12); do as bob elevate "$CMDS/marker" >/dev/null 2>&1; done
rm -f "$SANDBOX/run/marker-ran"
expect "audit log full → the command is refused (70)" 70 'audit' as alice elevate "$CMDS/marker"
[ ! -e "$SANDBOX/run/marker-ran" ] && ok "...and it did not run" || notok "...and it did not run" "$SANDBOX/run/marker-ran exists"
expect "audit log full → a lease is refused too (70)" 70 'audit' as alice elevate request tiny-lease
capture as alice elevate leases --json
grep -q '"tiny-lease"' <<<"$OUT" && notok "...and no lease exists (nothing takes effect unrecorded)" "$OUT" || ok "...and no lease exists (nothing takes effect unrecorded)"
id -nG alice | grep -qw tinygrp && notok "...nor its membership" || ok "...nor its membership"
rm -f "$SANDBOX/tinylog/filler"
expect "once the log is writable again, commands run" 0 '' as alice elevate "$CMDS/marker"
[ -e "$SANDBOX/run/marker-ran" ] && ok "...and now it really ran (its marker file exists)" || notok "...and now it really ran (its marker file exists)" "no $SANDBOX/run/marker-ran"
stop_daemon
expect "after a full disk, the log still verifies (a failed append leaves no torn record)" 0 'audit log OK' \
  verify "$SANDBOX/tinylog/audit.jsonl" --anchor "$SANDBOX/state-tiny/audit-anchor.json"
umount "$SANDBOX/tinylog"
rm -f "$POL/92-marker.toml"
