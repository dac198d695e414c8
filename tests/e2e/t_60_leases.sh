# shellcheck shell=bash
# Just-in-time leases with real /etc/group: request, approve, expire, revoke — and when a
# lease ends it really ends (membership gone, processes carrying the group terminated).

fixture_policy base   # alice, bob; "basic" is a standing profile

sandbox_user dave            # admin
sandbox_user erin leads      # approvers
sandbox_user frank leads
sandbox_group pgadmin
sandbox_group quickgrp
sandbox_group legacy
sandbox_group firegrp
usermod -aG legacy alice     # a standing membership the lease must never touch
usermod -aG leads alice      # the requester is also in the approver group

policy_file 60-leases.toml <<'TOML'
[admin]
users = ["dave"]

[[profile]]
name = "quick"
description = "self-approved, short"
users = ["alice", "bob"]
access = "lease"
default_duration = "1m"
max_duration = "5m"
grant_groups = ["quickgrp", "legacy"]

[[profile.command]]
path = "/usr/bin/uptime"

[[profile]]
name = "db-admin"
users = ["alice"]
access = "lease"
default_duration = "30m"
max_duration = "2h"
require_reason = true
ticket = "^(INC|CHG)-[0-9]+$"
approval = { approvers = ["group:leads"], count = 2 }
grant_groups = ["pgadmin"]
conflicts = ["db-auditor"]

[[profile]]
name = "db-auditor"
users = ["alice"]
access = "lease"
max_duration = "1h"

[[profile]]
name = "fire"
users = ["alice"]
access = "lease"
break_glass = true
max_duration = "1h"
grant_groups = ["firegrp"]
TOML
printf 'request_timeout = "3s"\n[limits]\nkill_grace_ms = 500\n' >"$SANDBOX/lease.toml"
CONFIG=$SANDBOX/lease.toml start_daemon || return

# lease_field ID FIELD: a field of lease ID as the admin sees it (a missing lease or field says so).
lease_field() {
  as dave elevate leases --all --json 2>/dev/null | json_get ".leases[id=$1].$2"
}

# --- request → use → expire (self-approved)
capture as alice elevate request quick --for 2s --reason "check load"
qid=$(head -1 <<<"$OUT")
[[ "$qid" =~ ^[0-9]+$ ]] && ok "request prints the lease id alone on the first line" || notok "request prints the lease id alone on the first line" "$OUT $ERR"
[ "$(lease_field "$qid" state)" = active ] && ok "a profile without approval is active at once" || notok "a profile without approval is active at once" "state: $(lease_field "$qid" state)"
in_group alice quickgrp && ok "the granted group is in /etc/group while active (id alice)" || notok "the granted group is in /etc/group while active (id alice)" "id -nG alice: $(id -nG alice)"
expect "a new login sees the group (su - alice -c id)" 0 'quickgrp' su - alice -c 'id -nG'
expect "a lease profile's commands run while the lease is active" 0 '' as alice elevate uptime
expect "elevate with adds the granted group to a command run as yourself" 0 'quickgrp' as alice elevate with "$qid" -- id -nG
as alice elevate with quick -- sleep 60 & wjob=$!
wait_for 3 pgrep -u alice -x sleep >/dev/null
wpid=$(pgrep -u alice -x sleep)
if wait_for 5 sh -c "! id -nG alice | tr ' ' '\n' | grep -qx quickgrp"; then ok "at expiry the membership is removed (within the tick)"; else notok "at expiry the membership is removed (within the tick)" "id -nG alice: $(id -nG alice)"; fi
[ "$(lease_field "$qid" end_reason)" = expired ] && ok "the lease shows as ended: expired" || notok "the lease shows as ended: expired" "$(lease_field "$qid" end_reason)"
if [ -n "$wpid" ] && wait_gone "$wpid" 3; then ok "a process started by elevate with is terminated at expiry"; else notok "a process started by elevate with is terminated at expiry" "pid $wpid"; fi
wait "$wjob" 2>/dev/null
in_group alice legacy && ok "a standing membership the lease also names is untouched" || notok "a standing membership the lease also names is untouched" "id -nG alice: $(id -nG alice)"
expect "after expiry the lease profile's commands are denied" 77 'lease' as alice elevate uptime
grep -q '"event":"lease.expired"' "$AUDIT" && grep -q '"event":"group.removed"' "$AUDIT" && ok "expiry and group removal are audited" || notok "expiry and group removal are audited" "lease.expired records: $(grep -c '"event":"lease.expired"' "$AUDIT"), group.removed records: $(grep -c '"event":"group.removed"' "$AUDIT")"

# --- a process holding the granted group only as its effective gid (what a set-gid program
# gets) is ended with the lease too
capture as alice elevate request quick --for 2s --reason "egid"
eid=$(head -1 <<<"$OUT")
setpriv --reuid alice --rgid alice --egid quickgrp --clear-groups sleep 61 & ejob=$!
wait_for 3 pgrep -u alice -f 'sleep 61' >/dev/null
epid=$(pgrep -u alice -f 'sleep 61' | head -1)
grep -q "^Gid:.*$(getent group quickgrp | cut -d: -f3)" "/proc/$epid/status" 2>/dev/null \
  && ok "a process runs with the granted group as its effective gid only" || notok "a process runs with the granted group as its effective gid only" "$(grep -E '^(Gid|Groups):' "/proc/$epid/status" 2>&1)"
if [ -n "$epid" ] && wait_gone "$epid" 5; then ok "...and it is terminated when the lease ends"; else notok "...and it is terminated when the lease ends" "pid $epid: $(grep -E '^(Gid|Groups):' "/proc/$epid/status" 2>&1)"; fi
wait "$ejob" 2>/dev/null
[ "$(lease_field "$eid" state)" = ended ] || notok "the egid lease ended" "$(lease_field "$eid" state)"

# --- validation
expect "a duration above the maximum is refused, saying the maximum" 77 'maximum' as alice elevate request quick --for 10m
expect "a required reason is enforced" 77 'reason' as alice elevate request db-admin --ticket INC-1
expect "a required ticket is enforced" 77 'ticket' as alice elevate request db-admin --reason r
expect "the ticket must match the pattern (whole string)" 77 'ticket' as alice elevate request db-admin --reason r --ticket XINC-1
expect "a standing profile cannot be leased" 77 '' as alice elevate request basic

# --- approval: never yourself, N distinct approvers
capture as alice elevate request db-admin --reason "vacuum" --ticket INC-42
did=$(head -1 <<<"$OUT")
[ "$(lease_field "$did" state)" = pending ] && ok "an approval profile starts pending" || notok "an approval profile starts pending" "$OUT $ERR"
grep -q 'approvers: group:leads' <<<"$OUT" && ok "the requester is told who may approve" || notok "the requester is told who may approve" "$OUT"
expect "the requester cannot approve their own request (even in the approver group)" 77 'own' as alice elevate approve "$did"
expect "a non-approver cannot even see the request (1, not found)" 1 'no lease or request' as bob elevate approve "$did"
expect "an approver sees the real request (reason and ticket) in the list" 0 'INC-42' as erin elevate leases --json
expect "the first of two approvals is accepted" 0 '' as erin elevate approve "$did" --comment "looks fine"
[ "$(lease_field "$did" state)" = pending ] && ok "one of two approvals keeps it pending" || notok "one of two approvals keeps it pending" "state: $(lease_field "$did" state)"
expect "the same approver cannot count twice" 77 '' as erin elevate approve "$did"
expect "second distinct approver activates it" 0 '' as frank elevate approve "$did"
[ "$(lease_field "$did" state)" = active ] && in_group alice pgadmin && ok "2-of-N approval grants the group" || notok "2-of-N approval grants the group" "state: $(lease_field "$did" state)" "id -nG alice: $(id -nG alice)"
expect "separation of duties: a conflicting profile is refused" 77 'conflict' as alice elevate request db-auditor
before=$(lease_field "$did" expires_at)
expect "extending a profile that needs approval asks for it again" 0 '' as alice elevate extend "$did" --by 10m
after=$(lease_field "$did" expires_at)
[ -n "$before" ] && [ "$after" = "$before" ] && ok "...and changes nothing until approved" || notok "...and changes nothing until approved" "expires_at before: $before, now: $after"
expect "the holder cannot approve their own extension" 77 'own' as alice elevate approve "$did"
expect "the extension's first approval is accepted" 0 '' as erin elevate approve "$did"
after=$(lease_field "$did" expires_at)
[ -n "$before" ] && [ "$after" = "$before" ] && ok "one of two approvals does not extend yet" || notok "one of two approvals does not extend yet" "expires_at before: $before, now: $after"
expect "the extension's second approval is accepted" 0 '' as frank elevate approve "$did"
after=$(lease_field "$did" expires_at)
[ -n "$after" ] && [ "$after" != "$before" ] && ok "two approvals extend the lease" || notok "two approvals extend the lease" "expires_at before: $before, now: $after"
expect "someone else cannot revoke alice's lease" 1 '' as bob elevate revoke "$did"
expect "an admin can revoke anyone's lease" 0 '' as dave elevate revoke "$did" --reason "done"
[ "$(lease_field "$did" end_reason)" = revoked ] && ! in_group alice pgadmin && ok "revocation removes the membership at once" || notok "revocation removes the membership at once" "end_reason: $(lease_field "$did" end_reason)" "id -nG alice: $(id -nG alice)"

# --- deny (seen by a waiting requester), and pending requests that expire
out=$SANDBOX/wait.out
as alice elevate request db-admin --wait --reason "again" --ticket CHG-7 >"$out" 2>&1 & wjob=$!
wait_for 3 test -s "$out"
rid=$(head -1 "$out")
expect "an approver can deny a pending request" 0 '' as erin elevate deny "$rid" --reason "not now"
wait "$wjob"; rc=$?
[ "$rc" = 77 ] && ok "request --wait returns 77 when the request is denied" || notok "request --wait returns 77 when the request is denied" "rc=$rc $(cat "$out")"
[ "$(lease_field "$rid" end_reason)" = denied ] && ok "the denied request shows as denied" || notok "the denied request shows as denied" "$(lease_field "$rid" end_reason)"
grep -q 'not now' "$out" && ok "the waiting requester sees the denier's comment" || notok "the waiting requester sees the denier's comment" "$(cat "$out")"
capture as alice elevate request db-admin --wait --reason "later" --ticket INC-9
pid2=$(head -1 <<<"$OUT")
[ "$RC" = 77 ] && [ "$(lease_field "$pid2" end_reason)" = request_expired ] && ok "an unapproved request expires (request_timeout), and --wait says so" \
  || notok "an unapproved request expires (request_timeout), and --wait says so" "rc=$RC (want 77), end_reason: $(lease_field "$pid2" end_reason)"

# --- extend and revoke by the holder
capture as alice elevate request quick --for 1m --reason r
eid=$(head -1 <<<"$OUT")
expect "extending within the maximum is accepted" 0 '' as alice elevate extend "$eid" --by 1m
expect "extend beyond the maximum is refused" 77 'maximum' as alice elevate extend "$eid" --by 10m
# The holder's client started while the lease was active carries the group, and ending the
# lease terminates such processes; the answer still arrives first.
expect "the holder can revoke their own lease (the answer arrives before terminations)" 0 'revoked' as alice elevate revoke "$eid"
! in_group alice quickgrp && ok "...and alice's quickgrp membership is gone" || notok "...and alice's quickgrp membership is gone" "id -nG alice: $(id -nG alice)"

# --- break-glass: no approval, loud
expect "break-glass needs a reason" 2 '' as alice elevate break-glass fire
expect "a plain request cannot take a break-glass profile quietly" 77 'emergencies only.*|elevate break-glass fire' as alice elevate request fire --reason "prod is down"
capture as alice elevate break-glass fire --reason "prod is down"
bid=$(head -1 <<<"$OUT")
[ "$(lease_field "$bid" state)" = active ] && in_group alice firegrp && ok "break-glass is active at once" || notok "break-glass is active at once" "$OUT $ERR"
grep -q '"event":"lease.break_glass"' "$AUDIT" && grep -q '"severity":"alert"' "$AUDIT" && ok "break-glass is audited at alert severity" || notok "break-glass is audited at alert severity" "lease.break_glass records: $(grep -c '"event":"lease.break_glass"' "$AUDIT"), alert records: $(grep -c '"severity":"alert"' "$AUDIT")"
expect "break-glass on a normal profile is refused" 77 'break-glass' as alice elevate break-glass quick --reason x
as alice elevate revoke "$bid" >/dev/null

# --- process-bound lease
as_user bob sleep 30 2>/dev/null & sjob=$!   # (its shell would report "Terminated")
wait_for 3 pgrep -u bob -x sleep >/dev/null
spid=$(pgrep -u bob -x sleep | head -1)
capture as bob elevate request quick --bind-pid "$spid" --reason ci
bbid=$(head -1 <<<"$OUT")
expect "binding to someone else's process is refused" 77 'own' as alice elevate request quick --bind-pid "$spid"
[ "$(lease_field "$bbid" state)" = active ] && ok "a lease can be bound to the caller's own process" || notok "a lease can be bound to the caller's own process" "$OUT $ERR"
kill "$spid"; wait "$sjob" 2>/dev/null
sleep 1
[ "$(lease_field "$bbid" end_reason)" = process_exited ] && ok "a bound lease ends when its process exits" \
  || notok "a bound lease ends when its process exits" "$(lease_field "$bbid" state) $(lease_field "$bbid" end_reason)"

# --- policy reload ends leases the policy no longer allows
capture as alice elevate request quick --for 5m --reason r
pr=$(head -1 <<<"$OUT")
sed -i 's/users = \["alice", "bob"\]/users = ["bob"]/' "$POL/60-leases.toml"
reload_daemon
sleep 0.3
[ "$(lease_field "$pr" end_reason)" = policy_changed ] && ! in_group alice quickgrp && ok "a reload that removes eligibility ends the lease and its membership" || notok "a reload that removes eligibility ends the lease and its membership" "end_reason: $(lease_field "$pr" end_reason)" "id -nG alice: $(id -nG alice)"
sed -i 's/users = \["bob"\]/users = ["alice", "bob"]/' "$POL/60-leases.toml"
reload_daemon

# --- kill -9 of the daemon: nothing acknowledged is lost, nothing outlives its deadline
capture as alice elevate request quick --for 2s --reason crash
cid=$(head -1 <<<"$OUT")
in_group alice quickgrp && ok "quickgrp is granted before the daemon is killed" || notok "quickgrp is granted before the daemon is killed" "id -nG alice: $(id -nG alice)"
kill -KILL "$DPID"; wait "$DPID" 2>/dev/null; DPID=
sleep 3
CONFIG=$SANDBOX/lease.toml start_daemon || return
! in_group alice quickgrp && ok "after kill -9 and restart past the deadline, the membership is gone" || notok "after kill -9 and restart past the deadline, the membership is gone" "id -nG alice: $(id -nG alice)"
[ "$(lease_field "$cid" end_reason)" = expired ] && ok "...and the lease is recorded as expired" || notok "...and the lease is recorded as expired" "end_reason: $(lease_field "$cid" end_reason)"

# The exact states a kill -9 leaves mid-revoke (the end is journaled, the membership not yet
# removed) and mid-grant (the intent is journaled, the membership not yet added): start-up
# must finish both before serving.
kill -KILL "$DPID"; wait "$DPID" 2>/dev/null; DPID=
gpasswd -a alice quickgrp >/dev/null
qgid=$(getent group quickgrp | cut -d: -f3)
now=$(($(date +%s) * 1000))
cat >>"$STATE/leases.jsonl" <<JSON
{"id":9001,"uid":$(id -u alice),"user":"alice","profile":"quick","state":"ended","duration_ms":60000,"requested_at_ms":$now,"approvals":[],"approvals_needed":0,"activated_at_ms":$now,"expires_at_ms":$((now + 60000)),"ended_at_ms":$now,"end_reason":"revoked","grants":[{"group":"quickgrp","gid":$qgid,"standing":false,"applied":true}],"break_glass":false}
{"id":9002,"uid":$(id -u bob),"user":"bob","profile":"quick","state":"active","duration_ms":600000,"requested_at_ms":$now,"approvals":[],"approvals_needed":0,"activated_at_ms":$now,"expires_at_ms":$((now + 600000)),"grants":[{"group":"quickgrp","gid":$qgid,"standing":false,"applied":false}],"break_glass":false}
JSON
CONFIG=$SANDBOX/lease.toml start_daemon || return
! in_group alice quickgrp && ok "crash mid-revoke: start-up removes the membership the journal says ended" || notok "crash mid-revoke: start-up removes the membership the journal says ended" "id -nG alice: $(id -nG alice)"
in_group bob quickgrp && ok "crash mid-grant: start-up completes the grant of an acknowledged lease" || notok "crash mid-grant: start-up completes the grant of an acknowledged lease" "id -nG bob: $(id -nG bob)"
expect "...and that lease is still revocable as usual" 0 '' as dave elevate revoke 9002
! in_group bob quickgrp && ok "...which removes bob's quickgrp membership" || notok "...which removes bob's quickgrp membership" "id -nG bob: $(id -nG bob)"
expect "grpck -r is clean after all of it" 0 '' grpck -r
in_group alice legacy && ok "the standing membership survived everything" || notok "the standing membership survived everything" "id -nG alice: $(id -nG alice)"

# --- root ends everything (what uninstalling does); root is no approver
expect "alice requests a lease, to be ended by revoke --all" 0 '' as alice elevate request quick --for 2m
expect "alice requests an approval lease that stays pending, to be ended by revoke --all" 0 '' as alice elevate request db-admin --reason "x" --ticket INC-5
pid_req=$(as alice elevate leases --json | json_get '.leases[state=pending].id' | head -1)
R() { "$SANDBOX/bin/elevate" --socket "$SOCK" "$@"; }
expect "root may not approve (approval is a person's decision)" 77 'approver' R approve "$pid_req"
live=$(R leases --all --json | json_count '.leases[state=active|pending]')
[ "$live" -ge 2 ] && ok "...both are live (active or pending) before revoke --all" || notok "...both are live (active or pending) before revoke --all" "$live"
expect "root: revoke --all ends every lease and request" 0 "^$live leases and requests ended" R revoke --all --reason "elevate is being removed"
! in_group alice quickgrp && ok "...alice's quickgrp membership is gone" || notok "...alice's quickgrp membership is gone" "id -nG alice: $(id -nG alice)"
expect "...nothing live remains" 0 '' sh -c "! '$SANDBOX/bin/elevate' --socket '$SOCK' leases --all --json | grep -qE '\"state\": *\"(active|pending)\"'"
expect "a user's revoke --all ends only their own" 0 '0 leases and requests ended' as bob elevate revoke --all
expect "the audit chain verifies after all of it" 0 'audit log OK' "$SANDBOX/bin/elevate" audit verify "$AUDIT" --anchor "$STATE/audit-anchor.json"
stop_daemon
