# shellcheck shell=bash
# One user's flood of refused requests costs the audit log a bounded amount (issue 12): bob, who
# may run nothing, sends run requests with a 60,000-byte argument for 5 s as fast as the daemon
# answers, while alice's allowed runs keep working. The denied and rate-limited records are
# cut (argv_truncated) and, past a burst, counted by audit.coalesced records; the log grows by
# little and the daemon's memory stays small.

fixture_policy base   # alice may run id as root (basic); bob may run nothing
start_daemon || return

size_before=$(stat -c %s "$AUDIT")
lines_before=$(wc -l <"$AUDIT")   # the log is shared with the tests before this one
as bob python3 "$here/helpers/flood.py" "$SOCK" 5 60000 >"$SANDBOX/flood.json" 2>&1 &
flooder=$!
sleep 1
alice_ok=0
for _ in 1 2 3; do as alice elevate id -u >/dev/null 2>&1 && alice_ok=$((alice_ok + 1)); sleep 0.5; done
wait "$flooder"
rss_kib=$(awk '/VmHWM/{print $2}' "/proc/$DPID/status")
growth=$(( $(stat -c %s "$AUDIT") - size_before ))
echo "# flood: $(cat "$SANDBOX/flood.json"); audit log +$growth bytes; daemon peak RSS ${rss_kib} KiB"
[ "$alice_ok" = 3 ] && ok "alice's allowed runs work during bob's flood" || notok "alice's allowed runs work during bob's flood" "$alice_ok of 3"
assert "bob sent hundreds of requests, refused as rate-limited past his burst" \
  python3 -c 'import json,sys; f=json.load(open(sys.argv[1])); a=f["answers"]; assert f["requests"] >= 200 and a.get("rate_limited", 0) > 0, f' "$SANDBOX/flood.json"
[ "$growth" -le $((256 * 1024)) ] && ok "the audit log grew by at most 256 KiB" || notok "the audit log grew by at most 256 KiB" "+$growth bytes"
[ "$rss_kib" -le $((48 * 1024)) ] && ok "the daemon's peak RSS stayed within 48 MiB" || notok "the daemon's peak RSS stayed within 48 MiB" "${rss_kib} KiB"
stop_daemon

assert "every refusal of bob's is written or counted by audit.coalesced, and long argv are cut" \
  python3 - "$AUDIT" "$SANDBOX/flood.json" "$lines_before" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])][int(sys.argv[3]):]
flood = json.load(open(sys.argv[2]))
bob = [r for r in recs if r["event"] in ("run.denied", "run.refused") and r["requester"]["user"] == "bob"]
assert bob and all(r.get("argv_truncated") is True and r["argv_len"] > 60000 and len(r["argv_sha256"]) == 64 for r in bob), bob[:1]
assert all(len(json.dumps(r["argv"])) < 4200 for r in bob), "argv cut"
summaries = [r for r in recs if r["event"] == "audit.coalesced"]
assert summaries and all(s["uid"] == bob[0]["requester"]["uid"] for s in summaries), summaries
assert {s["reason"] for s in summaries} >= {"rate_limited"}, summaries
counted = sum(s["count"] for s in summaries)
refused = flood["answers"].get("denied", 0) + flood["answers"].get("rate_limited", 0)
assert len(bob) + counted == refused, ("written", len(bob), "counted", counted, "answers", flood)
assert recs[-1]["event"] == "daemon.stop", recs[-1]["event"]
PY
