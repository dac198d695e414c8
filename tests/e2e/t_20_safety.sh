# shellcheck shell=bash
# What must never happen: orphaned root processes, a daemon killed by bad input, setuid bits.

fixture_policy base   # alice runs $CMDS/sleeper (basic); carol runs id -un as svc (as-svc)

# Commands for the client-killed cases; each records its pids under $SANDBOX/run.
mkcmd with-child 0755 <<SH
#!/bin/sh
# A background child in the command's process group, then the leader sleeps too.
sleep 300 & echo \$! > $SANDBOX/run/child.pid
echo \$\$ > $SANDBOX/run/leader.pid
wait
SH
mkcmd deaf 0755 <<SH
#!/bin/sh
# Ignores SIGTERM, and so does everything it starts: only SIGKILL ends it.
trap '' TERM
echo \$\$ > $SANDBOX/run/leader.pid
while :; do sleep 0.2; done
SH
mkcmd deaf-child 0755 <<SH
#!/bin/sh
# The leader dies of SIGTERM at once; a child in its process group ignores SIGTERM.
( trap '' TERM; exec sleep 300 ) & echo \$! > $SANDBOX/run/child.pid
echo \$\$ > $SANDBOX/run/leader.pid
wait
SH
policy_file 20-safety.toml <<TOML
[[profile]]
name = "safety"
users = ["alice"]
[[profile.command]]
path = "$CMDS/with-child"
[[profile.command]]
path = "$CMDS/deaf"
[[profile.command]]
path = "$CMDS/deaf-child"
TOML
printf '[limits]\nkill_grace_ms = 500\n' >"$SANDBOX/grace.toml"
CONFIG=$SANDBOX/grace.toml start_daemon || return

# kill_client_of CMD...: start `elevate CMD...` as alice, wait for its pid files, SIGKILL the
# client. Sets LEADER and CHILD (empty if the command has none).
kill_client_of() {
  rm -f "$SANDBOX/run/leader.pid" "$SANDBOX/run/child.pid"
  as alice elevate "$@" 2>/dev/null & local job=$!
  wait_file "$SANDBOX/run/leader.pid" 5; sleep 0.2
  LEADER=$(cat "$SANDBOX/run/leader.pid" 2>/dev/null); CHILD=$(cat "$SANDBOX/run/child.pid" 2>/dev/null)
  kill -KILL "$(pgrep -u alice -x elevate)"; { wait "$job"; } 2>/dev/null
}

# --- client killed: the command's process group is ended
kill_client_of "$CMDS/with-child"
if [ -n "$LEADER" ] && wait_gone "$LEADER" 5; then ok "client killed with SIGKILL → its root command is terminated"
else notok "client killed with SIGKILL → its root command is terminated" "pid $LEADER still alive"; fi
if [ -n "$CHILD" ] && wait_gone "$CHILD" 5; then ok "...and so is the rest of its process group"
else notok "...and so is the rest of its process group" "child pid $CHILD still alive"; fi
kill -KILL "$LEADER" "$CHILD" 2>/dev/null
grep -q '"ended_by":"client_disconnected"' "$AUDIT" && ok "the audit log says why it ended" || notok "the audit log says why it ended" "the last run.exit: $(grep '"event":"run.exit"' "$AUDIT" | tail -1)"

kill_client_of "$CMDS/deaf"
t0=$(date +%s%N)
if [ -n "$LEADER" ] && wait_gone "$LEADER" 5; then ok "a command ignoring SIGTERM is killed after kill_grace_ms ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
else notok "a command ignoring SIGTERM is killed after kill_grace_ms" "pid $LEADER still alive after 5 s (kill_grace_ms = 500)"; kill -KILL "$LEADER"; fi

kill_client_of "$CMDS/deaf-child"
wait_gone "$LEADER" 5
if [ -n "$CHILD" ] && wait_gone "$CHILD" 5; then ok "a group member ignoring SIGTERM is killed after the grace even when the leader exits"
else notok "a group member ignoring SIGTERM is killed after the grace even when the leader exits" \
  "leader $LEADER exited on SIGTERM; child $CHILD (same process group, SIG_IGN for TERM) still runs as root 5 s later (kill_grace_ms = 500)" \
  "$(ps -o pid,pgid,user,args -p "$CHILD" | tail -1)"; kill -KILL "$CHILD"; fi

# --- daemon stopped while a command runs: the command ends, the client says so
rm -f "$SANDBOX/run/sleeper.pid"
as alice elevate "$CMDS/sleeper" 300 2>"$SANDBOX/run/client.err" & job=$!
wait_file "$SANDBOX/run/sleeper.pid" 5; sleep 0.2
cmdpid=$(cat "$SANDBOX/run/sleeper.pid")
stop_daemon
[ "$DRC" = 0 ] && ok "SIGTERM: the daemon exits 0" || notok "SIGTERM: the daemon exits 0" "exit $DRC"
wait_gone "$cmdpid" 5 && ok "SIGTERM: the daemon ends the commands it runs" || { notok "SIGTERM: the daemon ends the commands it runs" "pid $cmdpid"; kill -KILL "$cmdpid"; }
{ wait "$job"; } 2>/dev/null; rc=$?
[ "$rc" = 143 ] && ok "...and their clients exit 143 (SIGTERM)" || notok "...and their clients exit 143 (SIGTERM)" "rc=$rc $(cat "$SANDBOX/run/client.err")"
tail -2 "$AUDIT" | grep -q '"ended_by":"daemon_shutdown"' && tail -1 "$AUDIT" | grep -q '"event":"daemon.stop"' \
  && ok "the audit log ends with the command's exit (daemon_shutdown) and daemon.stop" || notok "the audit log ends with the command's exit (daemon_shutdown) and daemon.stop" "$(tail -2 "$AUDIT")"
[ ! -e "$SOCK" ] && ok "the socket is removed on exit" || notok "the socket is removed on exit" "$(ls -l "$SOCK" 2>&1)"
rm -f "$POL/20-safety.toml"
start_daemon || return

# --- hostile input over the socket: errors, never a dead daemon
assert "malformed frames get an error or a closed connection" \
  python3 - "$SOCK" <<'PY'
import json, os, socket, struct, sys
path = sys.argv[1]
def conn():
    s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(path); return s
def frame(obj): b = json.dumps(obj).encode(); return struct.pack(">I", len(b)) + b
def answer(s):
    try:
        h = s.recv(4)
        if len(h) < 4: return None
        n = struct.unpack(">I", h)[0]; d = b""
        while len(d) < n: d += s.recv(n - len(d))
        return json.loads(d)
    except (ConnectionResetError, socket.timeout): return None
cases = [
    os.urandom(64),                                   # garbage
    struct.pack(">I", 0xFFFFFFF0) + b"{",             # absurd length
    frame({"type": "run", "argv": ["/usr/bin/id"], "uid": 0}),  # identity smuggling: unknown field
    frame({"type": "run", "argv": ["/usr/bin/id"]}),  # run without fds
    frame({"type": "nope"}),
    frame({"type": "signal", "signal": 9}),           # no command running
    frame({"type": "run", "argv": []}),
    b"\x00\x00\x00\x05[1,2",                          # truncated
]
for c in cases:
    s = conn(); s.sendall(c)
    try: s.shutdown(socket.SHUT_WR)
    except OSError: pass
    r = answer(s)
    assert r is None or r.get("type") == "error", (c[:40], r)
    s.close()
PY
expect "the daemon still serves after hostile input" 0 '^0$' as alice elevate id -u
assert "an idle half-open connection does not block others" \
  python3 - "$SOCK" <<'PY'
import socket, subprocess, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"\x00\x00\x01\x00{")  # never finished
r = subprocess.run(["/mnt/bin/elevate", "--socket", sys.argv[1], "status"], capture_output=True, timeout=10)
assert r.returncode == 0, r
PY

assert "a valid status request with unknown fields is answered or refused, not fatal" \
  python3 - "$SOCK" <<'PY'
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
b = json.dumps({"type": "status", "extra": {"nested": [1, 2, 3]}, "uid": 0}).encode()
s.sendall(struct.pack(">I", len(b)) + b)
h = s.recv(4)
if len(h) == 4:
    n = struct.unpack(">I", h)[0]; d = b""
    while len(d) < n:
        c = s.recv(n - len(d)); assert c; d += c
    r = json.loads(d); assert r.get("type") in ("error", "status"), r
PY
assert "a run request with four fds of the wrong kind is refused" \
  python3 - "$SOCK" <<'PY'
import json, os, socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
b = json.dumps({"type": "run", "argv": ["/usr/bin/id"], "env": []}).encode()
fd = os.open("/dev/null", os.O_RDONLY)   # not a directory where the cwd should be
socket.send_fds(s, [struct.pack(">I", len(b)) + b], [fd, fd, fd, fd])
h = s.recv(4)
if len(h) == 4:
    n = struct.unpack(">I", h)[0]; d = b""
    while len(d) < n:
        c = s.recv(n - len(d)); assert c; d += c
    r = json.loads(d); assert r.get("type") == "error", r
PY
kill -0 "$DPID" && ok "the daemon process survived all of it" || notok "the daemon process survived all of it" "pid $DPID is gone; the daemon log ends:" "$(tail -5 "$DLOG")"

# --- nothing setuid or setgid, anywhere in what we build or install
bins=("$ELEVATE_BIN_DIR"/elevate* "$SANDBOX"/bin/*)
for b in elevate elevated; do
  p=$(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v "$b") && bins+=("$p")
done
bad=$(find "${bins[@]}" -maxdepth 0 -type f -perm /6000 2>/dev/null)
if [ -z "$bad" ]; then ok "no setuid/setgid binaries (${#bins[@]} checked, installed ones included)"
else notok "no setuid/setgid binaries" "$bad"; fi

# --- daemon down
stop_daemon
expect "daemon down → 69, naming the socket" 69 "$SOCK" as alice elevate id -u
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()' "$SANDBOX/run/stale.sock"
expect "a stale socket file (nobody listening) → 69, naming it" 69 'stale\.sock' as alice elevate --socket "$SANDBOX/run/stale.sock" id -u
rm -f "$SANDBOX/run/stale.sock"
expect "list with the daemon down → 69" 69 "$SOCK" as alice elevate list

# --- rate limit (its own daemon config)
printf '[limits]\nrequests_per_second = 1\nburst = 2\n' >"$SANDBOX/limits.toml"
CONFIG=$SANDBOX/limits.toml start_daemon || return
codes=""
for _ in 1 2 3 4 5 6; do as alice elevate id -u >/dev/null 2>&1; codes+="$? "; done
[[ "$codes" == "0 0 "* ]] && [[ " $codes" == *" 75 "* ]] && ok "per-uid rate limit (1/s, burst 2) → 75 after the burst ($codes)" || notok "per-uid rate limit (1/s, burst 2) → 75 after the burst" "codes: $codes"
expect "a rate-limited client says so" 75 'too many requests' as alice elevate id -u
expect "other users are not limited by alice's bucket" 0 '^svc$' as carol elevate id -un
stop_daemon

# --- connection limits and timeouts
printf '[limits]\nmax_connections_per_uid = 2\nread_timeout_ms = 700\n' >"$SANDBOX/conn.toml"
CONFIG=$SANDBOX/conn.toml start_daemon || return
assert "read_timeout_ms: a silent connection is closed in time" \
  python3 - "$SOCK" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1]); t = time.time()
assert s.recv(100) == b"" and 0.5 < time.time() - t < 3, time.time() - t
PY
assert "max_connections_per_uid: the next connection is refused (75), others are not" \
  python3 - "$SOCK" "$SANDBOX/bin/elevate" <<'PY'
import pwd, subprocess, sys, time
sock, elevate = sys.argv[1], sys.argv[2]
def as_user(name, *argv):
    u = pwd.getpwnam(name)
    return ["setpriv", "--reuid", str(u.pw_uid), "--regid", str(u.pw_gid), "--clear-groups", *argv]
# bob holds two connections (root is never capped per uid: PAM checks arrive as root).
hold = ("import socket,sys,time\nh=[socket.socket(socket.AF_UNIX) for _ in range(2)]\n"
        "[s.connect(sys.argv[1]) for s in h]\nprint('ready',flush=True)\ntime.sleep(3)")
holder = subprocess.Popen(as_user("bob", "python3", "-c", hold, sock), stdout=subprocess.PIPE, text=True)
assert holder.stdout.readline().strip() == "ready"
time.sleep(0.2)
r = subprocess.run(as_user("bob", elevate, "--socket", sock, "status"), capture_output=True, text=True, timeout=10)
assert r.returncode == 75 and "too many open connections" in r.stderr, r
r = subprocess.run(as_user("carol", elevate, "--socket", sock, "status"), capture_output=True, text=True, timeout=10)
assert r.returncode == 0, r
r = subprocess.run([elevate, "--socket", sock, "status"], capture_output=True, text=True, timeout=10)
assert r.returncode == 0, ("root", r)
holder.kill(); holder.wait()
time.sleep(0.2)
r = subprocess.run(as_user("bob", elevate, "--socket", sock, "status"), capture_output=True, text=True, timeout=10)
assert r.returncode == 0, r
PY
stop_daemon

# --- env_keep is an allow-list: a variable that loads code is refused (by policy check and by
# a reload, which keeps the last good policy); a name not known to be harmless needs
# env_keep_unsafe, draws a warning, and then reaches the command.
start_daemon || return
digest=$(status_field policy_digest)
policy_file 92-env.toml <<'TOML'
[[profile]]
name = "tar-pinned"
users = ["bob"]
env_keep = ["TAR_OPTIONS"]
[[profile.command]]
path = "/usr/bin/tar"
args = ["-cf", "/dev/null", "/etc/hostname"]
TOML
expect "policy check refuses env_keep = [\"TAR_OPTIONS\"] (a tar option is a command)" 1 \
  '92-env\.toml:4:13: error: TAR_OPTIONS can never be kept: it adds options to tar' "$SANDBOX/bin/elevate" policy check "$POL/92-env.toml"
reload_daemon
[ "$(status_field last_reload.ok)" = false ] && status_field last_reload.errors | grep -q 'TAR_OPTIONS can never be kept' \
  && ok "...and so does the daemon's reload" || notok "...and so does the daemon's reload" "$(status_field last_reload)"
[ "$(status_field policy_digest)" = "$digest" ] && ok "...which keeps the last good policy" || notok "...which keeps the last good policy" "digest before: $digest, now: $(status_field policy_digest)"
capture as bob TAR_OPTIONS='--checkpoint=1 --checkpoint-action=exec=id' elevate tar -cf /dev/null /etc/hostname
[ "$RC" = 77 ] && ok "...so bob's TAR_OPTIONS never reaches tar as root" || notok "...so bob's TAR_OPTIONS never reaches tar as root" "exit $RC" "$OUT" "$ERR"
policy_file 92-env.toml <<'TOML'
[[profile]]
name = "env-proxy"
users = ["bob"]
env_keep = ["HTTP_PROXY"]
[[profile.command]]
path = "/usr/bin/env"
TOML
expect "an unknown name in env_keep is an error that says to write env_keep_unsafe" 1 \
  'HTTP_PROXY is not known to be harmless.*move it to env_keep_unsafe = \["HTTP_PROXY"\]' "$SANDBOX/bin/elevate" policy check "$POL/92-env.toml"
sed -i 's/^env_keep = /env_keep_unsafe = /' "$POL/92-env.toml"
expect "acknowledged in env_keep_unsafe it passes, with a warning" 0 \
  '92-env\.toml:4:[0-9]+: warning: env_keep_unsafe passes HTTP_PROXY unchecked .* as powerful as a free argument' \
  "$SANDBOX/bin/elevate" policy check "$POL/92-env.toml"
reload_daemon
[ "$(status_field last_reload.ok)" = true ] && status_field last_reload.warnings | grep -q 'env_keep_unsafe passes HTTP_PROXY' \
  && ok "...the daemon loads it and reports the warning" || notok "...the daemon loads it and reports the warning" "$(status_field last_reload)"
capture as bob HTTP_PROXY=http://proxy.example:3128 TAR_OPTIONS=-v elevate env
grep -qx 'HTTP_PROXY=http://proxy.example:3128' <<<"$OUT" && ok "...and passes the variable to the command" || notok "...and passes the variable to the command" "exit $RC" "$OUT" "$ERR"
expect_not "...but nothing unlisted" '^TAR_OPTIONS='
rm -f "$POL/92-env.toml"
stop_daemon

# --- missing policy dir: runs, allows nothing
POLICY_DIR=$SANDBOX/no-such-dir start_daemon || return
expect "missing policy dir → daemon runs and denies everything" 77 'denied' as alice elevate id -u
expect "...and status warns that the policy dir does not exist" 0 'no-such-dir.*does not exist' status_field last_reload.warnings
stop_daemon
