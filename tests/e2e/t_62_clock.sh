# shellcheck shell=bash
# Time you can trust: a lease ends after its duration on the boot clock, whatever the wall
# clock does. The daemon runs under libfaketime (Debian's faketime), whose offset file the test
# rewrites to move the daemon's wall clock; its monotonic and boot clocks stay real.

fixture_users
getent group clockgrp >/dev/null || sandbox_group clockgrp
policy_file 62-clock.toml <<'TOML'
[[profile]]
name = "clock"
users = ["alice"]
access = "lease"
max_duration = "1h"
grant_groups = ["clockgrp"]

[[profile.command]]
path = "/usr/bin/id"
TOML

FT=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
if [ ! -r "$FT" ]; then
  notok "libfaketime is installed (apt-get install faketime)" "$FT is missing"
  return
fi
echo "+0" >"$SANDBOX/faketime"
LD_PRELOAD=$FT FAKETIME_TIMESTAMP_FILE=$SANDBOX/faketime FAKETIME_NO_CACHE=1 \
  FAKETIME_DONT_FAKE_MONOTONIC=1 start_daemon || return

expect "a 3-second lease is granted" 0 '' as alice elevate request clock --for 3s --reason clock
in_group alice clockgrp && ok "...with its group" || notok "...with its group" "id -nG alice: $(id -nG alice)"
echo "-1h" >"$SANDBOX/faketime"   # the daemon's wall clock goes back an hour
reload_daemon
back=$(status_field last_reload.at)
behind=$(( $(date +%s) - $(date -d "$back" +%s) ))
[ "$behind" -gt 3000 ] && ok "the daemon's wall clock now reads an hour ago" \
  || notok "the daemon's wall clock now reads an hour ago" "last_reload.at $back is ${behind}s behind"
wait_for 6 sh -c '! id -nG alice | tr " " "\n" | grep -qx clockgrp' && ok "moving the wall clock back does not stretch a 3-second lease" \
  || notok "moving the wall clock back does not stretch a 3-second lease" "id -nG alice: $(id -nG alice)"
expect "...which the daemon reports as expired" 0 '' sh -c \
  "grep '\"event\":\"lease.expired\"' '$AUDIT' | tail -1 | grep -q '\"profile\":\"clock\"'"
stop_daemon
