# shellcheck shell=bash
# A sandbox for tests and benchmarks that need root, real users and a real /etc, without
# touching the machine. Used by tests/e2e/run.sh and tests/bench/*.sh.
#
#   source tests/lib/sandbox.sh
#   sandbox_enter "$0" "$@"     # re-execs the script under `unshare --mount --propagation private`
#   sandbox_setup               # (in the namespace) the mounts below
#
# sandbox_setup puts a tmpfs on /mnt (root-owned 0755, so the daemon's executable checks pass
# for commands placed there — /tmp is world-writable and would be refused; /mnt exists on
# every system, so no mount point has to be created on the machine), copies /etc into it and
# binds the copy over /etc (the directory, not single files: useradd renames files, and
# rename() onto a bind-mounted file fails with EBUSY), puts a tmpfs on /home, and gives
# /run/elevate (the daemon's default socket dir) a private tmpfs, so nothing in the sandbox can
# reach an elevated the machine itself runs, and hides /dev/log (syslog) behind /dev/null.
# Everything disappears with the namespace.
#
#   $SANDBOX        /mnt: scratch space, root-owned all the way up
#   $SANDBOX/bin    elevate binaries copied here (readable by test users wherever the checkout is)
#   sandbox_user NAME [GROUP...]   create a user (home on the tmpfs) in the given groups
#   sandbox_group NAME             create a group
#   as_user NAME CMD...            run CMD as NAME with a clean environment and its groups
#
# Daemon control (any number of daemons; each call names its binary dir and socket):
#   sandbox_daemon_start BIN_DIR SOCKET LOG [ELEVATED FLAGS...]   start in the background, set
#                                  SANDBOX_DPID, wait until `elevate status` answers on SOCKET
#   sandbox_daemon_wait BIN_DIR SOCKET PID [SECONDS]              wait until SOCKET answers
#   sandbox_daemon_stop PID        SIGTERM, wait; returns the daemon's exit status (SIGKILL and
#                                  status 124 if it has not exited within 10 s)
#   sandbox_daemon_reload BIN_DIR SOCKET PID                      SIGHUP, wait for the reload

# True when this shell runs in a mount namespace other than the machine's (pid 1's) or other
# than the one sandbox_enter left.
sandbox_in_private_ns() {
  local me; me=$(readlink /proc/self/ns/mnt)
  if [ -n "${SANDBOX_PARENT_NS:-}" ]; then [ "$me" != "$SANDBOX_PARENT_NS" ]; return; fi
  [ "$me" != "$(readlink /proc/1/ns/mnt)" ]
}

# sandbox_enter SCRIPT ARGS...: unless already inside, re-exec SCRIPT (with bash) in a new
# private mount namespace. Returns only when already inside.
sandbox_enter() {
  if [ -n "${SANDBOX_PARENT_NS:-}" ] && sandbox_in_private_ns; then return 0; fi
  [ "$(id -u)" -eq 0 ] || { echo "sandbox: needs root (it mounts and creates users)" >&2; return 1; }
  command -v unshare >/dev/null || { echo "sandbox: missing unshare: apt-get install util-linux" >&2; return 1; }
  SANDBOX_PARENT_NS=$(readlink /proc/self/ns/mnt)
  export SANDBOX_PARENT_NS
  exec unshare --mount --propagation private -- bash "$@"
}

sandbox_setup() {
  [ "$(id -u)" -eq 0 ] || { echo "sandbox: needs root" >&2; return 1; }
  if ! sandbox_in_private_ns; then
    echo "sandbox: refusing to mount outside a private mount namespace (sandbox_enter, or unshare --mount --propagation private)" >&2
    return 1
  fi
  # Belt and braces: whatever the caller did, nothing mounted from here on propagates out.
  mount --make-rprivate / || { echo "sandbox: cannot make the mounts private" >&2; return 1; }
  SANDBOX=/mnt
  mount -t tmpfs -o mode=0755,uid=0,gid=0 elevate-sandbox "$SANDBOX" || return 1
  cp -a /etc "$SANDBOX/etc" || return 1
  mount --bind "$SANDBOX/etc" /etc || return 1
  mount -t tmpfs -o mode=0755 elevate-home /home || return 1
  install -d -m 0755 "$SANDBOX/bin"
  sandbox_private_run_elevate || return 1
  # The daemon also logs to syslog when /dev/log exists: keep test runs out of the machine's
  # logs (SANDBOX_KEEP_SYSLOG=1 to measure with syslog, e.g. in a benchmark).
  if [ -e /dev/log ] && [ -z "${SANDBOX_KEEP_SYSLOG:-}" ]; then mount --bind /dev/null /dev/log || return 1; fi
  export SANDBOX
}

# A private, empty tmpfs on /run/elevate. If the directory does not exist on the machine, an
# overlay over /run (upper layer on the sandbox tmpfs) creates it without touching the machine.
sandbox_private_run_elevate() {
  if [ ! -d /run/elevate ]; then
    install -d -m 0755 "$SANDBOX/.run-upper" "$SANDBOX/.run-work"
    if ! mount -t overlay -o "lowerdir=/run,upperdir=$SANDBOX/.run-upper,workdir=$SANDBOX/.run-work" \
         elevate-run /run 2>/dev/null; then
      echo "sandbox: /run/elevate does not exist and /run cannot be overlaid (no overlayfs?);" \
           "cannot give the daemon's default socket dir a private tmpfs" >&2
      return 1
    fi
    install -d -m 0755 /run/elevate
  fi
  mount -t tmpfs -o mode=0755,uid=0,gid=0 elevate-run-elevate /run/elevate
}

# Copy the binaries from $1 into $SANDBOX/bin so test users can run them even when the
# checkout lives under a directory they cannot enter.
sandbox_install_bins() {
  local f
  for f in "$@"; do install -m 0755 "$f" "$SANDBOX/bin/"; done
}

sandbox_group() {
  getent group "$1" >/dev/null || groupadd "$1"
}

sandbox_user() {
  local name=$1; shift
  local g
  for g in "$@"; do sandbox_group "$g"; done
  useradd --create-home --shell /bin/bash --user-group ${1:+--groups "$(IFS=,; echo "$*")"} "$name"
  chmod 0700 "/home/$name"
}

as_user() {
  local name=$1; shift
  setpriv --reuid="$name" --regid="$(id -g "$name")" --init-groups --reset-env -- "$@"
}

# --- daemon control -----------------------------------------------------------------------

sandbox_daemon_start() { # BIN_DIR SOCKET LOG [FLAGS...]
  local bin=$1 sock=$2 log=$3; shift 3
  "$bin/elevated" "$@" >>"$log" 2>&1 &
  SANDBOX_DPID=$!
  if ! sandbox_daemon_wait "$bin" "$sock" "$SANDBOX_DPID" 10; then
    echo "sandbox: elevated did not answer on $sock; its log:" >&2
    tail -20 "$log" >&2
    kill -KILL "$SANDBOX_DPID" 2>/dev/null; wait "$SANDBOX_DPID" 2>/dev/null
    SANDBOX_DPID=
    return 1
  fi
}

sandbox_daemon_wait() { # BIN_DIR SOCKET PID [SECONDS]
  local i
  for i in $(seq $((${4:-10} * 20))); do
    "$1/elevate" --socket "$2" status >/dev/null 2>&1 && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

sandbox_daemon_stop() { # PID
  local pid=$1 i rc
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "sandbox: elevated (pid $pid) ignored SIGTERM for 10 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    return 124
  fi
  wait "$pid" 2>/dev/null; rc=$?
  return "$rc"
}

# The reload counts once `status` reports a last_reload time other than the one before.
sandbox_daemon_reload() { # BIN_DIR SOCKET PID
  local before after i
  before=$(sandbox_status_field "$1" "$2" last_reload.at)
  sleep 0.01
  kill -HUP "$3" || return 1
  for i in $(seq 200); do
    after=$(sandbox_status_field "$1" "$2" last_reload.at)
    [ -n "$after" ] && [ "$after" != "$before" ] && return 0
    sleep 0.05
  done
  return 1
}

# sandbox_status_field BIN_DIR SOCKET a.b: one field of `elevate status --json`.
sandbox_status_field() {
  "$1/elevate" --socket "$2" status --json 2>/dev/null |
    python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[k]
print(json.dumps(v) if isinstance(v,(list,dict,bool)) else v)' "$3" 2>/dev/null
}
