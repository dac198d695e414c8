# shellcheck shell=bash
# The descriptors a run passes are checked as the caller: a working directory the caller cannot
# enter (an O_PATH descriptor to /root) and an O_PATH standard stream are refused; a directory
# opened for reading, and one the caller may only search (passed O_PATH, as the CLI does), work.

fixture_policy base   # alice may run /usr/bin/pwd as root (basic)
start_daemon || return

# fds_as USER HOW CWD [STDIN]: helpers/run_fds.py as USER (runs /usr/bin/pwd).
fds_as() { local u=$1; shift; as_user "$u" /usr/bin/timeout -k 5 30 /usr/bin/python3 "$here/helpers/run_fds.py" "$SOCK" "$@"; }

expect "an O_PATH descriptor to /root as the cwd is refused" 0 \
  '"kind": "bad_request".*you may not enter the working directory' fds_as alice opath /root
expect_not "...and nothing ran" '"type": "started"'
grep -q '"event":"run.allowed".*"cwd":"/root"' "$AUDIT" && notok "...and no run in /root is audited" "$(grep '"cwd":"/root"' "$AUDIT" | tail -1)" || ok "...and no run in /root is audited"

expect "a cwd opened for reading works" 0 'output: /tmp$' fds_as alice read /tmp
grep -q '"event":"run.allowed".*"cwd":"/tmp"' "$AUDIT" && ok "...audited with cwd /tmp" || notok "...audited with cwd /tmp" "$(grep run.allowed "$AUDIT" | tail -1)"

# A directory alice may search but not list: the CLI passes it O_PATH; its mode lets her in.
install -d -m 0711 -o alice "$SANDBOX/searchonly"
install -d -m 0711 -o root "$SANDBOX/searchonly/inner"
expect "an O_PATH cwd the caller may search (0711) works" 0 "output: $SANDBOX/searchonly/inner\$" fds_as alice opath "$SANDBOX/searchonly/inner"
expect "elevate run from a directory one may only search" 0 "^$SANDBOX/searchonly/inner\$" as_sh alice "cd $SANDBOX/searchonly/inner && elevate pwd"
install -d -m 0700 -o root "$SANDBOX/rootonly"
expect "an O_PATH cwd mode 0700 root is refused" 0 'you may not enter the working directory' fds_as alice opath "$SANDBOX/rootonly"

expect "an O_PATH standard stream is refused" 0 '"kind": "bad_request".*standard stream descriptor is an O_PATH' fds_as alice read /tmp /etc/shadow
expect_not "...and nothing ran" '"type": "started"'
expect "elevate run still works" 0 '^/' as alice elevate pwd

stop_daemon
