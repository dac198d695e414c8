# shellcheck shell=bash
# Accidents in the audit log are recorded and told apart from tampering: a torn last line is
# sealed when the daemon starts (audit.sealed), records lost to a full disk are counted
# (audit.gap), and `elevate audit verify` passes with a warning for each.

fixture_policy base
verify() { "$SANDBOX/bin/elevate" audit verify "$@"; }

# --- a crash in the middle of a record: sealed at the next start
FLOG=$SANDBOX/faults/audit.jsonl
FSTATE=$SANDBOX/state-faults
install -d -m 0750 "$SANDBOX/faults"
STATE=$FSTATE AUDIT_LOG=$FLOG start_daemon || return
as alice elevate id -u >/dev/null
stop_daemon
# The next record was being written when the machine went down: 40 of its bytes reached the
# file, and the anchor still names the record before it.
last_line=$(tail -n 1 "$FLOG"); printf '%s\n' "$last_line" >>"$FLOG"
full=$(stat -c %s "$FLOG"); last=$(tail -n 1 "$FLOG" | wc -c)
offset=$((full - last))
truncate -s $((offset + 40)) "$FLOG"
torn=$(wc -l <"$FLOG"); torn=$((torn + 1))   # the torn line has no newline
expect "before the daemon seals it, a torn last line fails verification" 1 \
  "BROKEN: .*audit\.jsonl:$torn: .*incomplete last line" verify "$FLOG" --anchor "$FSTATE/audit-anchor.json"

STATE=$FSTATE AUDIT_LOG=$FLOG start_daemon || return
grep -q "is torn (interrupted write?)" "$DLOG" && ok "the daemon says it found a torn line" \
  || notok "the daemon says it found a torn line" "$(tail -5 "$DLOG")"
as alice elevate id -u >/dev/null
stop_daemon
expect "after the restart, verify passes and warns, naming the torn line" 0 \
  "warning: .*audit\.jsonl:$torn: torn line \(40 bytes at offset $offset, sha256 [0-9a-f]{64}\).*sealed by seq" \
  verify "$FLOG" --anchor "$FSTATE/audit-anchor.json"
grep -q "^audit log OK: .*anchor matches" <<<"$OUT" && ok "...and says the log is OK" || notok "...and says the log is OK" "$OUT"
capture verify --json "$FLOG" --anchor "$FSTATE/audit-anchor.json"
assert "--json carries the warning: its file, line, offset, length and sha256" \
  python3 - "$FLOG" "$torn" "$offset" "$OUT" <<'PY'
import hashlib, json, sys
path, line, offset, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
assert out["ok"] is True and out["problem"] is None, out
[w] = out["warnings"]
data = open(path, "rb").read()
want = {"file": path, "line": line, "kind": "torn-line", "offset": offset, "length": 40,
        "sha256": hashlib.sha256(data[offset:offset + 40]).hexdigest()}
assert {k: w[k] for k in want} == want, (w, want)
# The seal is the next line and chains to the record before the torn line.
lines = data.split(b"\n")
seal, before = json.loads(lines[line]), json.loads(lines[line - 2])
assert seal["event"] == "audit.sealed" and seal["seq"] == w["seq"] == before["seq"] + 1, seal
assert seal["prev"] == seal["last_good_hash"] == before["hash"], (seal, before)
PY

copy=$SANDBOX/faults-copy.jsonl
cp "$FLOG" "$copy"; sed -i "${torn}s/seq/SEQ/" "$copy"
expect "a torn line changed after it was sealed fails (bad-seal)" 1 "BROKEN: .*:$((torn + 1)): seq [0-9]+: bad-seal" verify "$copy"
cp "$FLOG" "$copy"; sed -i "${torn}d" "$copy"
expect "a seal without its torn line fails" 1 "BROKEN: .*:$torn: seq [0-9]+: bad-seal: .*must directly follow" verify "$copy"
cp "$FLOG" "$copy"; sed -i "$((torn - 1))d" "$copy"
expect "a record deleted before the torn line fails" 1 "BROKEN" verify "$copy"
cp "$FLOG" "$copy"; sed -i "3s/.*/&\n{\"v\":1,\"seq\"/" "$copy"
expect "a torn line in the middle fails" 1 "BROKEN: .*:4: unparseable: .*not sealed" verify "$copy"

# Cutting the last, anchored record by hand and restarting does not pass for an accident.
TLOG=$SANDBOX/faults-cut/audit.jsonl
TSTATE=$SANDBOX/state-faults-cut
install -d -m 0750 "$SANDBOX/faults-cut"
cp "$FLOG" "$TLOG"; cp -a "$FSTATE" "$TSTATE"
truncate -s -20 "$TLOG"
STATE=$TSTATE AUDIT_LOG=$TLOG start_daemon || return
stop_daemon
expect "a cut anchored record, sealed by a restart, still fails verification" 1 \
  "BROKEN: .*chain-broken" verify "$TLOG" --anchor "$TSTATE/audit-anchor.json"

# --- a full disk: the records lost meanwhile are counted by an audit.gap record
install -d -m 0755 "$SANDBOX/gaplog"
mount -t tmpfs -o size=256k elevate-gaplog "$SANDBOX/gaplog"
GLOG=$SANDBOX/gaplog/audit.jsonl
GSTATE=$SANDBOX/state-gap
STATE=$GSTATE AUDIT_LOG=$GLOG start_daemon || return
denials=0
deny() { as bob elevate id -u >/dev/null 2>&1; denials=$((denials + 1)); }
deny; deny
as alice elevate id -u >/dev/null
dd if=/dev/zero of="$SANDBOX/gaplog/filler" bs=4k count=1000 2>/dev/null
# The log's last page may still have room: keep writing denials until it has none.
for _ in $(seq 12); do deny; done
expect "audit log full → an allowed command is refused (70)" 70 'audit' as alice elevate id -u
deny
rm -f "$SANDBOX/gaplog/filler"
expect "once the log is writable again, commands run" 0 '' as alice elevate id -u
deny
stop_daemon
expect "verify passes and reports the gap as a warning" 0 \
  'warning: .*audit\.jsonl:[0-9]+: seq [0-9]+: gap: [0-9]+ records? \(.*run\.allowed 1.*\) not written between' \
  verify "$GLOG" --anchor "$GSTATE/audit-anchor.json"
capture verify --json "$GLOG" --anchor "$GSTATE/audit-anchor.json"
assert "one audit.gap record counts exactly the records missing from the log" \
  python3 - "$GLOG" "$denials" "$OUT" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
denials, out = int(sys.argv[2]), json.loads(sys.argv[3])
gaps = [(i, r) for i, r in enumerate(recs) if r["event"] == "audit.gap"]
assert len(gaps) == 1, [r for _, r in gaps]
i, gap = gaps[0]
assert gap["lost"] == sum(gap["events"].values()) > 0, gap
# Every denial is in the log or counted as lost, never both, never neither.
# (Past a burst, denials are counted by an audit.coalesced record instead.)
written = sum(1 for r in recs if r["event"] in ("run.denied", "run.refused"))
written += sum(r["count"] for r in recs if r["event"] == "audit.coalesced")
lost = gap["events"].get("run.denied", 0) + gap["events"].get("run.refused", 0)
assert written + lost == denials, ("written", written, "lost", lost, "attempts", denials, gap)
# The refused run's durable record is the one run.allowed lost; the gap comes first when
# writing works again (before the next run, or a denial posted just before it).
assert gap["events"].get("run.allowed") == 1, gap
assert recs[i + 1]["event"] in ("run.allowed", "run.denied"), recs[i + 1]
assert gap["from"] <= gap["to"] <= gap["time"], gap
assert "No space left on device" in gap["error"], gap
[w] = out["warnings"]
assert (w["kind"], w["line"], w["seq"], w["lost"]) == ("gap", i + 1, gap["seq"], gap["lost"]), w
PY
umount "$SANDBOX/gaplog"
