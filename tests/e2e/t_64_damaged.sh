# shellcheck shell=bash
# Damaged state at start-up never keeps the daemon from starting: what reads is kept, the
# file as it was is moved aside, a state.damaged record says so, and memberships in granted
# groups that no readable lease accounts for are taken back.

fixture_users
getent group dmggrp >/dev/null || sandbox_group dmggrp
getent group keepgrp >/dev/null || sandbox_group keepgrp
usermod -aG keepgrp alice   # a group no profile grants: never touched
policy_file 64-damaged.toml <<'TOML'
[[profile]]
name = "dmg"
users = ["alice"]
access = "lease"
max_duration = "1h"
grant_groups = ["dmggrp"]

[[profile.command]]
path = "/usr/bin/id"
TOML
DSTATE=$SANDBOX/state-damaged
mkdir -p "$DSTATE"
STATE=$DSTATE start_daemon || return
expect "a lease that adds alice to dmggrp" 0 '' as alice elevate request dmg --for 30m --reason r
in_group alice dmggrp && ok "...alice is in dmggrp" || notok "...alice is in dmggrp" "id -nG alice: $(id -nG alice)"
kill -KILL "$DPID"; wait "$DPID" 2>/dev/null; DPID=
# The journal loses alice's record to garbage; sessions.json is torn.
printf 'garbage that is not a lease\n{"id":77,"broken\n' >"$DSTATE/leases.jsonl"
printf '[{"id":1,"uid' >"$DSTATE/sessions.json"
STATE=$DSTATE start_daemon && ok "the daemon starts over a damaged journal and sessions.json" \
  || { notok "the daemon starts over a damaged journal and sessions.json" "$(tail -5 "$DLOG")"; return; }
n=$(grep -c '"event":"state.damaged"' "$AUDIT")
[ "$n" -ge 2 ] && ok "each damaged file is a state.damaged record" || notok "each damaged file is a state.damaged record" "$n records"
ls "$DSTATE"/leases.jsonl.damaged-* >/dev/null 2>&1 && ls "$DSTATE"/sessions.json.damaged-* >/dev/null 2>&1 \
  && ok "the files as they were are kept aside" || notok "the files as they were are kept aside" "$(ls "$DSTATE")"
! in_group alice dmggrp && ok "alice's membership, which no readable lease accounts for, is taken back" \
  || notok "alice's membership, which no readable lease accounts for, is taken back" "id -nG alice: $(id -nG alice)"
in_group alice keepgrp && ok "a group no profile grants is not touched" || notok "a group no profile grants is not touched" "id -nG alice: $(id -nG alice)"
expect "grpck -r is clean" 0 '' grpck -r
expect "new leases work" 0 '' as alice elevate request dmg --for 1m --reason again
stop_daemon
