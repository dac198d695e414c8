# shellcheck shell=bash
# A real OpenSSH server on 127.0.0.1 whose PAM stack has pam_elevate.so: no lease, no login;
# with a lease, a login; revoke the lease and the ssh session ends.

fixture_users

MOD=$SANDBOX/lib/pam_elevate.so
[ -f "$MOD" ] || { install -d -m 0755 "$SANDBOX/lib"; install -m 0644 "$ELEVATE_PAM_MODULE" "$MOD"; }
SSHD_DIR=$SANDBOX/ssh
install -d -m 0755 "$SSHD_DIR"
mkdir -p /run/sshd && chmod 0755 /run/sshd   # /run is the sandbox's overlay
ssh-keygen -q -t ed25519 -N '' -f "$SSHD_DIR/host_key" </dev/null
ssh-keygen -q -t ed25519 -N '' -f "$SSHD_DIR/client_key" </dev/null
install -d -m 0700 -o alice -g alice /home/alice/.ssh
install -m 0600 -o alice -g alice "$SSHD_DIR/client_key.pub" /home/alice/.ssh/authorized_keys
# sshd names its PAM service after argv[0]: this symlink reads /etc/pam.d/sshd-elevate-test.
ln -sf /usr/sbin/sshd "$SANDBOX/bin/sshd-elevate-test"
cat >/etc/pam.d/sshd-elevate-test <<PAM
#%PAM-1.0
auth     required pam_deny.so
account  required $MOD socket=$SOCK exempt=root
account  required pam_unix.so
session  required $MOD socket=$SOCK exempt=root
session  required pam_unix.so
PAM
PORT=$((20000 + RANDOM % 20000))
cat >"$SSHD_DIR/sshd_config" <<CFG
ListenAddress 127.0.0.1
Port $PORT
HostKey $SSHD_DIR/host_key
PidFile $SANDBOX/run/sshd.pid
UsePAM yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile .ssh/authorized_keys
PermitRootLogin no
LogLevel VERBOSE
CFG
policy_file 76-sshd.toml <<'TOML'
[[login]]
services = ["sshd-elevate-test"]
users = ["alice"]
access = "lease"

[[profile]]
name = "ssh-access"
description = "ssh to this host"
users = ["alice"]
access = "lease"
login = ["sshd-elevate-test"]
max_duration = "1h"
TOML
start_daemon || return
"$SANDBOX/bin/sshd-elevate-test" -D -f "$SSHD_DIR/sshd_config" -E "$SANDBOX/log/sshd.log" &
SSHD_PID=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done
sshc() {
  timeout "${TO:-20}" ssh -F none -i "$SSHD_DIR/client_key" -p "$PORT" -o BatchMode=yes \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR alice@127.0.0.1 "$@"
}

expect "ssh without a lease: refused" 255 '' sshc echo logged-in
grep -q "login.denied" "$AUDIT" && grep '"login.denied"' "$AUDIT" | tail -1 | grep -q '"service":"sshd-elevate-test"' \
  && ok "...and audited as login.denied for sshd-elevate-test" || notok "...and audited as login.denied for sshd-elevate-test" "the last login.denied: $(grep '"login.denied"' "$AUDIT" | tail -1)"

as alice elevate request ssh-access --for 10m --reason "ssh test" >/dev/null 2>&1
LID=$(as alice elevate leases --json 2>/dev/null | json_get '.leases[profile=ssh-access,state=active].id' | head -1)
expect "ssh with an active lease: logged in" 0 'logged-in' sshc echo logged-in

sshc 'echo $$; exec sleep 120' >"$SANDBOX/run/ssh-hold.out" 2>&1 &
SSH_CLIENT_PID=$!
wait_file "$SANDBOX/run/ssh-hold.out" 10
REMOTE_SHELL=$(head -1 "$SANDBOX/run/ssh-hold.out")
alive "$REMOTE_SHELL" && ok "a long ssh session is running (remote pid $REMOTE_SHELL)" || notok "a long ssh session is running" "$(cat "$SANDBOX/run/ssh-hold.out")"
as alice elevate revoke "$LID" --reason "ssh test done" >/dev/null 2>&1
if wait_gone "$SSH_CLIENT_PID" 10; then ok "revoking the lease ends the ssh session (the client disconnects)"; else notok "revoking the lease ends the ssh session (the client disconnects)" "the ssh client still runs; its output: $(cat "$SANDBOX/run/ssh-hold.out")"; kill "$SSH_CLIENT_PID" 2>/dev/null; fi
wait_gone "$REMOTE_SHELL" 5 && ok "...and the remote command is gone" || notok "...and the remote command is gone" "$(ps -o pid,user,args -p "$REMOTE_SHELL" 2>&1)"
wait "$SSH_CLIENT_PID" 2>/dev/null
grep '"session.terminated"' "$AUDIT" | tail -1 | grep -q "\"lease\":$LID" && ok "...recorded as session.terminated with the lease" || notok "...recorded as session.terminated with the lease" "lease $LID; the last session.terminated: $(grep '"session.terminated"' "$AUDIT" | tail -1)"
expect "after the revocation: ssh refused again" 255 '' sshc echo logged-in

kill "$SSHD_PID" 2>/dev/null; wait "$SSHD_PID" 2>/dev/null
