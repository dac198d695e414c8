# shellcheck shell=bash
# The D-Bus API on a private dbus-daemon configured like Debian's system bus plus the shipped
# policy file (packaging/dbus): introspection with three clients, every method as different
# users, the signals (only to subscribers, only about leases their ListLeases shows), refusals
# identical to the socket's, and logind (a stand-in on the same bus) asked to end a lease's
# login session.

fixture_users

sandbox_user busadmin
sandbox_user bea busleads
PAMLIB=$SANDBOX/lib
install -d -m 0755 "$PAMLIB"
install -m 0644 "$ELEVATE_PAM_MODULE" "$PAMLIB/pam_elevate.so"
printf '#%%PAM-1.0\nauth required pam_permit.so\naccount required %s socket=%s\nsession required %s socket=%s\n' \
  "$PAMLIB/pam_elevate.so" "$SOCK" "$PAMLIB/pam_elevate.so" "$SOCK" >/etc/pam.d/pe-dbus

# Its own policy and state: this file must not depend on the order the others ran in.
BUS_POL=$SANDBOX/policy-dbus
install -d -m 0755 "$BUS_POL"
cat >"$BUS_POL/00-admin.toml" <<'TOML'
[admin]
users = ["busadmin"]
TOML
cat >"$BUS_POL/80-dbus.toml" <<'TOML'
[[profile]]
name = "quick-bus"
users = ["alice"]
access = "lease"
default_duration = "1m"
max_duration = "5m"
[[profile.command]]
path = "/usr/bin/id"

[[profile]]
name = "db-bus"
users = ["alice"]
access = "lease"
default_duration = "10m"
max_duration = "1h"
approval = { approvers = ["group:busleads"], count = 1 }
[[profile.command]]
path = "/usr/bin/id"

[[profile]]
name = "mfa-bus"
users = ["alice"]
access = "lease"
authenticate = true
[[profile.command]]
path = "/usr/bin/id"

[[profile]]
name = "shell-bus"
users = ["alice"]
access = "lease"
login = ["pe-dbus"]
default_duration = "10m"

[[login]]
services = ["pe-dbus"]
users = ["alice"]
access = "lease"
TOML
chmod 0644 "$BUS_POL"/*.toml

# A bus configured like Debian's /usr/share/dbus-1/system.conf (deny by default), with the
# shipped policy file included as it is.
BUS_SOCK=$SANDBOX/run/dbus.sock
BUS_ADDR=unix:path=$BUS_SOCK
cat >"$SANDBOX/dbus.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>$BUS_ADDR</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <policy user="root">
    <allow own="org.freedesktop.login1"/>
    <allow send_destination="org.freedesktop.login1"/>
  </policy>
  <include>$repo/packaging/dbus/org.elevate.Elevated1.conf</include>
</busconfig>
XML
dbus-daemon --config-file="$SANDBOX/dbus.conf" --nofork --nopidfile >"$SANDBOX/log/dbus.log" 2>&1 &
BUS_PID=$!
for _ in $(seq 100); do [ -S "$BUS_SOCK" ] && break; sleep 0.05; done
[ -S "$BUS_SOCK" ] && ok "a private system bus runs" || notok "a private system bus runs" "$(cat "$SANDBOX/log/dbus.log")"

# The logind stand-in, before the daemon, so the daemon finds it.
/usr/bin/python3 "$here/helpers/fake_logind.py" "$BUS_ADDR" "$SANDBOX/run/logind.out" >"$SANDBOX/log/logind.log" 2>&1 &
LOGIND_PID=$!
for _ in $(seq 100); do grep -q ready "$SANDBOX/log/logind.log" 2>/dev/null && break; sleep 0.05; done
grep -q ready "$SANDBOX/log/logind.log" && ok "the logind stand-in owns its name" || notok "the logind stand-in owns its name" "$(cat "$SANDBOX/log/logind.log")"

SAVED_STATE=$STATE
STATE=$SANDBOX/state-dbus
DBUS_SYSTEM_BUS_ADDRESS=$BUS_ADDR POLICY_DIR=$BUS_POL start_daemon
STATE=$SAVED_STATE

# bus USER CMD...: CMD as USER with the test bus as the system bus.
bus() { local u=$1; shift; as_user "$u" /usr/bin/timeout -k 5 "${T:-30}" env DBUS_SYSTEM_BUS_ADDRESS="$BUS_ADDR" "$@"; }
# call USER METHOD ARGS...: one method of org.elevate.Elevated1 through gdbus.
call() {
  local u=$1 m=$2; shift 2
  bus "$u" gdbus call --system --dest org.elevate.Elevated1 --object-path /org/elevate/Elevated1 \
    --method "org.elevate.Elevated1.$m" "$@"
}
for _ in $(seq 100); do call bob Status >/dev/null 2>&1 && break; sleep 0.1; done
grep -q "D-Bus: serving org.elevate.Elevated1" "$DLOG" && ok "the daemon owns org.elevate.Elevated1" || notok "the daemon owns org.elevate.Elevated1" "$(tail -5 "$DLOG")"

# Signals: a plain monitor (no Subscribe) as bob, and subscribed listeners as bob (no grants),
# alice (the holder), bea (an approver of db-bus) and busadmin (an admin).
timeout 120 setpriv --reuid=bob --regid="$(id -g bob)" --init-groups --reset-env -- env DBUS_SYSTEM_BUS_ADDRESS="$BUS_ADDR" \
  stdbuf -oL gdbus monitor --system --dest org.elevate.Elevated1 >"$SANDBOX/run/signals.out" 2>&1 &
MON_PID=$!
LISTEN_PIDS=()
for u in bob alice bea busadmin; do
  timeout 120 setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups --reset-env -- \
    /usr/bin/python3 "$here/helpers/bus_listen.py" "$BUS_ADDR" >"$SANDBOX/run/listen-$u.out" 2>&1 &
  LISTEN_PIDS+=($!)
done
for u in bob alice bea busadmin; do
  for _ in $(seq 100); do grep -q '^subscribed' "$SANDBOX/run/listen-$u.out" 2>/dev/null && break; sleep 0.05; done
  grep -q '^subscribed' "$SANDBOX/run/listen-$u.out" && ok "Subscribe: $u listens" || notok "Subscribe: $u listens" "$(cat "$SANDBOX/run/listen-$u.out")"
done
sleep 0.3

# Introspection: gdbus, dbus-send and busctl all see the interface.
expect "gdbus introspects the interface" 0 'RequestPending' bus bob gdbus introspect --system --dest org.elevate.Elevated1 --object-path /org/elevate/Elevated1
for m in Status ListLeases ListPending Request Approve Deny Revoke Subscribe Unsubscribe LeaseActive LeaseEnded; do
  grep -q "$m" <<<"$OUT" || notok "introspection lists $m" "$OUT"
done
expect "dbus-send introspects it" 0 'interface name="org.elevate.Elevated1"' bus bob dbus-send --system --print-reply \
  --dest=org.elevate.Elevated1 /org/elevate/Elevated1 org.freedesktop.DBus.Introspectable.Introspect
expect "busctl introspects it" 0 '\.ListPending +method' bus bob busctl --address="$BUS_ADDR" introspect org.elevate.Elevated1 /org/elevate/Elevated1

# Methods.
expect "Status answers anyone with the daemon's status" 0 '"running_commands"' call bob Status
expect "Request: a self-approved profile is active at once" 0 "^\(uint64 [0-9]+, 'active'\)" call alice Request "'quick-bus'" 0 "'bus test'" "''"
QID=$(sed -n 's/^(uint64 \([0-9]*\),.*/\1/p' <<<"$OUT")
expect "Request: an approval profile is pending" 0 "'pending'" call alice Request "'db-bus'" 600 "'migrate'" "'INC-7'"
DID=$(sed -n 's/^(uint64 \([0-9]*\),.*/\1/p' <<<"$OUT")
expect "ListPending: the approver sees the request" 0 "\"id\":$DID,.*\"state\":\"pending\"" call bea ListPending
expect "ListPending: someone else does not" 0 "^\('\{\"leases\":\[\]\}',\)" call bob ListPending
expect "ListPending: nor does the requester (they cannot approve it)" 0 "^\('\{\"leases\":\[\]\}',\)" call alice ListPending

expect "Approve: never your own request" 1 "Error\.Denied: you cannot approve your own request" call alice Approve "$DID" "''"
capture as alice elevate approve "$DID"
grep -q "you cannot approve your own request" <<<"$OUT$ERR" && ok "...the same refusal as over the socket" || notok "...the same refusal as over the socket" "$OUT" "$ERR"
expect "Approve: by an approver, the lease becomes active" 0 "^\('active',\)" call bea Approve "$DID" "'ok'"
expect "Approve: an unknown id is NotFound" 1 'Error\.NotFound' call bea Approve 99999 "''"

expect "ListLeases: my own" 0 "\"id\":$QID.*\"id\":$DID" call alice ListLeases false
expect "ListLeases(all): refused to a non-admin" 1 'Error\.Denied: only admins and auditors may list every lease' call bob ListLeases true
dmsg=$(sed -n 's/.*Error\.Denied: \([^(]*\) (.*/\1/p' <<<"$ERR" | sed 's/ *$//')
capture as bob elevate leases --all
[ -n "$dmsg" ] && grep -qF "$dmsg" <<<"$OUT$ERR" && ok "...with the socket's words" || notok "...with the socket's words" "bus: $dmsg" "socket: $ERR"
expect "ListLeases(all): an admin sees everyone's" 0 "\"user\":\"alice\"" call busadmin ListLeases true

expect "Revoke: someone else's lease is NotFound" 1 'Error\.NotFound' call bob Revoke "$DID" "''"
expect "Revoke: the holder ends it" 0 '^\(\)' call alice Revoke "$DID" "'done'"
expect "Request again, then Deny by an approver" 0 "'pending'" call alice Request "'db-bus'" 0 "'again'" "'INC-8'"
D2=$(sed -n 's/^(uint64 \([0-9]*\),.*/\1/p' <<<"$OUT")
expect "...Deny by an approver succeeds" 0 '^\(\)' call bea Deny "$D2" "'not today'"
expect "Deny: not by the requester" 1 'Error\.' call alice Deny "$D2" "''"

expect "Request: an authenticate profile needs a terminal" 1 'Error\.AuthenticationRequired: .*elevate command on a terminal' call alice Request "'mfa-bus'" 0 "''" "''"
expect "Request: an unknown profile is Denied, with the socket's hint" 1 'Error\.Denied: no such profile: nope \(see what you may request: elevate list\)' call alice Request "'nope'" 0 "''" "''"
expect "Request: a duration past the maximum is refused" 1 'Error\.' call alice Request "'quick-bus'" 999999 "''" "''"
RLO=$(printf '\u202e')
expect "Request: a reason with a bidi override is refused, naming it" 1 'Error\.BadRequest: the reason contains U\+202E' call alice Request "'shell-bus'" 0 "'fix ${RLO}gnp.exe'" "''"
expect "...over the socket too" 2 'the reason contains U\+202E' as alice elevate request shell-bus --reason "fix ${RLO}gnp.exe"
expect "Deny: a reason with an escape sequence is refused" 1 'Error\.BadRequest: the reason contains U\+001B' call bea Deny 99999 "'x$(printf '\033')[2J'"

# Identity is the bus's: the records name alice (uid from the bus), reached over D-Bus.
assert "the audit record names the bus caller and the channel" \
  python3 - "$AUDIT" "$QID" "$(id -u alice)" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
r = [r for r in recs if r["event"] == "lease.requested" and r.get("lease") == int(sys.argv[2])]
assert r and r[-1]["uid"] == int(sys.argv[3]) and r[-1]["requester"]["via"] == "dbus", r
assert r[-1]["requester"]["uid"] == int(sys.argv[3]) and r[-1]["requester"]["exe"].endswith("gdbus"), r
PY

# Only root may own the name.
capture bus bob /usr/bin/python3 -c 'import dbus,sys; b=dbus.bus.BusConnection(sys.argv[1]); b.request_name("org.elevate.Elevated1")' "$BUS_ADDR"
[ "$RC" != 0 ] && grep -q "AccessDenied" <<<"$ERR" && ok "a user cannot own org.elevate.Elevated1" || notok "a user cannot own org.elevate.Elevated1" "rc $RC" "$ERR"

# The signals: the holder and the admin hear every one, the approver the request it may
# approve; an unprivileged listener, subscribed or not, learns nothing about alice's leases.
sleep 0.5
for u in alice busadmin; do
  S=$(cat "$SANDBOX/run/listen-$u.out")
  grep -qE "^RequestPending $DID alice db-bus \[group:busleads\]$" <<<"$S" && ok "$u: signal RequestPending (with approvers)" || notok "$u: signal RequestPending (with approvers)" "$S"
  grep -qE "^LeaseActive $QID alice quick-bus [0-9T:.-]+Z$" <<<"$S" && ok "$u: signal LeaseActive (self-approved)" || notok "$u: signal LeaseActive (self-approved)" "$S"
  grep -qE "^LeaseActive $DID alice db-bus " <<<"$S" && ok "$u: signal LeaseActive (after approval)" || notok "$u: signal LeaseActive (after approval)" "$S"
  grep -qE "^LeaseEnded $DID alice db-bus revoked$" <<<"$S" && ok "$u: signal LeaseEnded (revoked)" || notok "$u: signal LeaseEnded (revoked)" "$S"
  grep -qE "^LeaseEnded $D2 alice db-bus denied$" <<<"$S" && ok "$u: signal LeaseEnded (denied)" || notok "$u: signal LeaseEnded (denied)" "$S"
done
S=$(cat "$SANDBOX/run/listen-bea.out")
grep -qE "^RequestPending $DID alice db-bus " <<<"$S" && ok "the approver hears the request it may approve" || notok "the approver hears the request it may approve" "$S"
grep -qE "quick-bus|^LeaseEnded $DID " <<<"$S" && notok "...and nothing its list would not show" "$S" || ok "...and nothing its list would not show"
S=$(cat "$SANDBOX/run/listen-bob.out")
[ "$(grep -vc '^subscribed' <<<"$S")" = 0 ] && ok "a subscribed listener with no grants hears nothing of others' leases" || notok "a subscribed listener with no grants hears nothing of others' leases" "$S"
S=$(cat "$SANDBOX/run/signals.out")
grep -qE "RequestPending|LeaseActive|LeaseEnded|alice" <<<"$S" && notok "a plain monitor (no Subscribe) sees no signal: none is broadcast" "$S" || ok "a plain monitor (no Subscribe) sees no signal: none is broadcast"
grep -q "INC-7\|migrate" "$SANDBOX"/run/listen-*.out && notok "signals carry no reason or ticket" "$(cat "$SANDBOX"/run/listen-*.out)" || ok "signals carry no reason or ticket"

# logind: a lease-admitted PAM session is matched to its logind session, and logind is asked to
# terminate it when the lease ends (the process signals still go out).
expect "Request over D-Bus: a login profile's lease is active at once" 0 "'active'" call alice Request "'shell-bus'" 0 "'login'" "''"
LL=$(sed -n 's/^(uint64 \([0-9]*\),.*/\1/p' <<<"$OUT")
timeout 40 python3 "$here/helpers/pam_session.py" pe-dbus alice hold >"$SANDBOX/run/bsess.out" 2>&1 &
SPID=$!
for _ in $(seq 100); do grep -q '"logind":"c7"' "$SANDBOX/state-dbus/sessions.json" 2>/dev/null && break; sleep 0.05; done
grep -q '"logind":"c7"' "$SANDBOX/state-dbus/sessions.json" && ok "the session is matched to logind's session" || notok "the session is matched to logind's session" "$(cat "$SANDBOX/run/bsess.out")" "$(cat "$SANDBOX/state-dbus/sessions.json" 2>&1)"
expect "revoking the login lease" 0 '' call alice Revoke "$LL" "''"
for _ in $(seq 100); do grep -q "terminate c7" "$SANDBOX/run/logind.out" 2>/dev/null && break; sleep 0.05; done
grep -q "terminate c7" "$SANDBOX/run/logind.out" && ok "logind's TerminateSession is called" || notok "logind's TerminateSession is called" "$(tail -5 "$DLOG")"
if wait_gone "$SPID" 5; then ok "...and the session's processes end"; else notok "...and the session's processes end" "pid $SPID still runs; its output: $(cat "$SANDBOX/run/bsess.out")"; kill -KILL "$SPID" 2>/dev/null; fi
wait "$SPID" 2>/dev/null
grep -q '"event":"session.terminated".*"logind":"c7"' "$AUDIT" && ok "session.terminated names the logind session" || notok "session.terminated names the logind session" "the last session.terminated: $(grep '"session.terminated"' "$AUDIT" | tail -1)"

kill "$MON_PID" "${LISTEN_PIDS[@]}" 2>/dev/null; wait "$MON_PID" "${LISTEN_PIDS[@]}" 2>/dev/null
stop_daemon

# Without a bus the daemon says so once and serves the socket as always.
: >"$DLOG.nobus"
DLOG_SAVED=$DLOG; DLOG=$DLOG.nobus
DBUS_SYSTEM_BUS_ADDRESS=unix:path=$SANDBOX/run/no-such-bus POLICY_DIR=$BUS_POL start_daemon
expect "no bus: the socket still serves" 0 '' as alice elevate status
[ "$(grep -c "D-Bus: no system bus" "$DLOG")" = 1 ] && ok "no bus: said once in the log" || notok "no bus: said once in the log" "$(cat "$DLOG")"
stop_daemon
DLOG=$DLOG_SAVED

kill "$LOGIND_PID" "$BUS_PID" 2>/dev/null; wait "$LOGIND_PID" "$BUS_PID" 2>/dev/null
