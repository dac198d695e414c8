# shellcheck shell=bash
# What the systemd unit relies on, without systemd: readiness and reload notifications on
# $NOTIFY_SOCKET (Type=notify), socket activation (elevated.socket), and a socket that is
# systemd's staying in place when the daemon stops.

fixture_policy base   # the lease profile lease-only; $POL for the activated daemon

# A stand-in for the service manager's notification socket: every datagram, one per line.
python3 - "$SANDBOX/run/notify.sock" "$SANDBOX/run/notify.out" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(4096).decode().replace("\n", " ") + "\n")
PY
NPID=$!
for _ in $(seq 100); do [ -S "$SANDBOX/run/notify.sock" ] && break; sleep 0.05; done

NOTIFY_SOCKET=$SANDBOX/run/notify.sock start_daemon
for _ in $(seq 40); do grep -q READY=1 "$SANDBOX/run/notify.out" 2>/dev/null && break; sleep 0.05; done
grep -qx "READY=1" "$SANDBOX/run/notify.out" && ok "READY=1 once the socket serves" || notok "READY=1 once the socket serves" "$(cat "$SANDBOX/run/notify.out" 2>&1)"
kill -HUP "$DPID"
for _ in $(seq 40); do [ "$(grep -c READY=1 "$SANDBOX/run/notify.out")" -ge 2 ] && break; sleep 0.05; done
grep -qE "^RELOADING=1 MONOTONIC_USEC=[0-9]+ ?$" "$SANDBOX/run/notify.out" && [ "$(grep -c READY=1 "$SANDBOX/run/notify.out")" = 2 ] \
  && ok "SIGHUP: RELOADING=1 (with MONOTONIC_USEC), then READY=1" || notok "SIGHUP: RELOADING=1 (with MONOTONIC_USEC), then READY=1" "$(cat "$SANDBOX/run/notify.out")"
stop_daemon
grep -qx "STOPPING=1" "$SANDBOX/run/notify.out" && ok "STOPPING=1 on SIGTERM" || notok "STOPPING=1 on SIGTERM" "$(cat "$SANDBOX/run/notify.out")"
kill "$NPID" 2>/dev/null; wait "$NPID" 2>/dev/null

# Socket activation: systemd-socket-activate plays elevated.socket (it listens, and on the
# first connection execs the daemon with the listening socket as fd 3).
ASOCK=$SANDBOX/run/activated.sock
systemd-socket-activate -l "$ASOCK" "$SANDBOX/bin/elevated" --config /dev/null --socket "$ASOCK" \
  --policy-dir "$POL" --state-dir "$STATE" --audit-log "$AUDIT" >>"$DLOG" 2>&1 &
APID=$!
for _ in $(seq 100); do [ -S "$ASOCK" ] && break; sleep 0.05; done
chmod 0666 "$ASOCK"   # elevated.socket's SocketMode
expect "socket activation: the first client is served" 0 'elevated ' as alice elevate --socket "$ASOCK" status
expect "...and commands run through it" 0 '^0$' as alice elevate --socket "$ASOCK" id -u
[ "$(readlink "/proc/$APID/exe")" = "$SANDBOX/bin/elevated" ] && ok "...by the daemon, exec'd in place" || notok "...by the daemon, exec'd in place" "$(readlink "/proc/$APID/exe")"
DPID=$APID stop_daemon
[ -S "$ASOCK" ] && ok "an activated socket is left in place on stop (it is systemd's)" || notok "an activated socket is left in place on stop (it is systemd's)" "$(ls -l "$ASOCK" 2>&1)"
rm -f "$ASOCK"
expect "a bad activation (two sockets) is refused with a clear error" 78 'exactly one' \
  env LISTEN_PID=$$ LISTEN_FDS=2 sh -c 'exec env LISTEN_PID=$$ "$0" --config /dev/null --socket "$1"' "$SANDBOX/bin/elevated" "$ASOCK"

# The notify hook (notify_command): each lease event as JSON on stdin; it runs as root, so
# only a root-owned file in root-owned directories is run.
cat >"$CMDS/notify-hook" <<SH
#!/bin/sh
cat >>$SANDBOX/run/hook.out
SH
chmod 0755 "$CMDS/notify-hook"
printf 'notify_command = "%s"\n' "$CMDS/notify-hook" >"$SANDBOX/hook.toml"
CONFIG=$SANDBOX/hook.toml start_daemon
expect "a lease to announce is granted (lease-only)" 0 '' as alice elevate request lease-only --for 1m
for _ in $(seq 40); do grep -q lease.activated "$SANDBOX/run/hook.out" 2>/dev/null && break; sleep 0.05; done
assert "the notify hook gets the lease.activated event as JSON" \
  python3 - "$SANDBOX/run/hook.out" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert any(e["event"] == "lease.activated" and e["lease"]["profile"] == "lease-only" for e in ev), ev
PY
as alice elevate revoke --all >/dev/null 2>&1
stop_daemon
install -d -m 0777 "$SANDBOX/run/anyone"
install -m 0755 "$CMDS/notify-hook" "$SANDBOX/run/anyone/hook"
printf 'notify_command = "%s"\n' "$SANDBOX/run/anyone/hook" >"$SANDBOX/hook.toml"
rm -f "$SANDBOX/run/hook.out"
CONFIG=$SANDBOX/hook.toml start_daemon
expect "a second lease is granted (the hook now in a world-writable dir)" 0 '' as alice elevate request lease-only --for 1m
sleep 0.5
[ ! -e "$SANDBOX/run/hook.out" ] && grep -q "notify hook not run: .*writable" "$DLOG" && ok "a hook in a world-writable directory is not run, and the log says why" \
  || notok "a hook in a world-writable directory is not run, and the log says why" "$(tail -3 "$DLOG")"
as alice elevate revoke --all >/dev/null 2>&1
stop_daemon
printf 'notify_command = "hook"\n' >"$SANDBOX/hook.toml"
expect "a relative notify_command is a configuration error" 78 'notify_command hook: must be an absolute path' \
  "$SANDBOX/bin/elevated" --config "$SANDBOX/hook.toml" --check
