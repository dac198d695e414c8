# shellcheck shell=bash
# The audit trail: every decision recorded, tamper-evident, and no audit means no run.

start_daemon || return
as alice elevate id -u >/dev/null
as bob elevate id -u >/dev/null 2>&1
stop_daemon   # daemon.stop is the last record

ANCHOR=$STATE/audit-anchor.json
verify() { "$SANDBOX/bin/elevate" audit verify "$@"; }
expect "audit verify passes on the daemon's log" 0 'audit log OK' verify "$AUDIT" --anchor "$ANCHOR"
grep -q '"event":"run.allowed"' "$AUDIT" && grep -q '"event":"run.denied"' "$AUDIT" && grep -q '"event":"run.exit"' "$AUDIT" \
  && ok "allowed, denied and exit records are written" || notok "allowed, denied and exit records are written"
python3 - "$AUDIT" <<'PY' && ok "records carry requester, argv, profile, decision and UTC time" || notok "records carry requester, argv, profile, decision and UTC time"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
a = [r for r in recs if r["event"] == "run.allowed"][-1]
assert a["requester"]["user"] == "alice" and a["requester"]["uid"] > 0 and a["requester"]["pid"] > 0
assert a["argv"] == ["/usr/bin/id", "-u"] and a["profile"] == "basic" and a["decision"] == "allow"
assert a["time"].endswith("Z") and a["run_as"] == "root"
d = [r for r in recs if r["event"] == "run.denied"][-1]
assert d["requester"]["user"] == "bob" and d["reason"]
e = [r for r in recs if r["event"] == "run.exit"][-1]
assert e["status"] == {"code": 0} and e["allowed_seq"] == a["seq"]
PY

tampered=$SANDBOX/tampered.jsonl
cp "$AUDIT" "$tampered"; sed -i '0,/"argv":\["\/usr\/bin\/id","-u"\]/s//"argv":["\/usr\/bin\/id","-g"]/' "$tampered"
line=$(grep -n '"/usr/bin/id","-g"' "$tampered" | head -1 | cut -d: -f1)
expect "an edited record is detected, naming its line" 1 "tampered.jsonl:$line" verify "$tampered"
cp "$AUDIT" "$tampered"; sed -i '3d' "$tampered"
expect "a deleted record is detected" 1 'BROKEN' verify "$tampered"
cp "$AUDIT" "$tampered"; sed -i '$d' "$tampered"
expect "a truncated tail is detected with the anchor" 1 'BROKEN' verify "$tampered" --anchor "$ANCHOR"
cp "$AUDIT" "$tampered"; printf '{"v":1,"event":"run.allowed","argv":["forged\\n{}"]}\n' >>"$tampered"
expect "an appended forged record is detected" 1 'BROKEN' verify "$tampered"

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
policy_file 92-marker.toml <<TOML
[[profile]]
name = "marker"
users = ["alice"]
[[profile.command]]
path = "$CMDS/marker"
TOML
kill -HUP "$DPID"; sleep 0.5
# The log's last page may still have room: keep writing (denials) until it has none.
for _ in $(seq 12); do as bob elevate "$CMDS/marker" >/dev/null 2>&1; done
rm -f "$SANDBOX/run/marker-ran"
expect "audit log full → the command is refused (70)" 70 'audit' as alice elevate "$CMDS/marker"
[ ! -e "$SANDBOX/run/marker-ran" ] && ok "...and it did not run" || notok "...and it did not run"
rm -f "$SANDBOX/tinylog/filler"
expect "once the log is writable again, commands run" 0 '' as alice elevate "$CMDS/marker"
stop_daemon
umount "$SANDBOX/tinylog"
rm -f "$POL/92-marker.toml"
