# shellcheck shell=bash
# What must never happen: orphaned root processes, a daemon killed by bad input, setuid bits.

start_daemon || return

# --- client killed: the command's process group is ended
rm -f "$SANDBOX/run/sleeper.pid"
as alice elevate "$CMDS/sleeper" 300 & job=$!
for _ in $(seq 100); do [ -s "$SANDBOX/run/sleeper.pid" ] && break; sleep 0.05; done
cmdpid=$(cat "$SANDBOX/run/sleeper.pid" 2>/dev/null)
kill -KILL "$(pgrep -u alice -x elevate)"; wait "$job" 2>/dev/null
if [ -n "$cmdpid" ] && wait_gone "$cmdpid" 5; then ok "client killed with SIGKILL → its root command is terminated"
else notok "client killed with SIGKILL → its root command is terminated" "pid $cmdpid still alive"; kill -KILL "$cmdpid" 2>/dev/null; fi
grep -q '"ended_by":"client_disconnected"' "$AUDIT" && ok "the audit log says why it ended" || notok "the audit log says why it ended"

# --- hostile input over the socket: errors, never a dead daemon
python3 - "$SOCK" <<'PY' && ok "malformed frames get an error or a closed connection" || notok "malformed frames get an error or a closed connection"
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
python3 - "$SOCK" <<'PY' && ok "an idle half-open connection does not block others" || notok "an idle half-open connection does not block others"
import socket, subprocess, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"\x00\x00\x01\x00{")  # never finished
r = subprocess.run(["/mnt/bin/elevate", "--socket", sys.argv[1], "status"], capture_output=True, timeout=10)
assert r.returncode == 0, r
PY

# --- nothing setuid or setgid, anywhere in what we build
if [ -z "$(find "$ELEVATE_BIN_DIR" "$SANDBOX/bin" -maxdepth 1 -type f -perm /6000)" ]; then ok "no setuid/setgid binaries"
else notok "no setuid/setgid binaries" "$(find "$ELEVATE_BIN_DIR" "$SANDBOX/bin" -maxdepth 1 -type f -perm /6000)"; fi

# --- daemon down
stop_daemon
expect "daemon down → 69, naming the socket" 69 "$SOCK" as alice elevate id -u

# --- rate limit (its own daemon config)
printf '[limits]\nrequests_per_second = 1\nburst = 3\n' >"$SANDBOX/limits.toml"
CONFIG=$SANDBOX/limits.toml start_daemon || return
codes=""
for _ in 1 2 3 4 5 6; do as alice elevate id -u >/dev/null 2>&1; codes+="$? "; done
[[ " $codes" == *" 75 "* ]] && [[ "$codes" == 0* ]] && ok "per-uid rate limit → 75 after the burst ($codes)" || notok "per-uid rate limit → 75 after the burst" "codes: $codes"
expect "other users are not limited by alice's bucket" 0 '^svc$' as carol elevate id -un
stop_daemon

# --- missing policy dir: runs, allows nothing
POLICY_DIR=$SANDBOX/no-such-dir start_daemon || return
expect "missing policy dir → daemon runs and denies everything" 77 'denied' as alice elevate id -u
stop_daemon
