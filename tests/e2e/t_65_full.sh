# shellcheck shell=bash
# A full state directory (issue 11): new requests are refused, saying so, with exit 75; an
# existing lease still ends at its deadline and its membership leaves /etc/group (the ending
# is journaled on the reserve); once space is freed, requests work again and the reserve is
# back.

fixture_users
sandbox_group fullgrp
policy_file 65-full.toml <<'TOML'
[[profile]]
name = "full"
users = ["alice", "carol"]
access = "lease"
max_duration = "10m"
grant_groups = ["fullgrp"]

[[profile.command]]
path = "/usr/bin/id"
TOML
FSTATE=$SANDBOX/state-full
install -d -m 0700 "$FSTATE"
mount -t tmpfs -o size=16m,mode=0700 elevate-fullstate "$FSTATE"
STATE=$FSTATE start_daemon || return
reserve_size() { stat -c %s "$FSTATE/reserve" 2>/dev/null || echo none; }
[ "$(reserve_size)" = $((8 << 20)) ] && ok "the state directory holds an 8 MiB reserve" \
  || notok "the state directory holds an 8 MiB reserve" "$(ls -l "$FSTATE")"

capture as alice elevate request full --for 5s --reason "short"
lid=$(head -1 <<<"$OUT")
in_group alice fullgrp && ok "a short lease adds alice to fullgrp" || notok "a short lease adds alice to fullgrp" "$OUT $ERR"
expires=$(as alice elevate leases --json | json_get ".leases[id=$lid].expires_at")
# Fill the filesystem. A record that fits in the journal's last, partly written page needs no
# new space even then; padding the journal to a page boundary (blank lines, which a load
# skips) makes the next record need a page, as on a disk that is full for good.
j=$FSTATE/leases.jsonl
head -c $(( (4096 - $(stat -c %s "$j") % 4096) % 4096 )) /dev/zero | tr '\0' '\n' >>"$j"
dd if=/dev/zero of="$FSTATE/filler" bs=64k 2>/dev/null
full_msg="the state directory $FSTATE is full: new requests, approvals and extensions are refused until space is freed; endings still take effect"
expect "a request on a full state directory is refused with exit 75, saying why" 75 "$full_msg" \
  as carol elevate request full --for 1m --reason r
in_group carol fullgrp && notok "...carol is not in fullgrp" "id -nG carol: $(id -nG carol)" || ok "...carol is not in fullgrp"

# The existing lease ends at its deadline anyway.
gone_at=
for _ in $(seq 100); do
  if ! in_group alice fullgrp; then gone_at=$(date +%s.%N); break; fi
  sleep 0.1
done
late=$(python3 -c "import sys,datetime as d; e=d.datetime.fromisoformat(sys.argv[1].replace('Z','+00:00')).timestamp(); print(round(float(sys.argv[2] or 1e12)-e, 2))" "$expires" "$gone_at")
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 1.0 else 1)" "$late" \
  && ok "on the full disk, alice's membership leaves /etc/group within deadline + 1 s (${late}s)" \
  || notok "on the full disk, alice's membership leaves /etc/group within deadline + 1 s" "late by $late s; id -nG alice: $(id -nG alice)"
state=$(as alice elevate leases --json | json_get ".leases[id=$lid].state")
[ "$state" = ended ] && ok "...and the lease shows as ended" || notok "...and the lease shows as ended" "state: $state"
[ "$(reserve_size)" = none ] && ok "...journaled on the reserve's space" || notok "...journaled on the reserve's space" "$(ls -l "$FSTATE")"
expect "elevate status says the state directory is running on reserve" 0 "warning: state directory $FSTATE full: running on reserve" \
  "$SANDBOX/bin/elevate" --socket "$SOCK" status
expect "a request is still refused: the reserve's room is for endings" 75 "$full_msg" \
  as carol elevate request full --for 1m --reason r

# Space comes back.
rm -f "$FSTATE/filler"
expect "once space is freed a request works again" 0 '' as carol elevate request full --for 1m --reason r
cid=$(head -1 <<<"$OUT")
[ "$(reserve_size)" = $((8 << 20)) ] && ok "...and the reserve is back" || notok "...and the reserve is back" "$(ls -l "$FSTATE")"
capture "$SANDBOX/bin/elevate" --socket "$SOCK" status
expect_not "...and elevate status warns no more about the state directory" 'warning: state directory'

# The journal written on a full disk reads back whole.
damaged=$(grep -c '"event":"state.damaged"' "$AUDIT")
stop_daemon
STATE=$FSTATE start_daemon || return
state=$(as alice elevate leases --json | json_get ".leases[id=$lid].state")
[ "$state" = ended ] && [ "$(grep -c '"event":"state.damaged"' "$AUDIT")" = "$damaged" ] \
  && ok "after a restart the journal reads back whole: the lease is still ended" \
  || notok "after a restart the journal reads back whole: the lease is still ended" "state: $state; $(tail -3 "$DLOG")"
in_group carol fullgrp && ok "...and carol's new lease is still active" || notok "...and carol's new lease is still active" "id -nG carol: $(id -nG carol)"
expect "carol's lease is revoked" 0 '' as carol elevate revoke "$cid"
expect "grpck -r is clean" 0 '' grpck -r
stop_daemon
umount "$FSTATE"
