# shellcheck shell=bash
# Answers of any size (issue 12): with 300 live leases (reasons of 1000 bytes, so the list is
# several 64 KiB frames) `elevate leases --all`, its --json and a policy's `elevate list` are
# answered whole; `elevate revoke --all` — what removing the package runs, as root — ends every
# one of them, waiting out the rate limit (a burst of 100 requests, then 25 a second here;
# root's too), and their memberships leave /etc/group. D-Bus answers the same list.

fixture_users
sandbox_group ansgrp
ANS_POL=$SANDBOX/policy-answers
ANS_STATE=$SANDBOX/state-answers
install -d -m 0755 "$ANS_POL"
install -d -m 0700 "$ANS_STATE"
PROFILES=100
LEASES=$((3 * PROFILES))
: >"$ANS_POL/68-answers.toml"
blurb=$(printf 'a profile with a description long enough to fill the list %.0s' $(seq 20))
for n in $(seq -w 0 $((PROFILES - 1))); do
  grants=
  [ "$n" != 00 ] || grants='grant_groups = ["ansgrp"]'
  cat >>"$ANS_POL/68-answers.toml" <<TOML
[[profile]]
name = "ans-$n"
description = "$blurb"
users = ["alice", "carol", "bob"]
access = "lease"
default_duration = "1h"
max_duration = "2h"
$grants

[[profile.command]]
path = "/usr/bin/id"

TOML
done
chmod 0644 "$ANS_POL/68-answers.toml"
printf '[limits]\nrequests_per_second = 25\n' >"$SANDBOX/answers.toml"
ANS_CONFIG=$SANDBOX/answers.toml
CONFIG=$ANS_CONFIG POLICY_DIR=$ANS_POL STATE=$ANS_STATE start_daemon || return

# Every user asks for a lease on every profile: 300 live leases, about 500 KB of answer.
reason=$(printf 'x%.0s' $(seq 1000))
ticket=$(printf 'T%.0s' $(seq 128))
for u in alice carol bob; do
  T=60 as_sh "$u" "for n in \$(seq -w 0 $((PROFILES - 1))); do
    elevate request ans-\$n --reason $reason --ticket $ticket >/dev/null 2>\$HOME/req.err || { echo FAIL; cat \$HOME/req.err; }
  done" >"$SANDBOX/run/ans-$u.out" 2>&1
done
failed=$(cat "$SANDBOX"/run/ans-*.out)
[ -z "$failed" ] && ok "$LEASES leases are requested" || notok "$LEASES leases are requested" "${failed:0:600}"
in_group alice ansgrp && in_group bob ansgrp && ok "...and ans-00 added its holders to ansgrp" \
  || notok "...and ans-00 added its holders to ansgrp" "$(getent group ansgrp)"

elevate_root() { /usr/bin/timeout -k 5 120 "$SANDBOX/bin/elevate" --socket "$SOCK" "$@"; }
size=$(elevate_root leases --all --json | wc -c)
[ "$size" -gt $((4 * 65536)) ] && ok "the list of every lease is several frames long ($size bytes)" \
  || notok "the list of every lease is several frames long" "$size bytes"
expect "elevate leases --all answers (as root)" 0 '' elevate_root leases --all
[ "$(wc -l <<<"$OUT")" = $((LEASES + 1)) ] && ok "...a header and a line per lease" || notok "...a header and a line per lease" "$(wc -l <<<"$OUT") lines; ${ERR:0:300}"
count() { python3 -c 'import json,sys; print(len(json.load(sys.stdin)["leases"]))'; }
assert "elevate leases --all --json holds every lease" test "$(elevate_root leases --all --json | count)" = "$LEASES"
assert "alice's own list (over 64 KiB) is answered" test "$(as alice elevate leases --json | count)" = "$PROFILES"
listed=$(as alice elevate list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["profiles"]))')
size=$(as alice elevate list --json | wc -c)
[ "$listed" = "$PROFILES" ] && [ "$size" -gt 65536 ] && ok "elevate list answers a policy over 64 KiB ($size bytes)" \
  || notok "elevate list answers a policy over 64 KiB" "$listed profiles, $size bytes"
expect "elevate status still answers" 0 "$PROFILES profiles" elevate_root status

# D-Bus answers the same list, if a bus can be had here.
if command -v dbus-daemon >/dev/null && command -v gdbus >/dev/null; then
  ABUS=$SANDBOX/run/dbus-answers.sock
  cat >"$SANDBOX/dbus-answers.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$ABUS</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_type="method_call"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
  <include>$repo/packaging/dbus/org.elevate.Elevated1.conf</include>
</busconfig>
XML
  dbus-daemon --config-file="$SANDBOX/dbus-answers.conf" --nofork --nopidfile >"$SANDBOX/log/dbus-answers.log" 2>&1 &
  ABUS_PID=$!
  wait_for 5 test -S "$ABUS" || notok "a private bus runs" "$(cat "$SANDBOX/log/dbus-answers.log")"
  stop_daemon
  DBUS_SYSTEM_BUS_ADDRESS=unix:path=$ABUS CONFIG=$ANS_CONFIG POLICY_DIR=$ANS_POL STATE=$ANS_STATE start_daemon || return
  bus_leases() {
    /usr/bin/timeout -k 2 10 env DBUS_SYSTEM_BUS_ADDRESS="unix:path=$ABUS" gdbus call --system \
      --timeout 8 --dest org.elevate.Elevated1 --object-path /org/elevate/Elevated1 \
      --method org.elevate.Elevated1.ListLeases true
  }
  wait_for 5 grep -q "D-Bus: serving org.elevate.Elevated1" "$DLOG"
  capture bus_leases
  n=$(grep -o '"id":' <<<"$OUT" | wc -l)
  [ "$n" = "$LEASES" ] && ok "D-Bus ListLeases(true) answers every lease" \
    || notok "D-Bus ListLeases(true) answers every lease" "$n ids, exit $RC; ${OUT:0:300} ${ERR:0:300}" "$(tail -5 "$DLOG")"
fi

# What the package's prerm runs, first by a holder, then by root.
expect "alice's elevate revoke --all ends hers" 0 "^$PROFILES leases and requests ended\$" \
  as alice elevate revoke --all
expect "root's elevate revoke --all ends the others, waiting out the rate limit" 0 \
  "^$((LEASES - PROFILES)) leases and requests ended\$" elevate_root revoke --all --reason "elevate is being removed"
sleep 1   # root's rate-limit bucket is empty now: let it refill a little
live=$(elevate_root leases --all --json | python3 -c 'import json,sys; print(sum(l["state"] != "ended" for l in json.load(sys.stdin)["leases"]))')
[ "$live" = 0 ] && ok "...no lease is left live" || notok "...no lease is left live" "$live live"
members=$(getent group ansgrp | cut -d: -f4)
[ -z "$members" ] && ok "...and ansgrp has no members left" || notok "...and ansgrp has no members left" "$members"
expect "a second revoke --all finds nothing to end" 0 '^0 leases and requests ended$' elevate_root revoke --all

stop_daemon
[ -z "${ABUS_PID:-}" ] || { kill "$ABUS_PID" 2>/dev/null; wait "$ABUS_PID" 2>/dev/null; }
