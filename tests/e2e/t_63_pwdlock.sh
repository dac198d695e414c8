# shellcheck shell=bash
# /etc/.pwd.lock held by another program (useradd, vipw, gpasswd all take it): the daemon's
# group edits wait off the decision path. Decisions and `status` answer at once, an ending is
# recorded on time, a new lease shows as granting, and both edits happen once the lock is free.

fixture_users
getent group lockgrp >/dev/null || sandbox_group lockgrp
policy_file 63-pwdlock.toml <<'TOML'
[[profile]]
name = "locked"
users = ["alice", "bob"]
access = "lease"
max_duration = "1h"
grant_groups = ["lockgrp"]

[[profile.command]]
path = "/usr/bin/id"
TOML
start_daemon || return

expect "a 3-second lease is granted" 0 '' as alice elevate request locked --for 3s --reason lock
in_group alice lockgrp && ok "...with its group" || notok "...with its group" "id -nG alice: $(id -nG alice)"

# Hold the lock as lckpwdf(3) does: a classic fcntl write lock on /etc/.pwd.lock, for 8 s.
LOCKED=$SANDBOX/pwdlock.held
rm -f "$LOCKED"
python3 - "$LOCKED" <<'PY' &
import fcntl, os, sys, time
fd = os.open("/etc/.pwd.lock", os.O_WRONLY | os.O_CREAT, 0o600)
fcntl.lockf(fd, fcntl.LOCK_EX)
open(sys.argv[1], "w").write("held")
time.sleep(8)
PY
holder=$!
wait_file "$LOCKED" 5 || notok "the lock holder started" "no $LOCKED"

t0=$(date +%s%N)
expect "a decision answers while the lock is held" 0 '' as alice elevate list
expect "status answers while the lock is held" 0 'expiry lag' as alice elevate status
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$ms" -lt 2000 ] && ok "...both within 2 s (${ms} ms)" || notok "...both within 2 s" "took ${ms} ms"

expect "bob's new lease is reported as granting, not in force" 0 'granting, 59m left' \
  as bob elevate request locked --for 1h --reason lock
expect_not "...not as active" 'active'
assert "...saying what it waits for" grep -q 'not in force yet: adding you to lockgrp waits for /etc/group' <<<"$OUT$ERR"
in_group bob lockgrp && notok "...and bob is not in the group yet" "id -nG bob: $(id -nG bob)" \
  || ok "...and bob is not in the group yet"

sleep 3.5   # alice's lease is past its deadline now
assert "alice's lease is recorded as expired on time" sh -c \
  "grep '\"event\":\"lease.expired\"' '$AUDIT' | grep -q '\"profile\":\"locked\"'"
pending=$(status_field group_edits_pending)
[ "${pending:-0}" -ge 1 ] && ok "status shows the group edits waiting for the lock ($pending)" \
  || notok "status shows the group edits waiting for the lock" "group_edits_pending=$pending"
in_group alice lockgrp && ok "...alice's membership waits for the lock" \
  || notok "...alice's membership waits for the lock" "it was removed while another program held the lock"

wait "$holder"
wait_for 8 sh -c '! id -nG alice | tr " " "\n" | grep -qx lockgrp' && ok "once the lock is free, alice's membership is removed" \
  || notok "once the lock is free, alice's membership is removed" "id -nG alice: $(id -nG alice)"
wait_for 8 in_group bob lockgrp && ok "...and bob's is added" || notok "...and bob's is added" "id -nG bob: $(id -nG bob)"
expect "...and bob's lease is active" 0 'active' as bob elevate leases
expect_not "...no longer granting" 'granting'
pending=$(status_field group_edits_pending)
[ "$pending" = 0 ] && ok "status shows no group edit pending" || notok "status shows no group edit pending" "$pending"
n=$(grep '"event":"group.removed"' "$AUDIT" | grep -c '"group":"lockgrp"')
[ "$n" = 1 ] && ok "the removal is audited once" || notok "the removal is audited once" "$n group.removed records"
expect "grpck -r accepts /etc/group" 0 '' grpck -r
as bob elevate revoke "$(as bob elevate leases --json | json_get '.[0].id' 2>/dev/null)" >/dev/null 2>&1

# A read-only /etc: the grant cannot be written. It is reported as granting with the reason,
# retried with back-off, and takes effect once /etc is writable again.
if mount -o remount,bind,ro /etc 2>/dev/null; then
  expect "with /etc read-only, a new lease is granting, with the reason" 0 'Read-only file system' \
    as alice elevate request locked --for 1h --reason ro
  expect "...and status says the last group edit failed" 0 'last group edit FAILED' as alice elevate status
  mount -o remount,bind,rw /etc
  wait_for 8 in_group alice lockgrp && ok "...and once /etc is writable the grant takes effect" \
    || notok "...and once /etc is writable the grant takes effect" "id -nG alice: $(id -nG alice)"
  expect "...and the lease is active" 0 'active' as alice elevate leases
else
  notok "remount the sandbox's /etc read-only" "mount -o remount,bind,ro /etc failed"
fi
stop_daemon
