# shellcheck shell=bash
# pam_elevate.so under real libpam (pamtester): logins gated by [[login]] rules and leases,
# exempt users, an unreachable daemon (fail=closed / fail=open), bad arguments, a panic.

fixture_users   # alice and carol in webops, bob, svc

PAMLIB=$SANDBOX/lib
install -d -m 0755 "$PAMLIB"
install -m 0644 "$ELEVATE_PAM_MODULE" "$PAMLIB/pam_elevate.so"
install -m 0644 "$ELEVATE_PAM_PANIC_MODULE" "$PAMLIB/pam_elevate_panic.so"
MOD=$PAMLIB/pam_elevate.so

# pam_service NAME 'account lines…': a test service in the sandbox's /etc/pam.d.
pam_service() {
  printf '#%%PAM-1.0\nauth required pam_permit.so\n%s\n' "$2" >"/etc/pam.d/$1"
  chmod 0644 "/etc/pam.d/$1"
}
# Stack A: the module, then pam_permit: allowed and ignored pass, denied fails.
pam_service pe-a "account required $MOD socket=$SOCK exempt=root
account required pam_permit.so
session required $MOD socket=$SOCK"
# Stack B: the module as `sufficient`, then pam_deny: only an explicit allow passes.
pam_service pe-b "account sufficient $MOD socket=$SOCK exempt=root
account required pam_deny.so"
# The same service names gate both stacks (rules name services).
policy_file 75-login.toml <<'TOML'
[[login]]
services = ["pe-a", "pe-b"]
groups = ["webops"]
access = "lease"

[[login]]
services = ["pe-a", "pe-b"]
users = ["carol"]
access = "standing"

[[login]]
services = ["pe-a", "pe-b"]
users = ["bob"]
access = "deny"

# A rule for other hosts only: svc stays ungated here.
[[login]]
services = ["pe-a", "pe-b"]
users = ["svc"]
access = "deny"
hosts = ["no-such-host-*"]

[[profile]]
name = "shell-access"
description = "Log in to this host"
users = ["alice"]
access = "lease"
login = ["pe-a", "pe-b", "sshd-elevate-test"]
max_duration = "1h"
TOML
start_daemon || return

pt() { timeout 20 pamtester -v "$1" "$2" "${@:3}"; }
# acct SERVICE USER: pamtester acct_mgmt, capturing output.
acct() { capture pt "$1" "$2" acct_mgmt; }

expect "no lease: a lease-gated login is denied" 1 'only while holding an approved elevate lease' pt pe-a alice acct_mgmt
expect "...and the denial says which profile to request" 1 'elevate request shell-access' pt pe-a alice acct_mgmt
expect "standing access (carol): the login is allowed" 0 'management done' pt pe-b carol acct_mgmt
expect "access = deny: denied" 1 'may not log in' pt pe-a bob acct_mgmt
expect "not gated (svc: its only rule is for other hosts): the module steps aside (stack A passes)" 0 'management done' pt pe-a svc acct_mgmt
expect "...and gives no allow of its own (stack B fails)" 1 '' pt pe-b svc acct_mgmt
expect "exempt=root: passes without asking" 0 'management done' pt pe-a root acct_mgmt

as alice elevate request shell-access --for 10m --reason "pam test" >/dev/null 2>&1
LID=$(as alice elevate leases --json 2>/dev/null | json_get '.leases[profile=shell-access,state=active].id' | head -1)
[ -n "$LID" ] && ok "alice holds an active shell-access lease ($LID)" || notok "alice holds an active shell-access lease" "alice's leases: $(as alice elevate leases --json 2>&1)"
expect "with an active lease: the lease-gated login is allowed" 0 'management done' pt pe-b alice acct_mgmt
assert "login.allowed and login.denied are audited with service, user, rule and lease" \
  python3 - "$AUDIT" "$LID" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
allowed = [r for r in recs if r["event"] == "login.allowed" and r["user"] == "alice"]
denied = [r for r in recs if r["event"] == "login.denied" and r["user"] == "alice"]
assert allowed and denied, [r["event"] for r in recs[-10:]]
a = allowed[-1]
assert a["service"] == "pe-b" and a["lease"] == int(sys.argv[2]) and a["access"] == "lease" and "75-login.toml" in a["rule"], a
assert a["requester"]["uid"] == 0, a
assert denied[-1]["reason"], denied[-1]
assert not [r for r in recs if r["event"].startswith("login.") and r["user"] == "svc"], "ignored logins are not recorded"
PY

# A session opened through the lease ends when the lease is revoked: the leader (here a
# pamtester holding the session open while it sleeps) is signalled.
capture timeout 20 python3 "$here/helpers/pam_session.py" pe-a alice close
[ "$RC" = 0 ] && grep -q "open 0" <<<"$OUT" && grep -q "close 0" <<<"$OUT" && ok "a session opens and closes through the module" || notok "a session opens and closes through the module" "rc $RC" "$OUT" "$ERR"
grep -q '"event":"session.opened"' "$AUDIT" && grep -q '"event":"session.closed"' "$AUDIT" && ok "...session.opened and session.closed are both audited" || notok "...session.opened and session.closed are both audited" "session records:" "$(grep -o '"event":"session[a-z._]*"' "$AUDIT" | sort | uniq -c)"

timeout 40 python3 "$here/helpers/pam_session.py" pe-a alice hold >"$SANDBOX/run/sess.out" 2>&1 &
SPID=$!
for _ in $(seq 100); do grep -q "open" "$SANDBOX/run/sess.out" && break; sleep 0.05; done
grep -q "open 0" "$SANDBOX/run/sess.out" && ok "a lease-admitted session is registered" || notok "a lease-admitted session is registered" "$(cat "$SANDBOX/run/sess.out")"
as alice elevate revoke "$LID" --reason "pam test done" >/dev/null 2>&1
if wait_gone "$SPID" 5; then ok "revoking the lease ends the session's processes"; else notok "revoking the lease ends the session's processes" "$(cat "$SANDBOX/run/sess.out")"; kill -KILL "$SPID" 2>/dev/null; fi
wait "$SPID" 2>/dev/null
grep -q "HUP" "$SANDBOX/run/sess.out" && ok "...starting with SIGHUP" || notok "...starting with SIGHUP" "$(cat "$SANDBOX/run/sess.out")"
assert "session.terminated names the session, the lease and the pids" \
  python3 - "$AUDIT" "$LID" <<'PY'
import json, sys
t = [json.loads(l) for l in open(sys.argv[1]) if '"session.terminated"' in l]
assert t and t[-1]["lease"] == int(sys.argv[2]) and t[-1]["pids"] and t[-1]["user"] == "alice", t
PY
expect "after the revocation: denied again" 1 'shell-access' pt pe-a alice acct_mgmt
expect "a session cannot open without a lease" 1 '' timeout 20 python3 "$here/helpers/pam_session.py" pe-a alice close

# Only root may ask about someone else; a user may ask about themselves.
capture as bob python3 - "$SOCK" <<'PY'
import json, socket, struct, sys
def ask(req):
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
    b = json.dumps(req).encode(); s.sendall(struct.pack(">I", len(b)) + b)
    n = struct.unpack(">I", s.recv(4))[0]; print(s.recv(n).decode())
ask({"type": "login_check", "service": "pe-a", "user": "alice"})
ask({"type": "login_check", "service": "pe-a", "user": "bob"})
ask({"type": "session_open", "service": "pe-a", "user": "alice"})
PY
lines=$(printf '%s\n' "$OUT")
grep -q 'only root may ask' <<<"$(sed -n 1p <<<"$lines")" && grep -q '"deny"' <<<"$(sed -n 2p <<<"$lines")" && grep -q 'only root may ask' <<<"$(sed -n 3p <<<"$lines")" \
  && ok "non-root callers may ask only about themselves" || notok "non-root callers may ask only about themselves" "$OUT" "$ERR"

# --- the daemon down ---------------------------------------------------------------------
pam_service pe-open "account required $MOD socket=$SOCK fail=open
account required pam_permit.so"
pam_service pe-grp "account required $MOD socket=$SOCK exempt_group=webops
account required pam_permit.so"
stop_daemon
expect "daemon down, fail=closed: denied, with a message" 1 'unavailable' pt pe-a alice acct_mgmt
expect "daemon down, exempt=root: still allowed" 0 'management done' pt pe-a root acct_mgmt
expect "daemon down, exempt_group=webops: carol allowed" 0 'management done' pt pe-grp carol acct_mgmt
expect "daemon down, fail=open: the module steps aside" 0 'management done' pt pe-open alice acct_mgmt
# A stalled daemon: a socket nobody answers on is a timeout, not a hang.
python3 -c 'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8); time.sleep(30)' "$SANDBOX/run/stall.sock" &
STALL=$!
for _ in $(seq 40); do [ -S "$SANDBOX/run/stall.sock" ] && break; sleep 0.05; done
pam_service pe-stall "account required $MOD socket=$SANDBOX/run/stall.sock timeout_ms=300
account required pam_permit.so"
t0=$(date +%s%N)
expect "a daemon that does not answer: denied after timeout_ms" 1 '' pt pe-stall alice acct_mgmt
t1=$(date +%s%N)
[ $(( (t1 - t0) / 1000000 )) -lt 3000 ] && ok "...within about the timeout ($(( (t1 - t0) / 1000000 )) ms)" || notok "...within about the timeout" "$(( (t1 - t0) / 1000000 )) ms, want under 3000 ms (timeout_ms=300)"
kill "$STALL" 2>/dev/null; wait "$STALL" 2>/dev/null

# --- configuration mistakes and bugs fail closed ----------------------------------------
pam_service pe-typo "account required $MOD socket=$SOCK fail=opne
account required pam_permit.so"
expect "an unknown module argument: denied" 1 '' pt pe-typo carol acct_mgmt
pam_service pe-panic "account required $PAMLIB/pam_elevate_panic.so inject_panic
account required pam_permit.so"
expect "a panic inside the module becomes a denial, not a crash of pamtester" 1 'Permission denied|System error|failed' pt pe-panic carol acct_mgmt
pam_service pe-noinject "account required $MOD inject_panic
account required pam_permit.so"
expect "the release module does not know inject_panic (denied as unknown)" 1 '' pt pe-noinject carol acct_mgmt
