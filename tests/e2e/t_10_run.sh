# shellcheck shell=bash
# Running commands: who may run what, with which arguments, as whom, with what environment.

# Users, the test commands and the base policy (10-test.toml): see fixture_policy in lib.sh.
fixture_policy base
install -d -m 0755 "$SANDBOX/cwd-test"
start_daemon || return

# --- allow and deny
expect "eligible user runs an allowed command as root" 0 '^0$' as alice elevate id -u
expect "the shorthand and 'run --' agree" 0 '^0$' as alice elevate run -- /usr/bin/id -u
expect "a user with no profile is denied (77)" 77 'elevate: denied' as bob elevate id -u
expect "a user with no profile is told none applies" 77 'no policy profile applies' as bob elevate id -u
expect "a denied eligible user gets a hint" 77 'elevate list' as carol elevate id -u
expect "group member gets only the group's profile" 0 '^svc$' as carol elevate id -un
expect "group member is denied other commands" 77 'denied' as carol elevate id -u
expect "a command no profile names is denied" 77 'denied' as alice elevate uptime
expect "a lease profile without a lease is denied, saying so" 77 'lease' as alice elevate -p lease-only uptime

# --- argument patterns
expect "one_of: an allowed value" 0 '^restart nginx.service$' as alice elevate echo restart nginx.service
expect "literal: another word is denied, naming the argument" 77 'argument 1 "reload"' as alice elevate echo reload nginx.service
expect "literal: a prefix of the literal is denied" 77 '' as alice elevate echo restar nginx.service
expect "one_of: another value is denied" 77 '' as alice elevate echo restart apache.service
expect "one_of: a value is matched whole, not as a prefix" 77 '' as alice elevate echo restart nginx.service.bak
expect "too few arguments are denied" 77 '' as alice elevate echo restart
expect "extra arguments are denied (rest = deny)" 77 '' as alice elevate echo restart nginx.service now
expect "regex: whole-argument match" 0 'since --since=2026-11-22' as alice elevate echo since --since=2026-11-22
expect "regex is anchored at the start" 77 '' as alice elevate echo since x--since=1
expect "regex is anchored at the end" 77 '' as alice elevate echo since "--since=1;id"
expect "regex is anchored at the end even before a newline" 77 '' as alice elevate echo since $'--since=1\nx'
expect "no args in the rule = no arguments allowed" 77 '' as alice elevate false x
expect "rest = any still requires the listed arguments" 77 '' as alice elevate printf '%d|' 1
expect "rest = any allows further arguments" 0 '^a\|b\|c\|$' as alice elevate printf '%s|' a b c
expect "empty argument is not a wildcard" 77 '' as alice elevate echo "" nginx.service

# --- run_as
expect "first matching profile decides run_as" 0 '^root$' as alice elevate id -un
expect "-u picks the profile running as that user" 0 '^svc$' as alice elevate -u svc id -un
expect "-u with a user no profile runs as is denied" 77 'denied' as alice elevate -u bob id -un
expect "-p restricts to one profile" 0 '^svc$' as alice elevate -p as-svc id -un
expect "run_as gets the target's groups, not the caller's" 0 '^svc$' as alice elevate -u svc id -gn

# --- stdin, stdout, exit status, signals
capture as_user alice env ELEVATE_SOCKET="$SOCK" PATH="$SANDBOX/bin:/usr/bin:/bin" sh -c 'echo hello-through-stdin | elevate cat'
[ "$OUT" = hello-through-stdin ] && ok "stdin is the caller's stdin" || notok "stdin is the caller's stdin" "got: $OUT $ERR"
as_user alice env ELEVATE_SOCKET="$SOCK" PATH="$SANDBOX/bin:/usr/bin:/bin" sh -c "elevate id -u > /home/alice/out.txt"
[ "$(cat /home/alice/out.txt 2>/dev/null)" = 0 ] && ok "stdout is the caller's stdout (a file)" || notok "stdout is the caller's stdout (a file)" "out.txt: $(cat /home/alice/out.txt 2>&1)"
head -c 3000000 /dev/urandom >"$SANDBOX/big.bin"; chmod 0644 "$SANDBOX/big.bin"
want=$(sha256sum <"$SANDBOX/big.bin"); capture as_sh alice "elevate cat <$SANDBOX/big.bin | sha256sum"
[ "$OUT" = "$want" ] && ok "3 MB of binary data pass through stdin and stdout unchanged" || notok "3 MB of binary data pass through stdin and stdout unchanged" "$OUT $ERR"
expect "stdin from /dev/null: the command sees EOF" 0 '' as_sh alice 'elevate cat </dev/null'
capture as alice elevate id nosuchuser
[ "$RC" = 1 ] && [ -z "$OUT" ] && grep -q 'nosuchuser' <<<"$ERR" && ok "the command's stderr is the caller's stderr" || notok "the command's stderr is the caller's stderr" "rc=$RC out=$OUT err=$ERR"
expect "exit status of false is 1" 1 '' as alice elevate false
expect "exit status is passed through (42)" 42 '' as alice elevate "$CMDS/exit-with" 42
expect "killed by SIGTERM gives 143" 143 '' as alice elevate "$CMDS/selfkill"
rm -f "$SANDBOX/run/sleeper.pid"
as alice elevate "$CMDS/sleeper" 30 & job=$!
for _ in $(seq 100); do [ -s "$SANDBOX/run/sleeper.pid" ] && break; sleep 0.05; done
cmdpid=$(cat "$SANDBOX/run/sleeper.pid" 2>/dev/null)
assert "run.allowed is on disk while the command runs" \
  python3 - "$AUDIT" "$cmdpid" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
last = "the last two records: %s" % recs[-2:]
assert any(r["event"] == "run.allowed" and r["argv"][0].endswith("/sleeper") for r in recs), "no run.allowed for sleeper; " + last
assert not any(r["event"] == "run.exit" and r.get("pid") == int(sys.argv[2]) for r in recs), "sleeper's run.exit is already there; " + last
PY
client=$(pgrep -u alice -x elevate)
kill -INT "$client"; wait "$job"; rc=$?
[ "$rc" = 130 ] && ok "SIGINT to the client reaches the command (130)" || notok "SIGINT to the client reaches the command (130)" "rc=$rc"
wait_gone "$cmdpid" 5 && ok "...and the command is gone" || notok "...and the command is gone" "pid $cmdpid"
rm -f "$SANDBOX/run/usr1.pid"
as alice elevate "$CMDS/usr1" 2>/dev/null & job=$!   # the script's sh reports its sleep's signal
wait_file "$SANDBOX/run/usr1.pid" 5
kill -USR1 "$(pgrep -u alice -x elevate)"; wait "$job"; rc=$?
[ "$rc" = 42 ] && ok "SIGUSR1 is forwarded to a command that traps it (exit 42)" || notok "SIGUSR1 is forwarded to a command that traps it (exit 42)" "rc=$rc"

# --- environment
capture as alice LD_PRELOAD=/tmp/evil.so LD_LIBRARY_PATH=/tmp PATH=/tmp:/usr/bin BASH_ENV=/tmp/x \
  PYTHONPATH=/tmp KEEPME=kept TERM=../../tmp/x LANG=C.UTF-8 UNLISTED=1 LC_ALL=%n%n LC_TIME=en_GB.UTF-8 \
  TZ=/etc/shadow COLORTERM=truecolor HOME=/home/alice ELEVATE_USER=root "$SANDBOX/bin/elevate" env
expect_not "LD_PRELOAD and LD_LIBRARY_PATH are not passed" '^LD_'
expect_not "BASH_ENV and PYTHONPATH are not passed" '^(BASH_ENV|PYTHONPATH)='
expect_not "unlisted variables are not passed" '^UNLISTED='
expect_not "a TERM with a path in it is dropped" '^TERM='
expect_not "an LC_ variable with a % in it is dropped" '^LC_ALL='
expect_not "a TZ naming a file outside zoneinfo is dropped" '^TZ='
grep -qx 'LC_TIME=en_GB.UTF-8' <<<"$OUT" && grep -qx 'COLORTERM=truecolor' <<<"$OUT" && ok "clean LC_* and COLORTERM pass" || notok "clean LC_* and COLORTERM pass" "$OUT"
[ "$(grep -c '^PATH=' <<<"$OUT")" = 1 ] && ok "the command gets exactly one PATH" || notok "the command gets exactly one PATH" "$OUT"
grep -qx 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' <<<"$OUT" && ok "PATH is the fixed secure path" || notok "PATH is the fixed secure path" "$OUT"
grep -qx 'KEEPME=kept' <<<"$OUT" && ok "env_keep passes the named variable" || notok "env_keep passes the named variable" "$OUT"
grep -qx 'LANG=C.UTF-8' <<<"$OUT" && ok "LANG is passed through" || notok "LANG is passed through" "$OUT"
grep -qx 'ELEVATE_USER=alice' <<<"$OUT" && grep -qx "ELEVATE_UID=$(id -u alice)" <<<"$OUT" && grep -qx 'ELEVATE_PROFILE=basic' <<<"$OUT" \
  && ok "ELEVATE_USER/UID/PROFILE are set" || notok "ELEVATE_USER/UID/PROFILE are set" "$OUT"
grep -qx 'HOME=/root' <<<"$OUT" && grep -qx 'USER=root' <<<"$OUT" && grep -qx 'LOGNAME=root' <<<"$OUT" \
  && grep -qx "SHELL=$(getent passwd root | cut -d: -f7)" <<<"$OUT" \
  && ok "HOME, USER, LOGNAME and SHELL are the target's (the caller's HOME is not passed)" || notok "HOME, USER, LOGNAME and SHELL are the target's (the caller's HOME is not passed)" "$OUT"
[ "$(grep -c '^ELEVATE_USER=' <<<"$OUT")" = 1 ] && ok "a caller cannot set ELEVATE_USER itself" || notok "a caller cannot set ELEVATE_USER itself" "$OUT"

# --- command resolution
install -d -m 0755 -o alice /home/alice/evil
printf '#!/bin/sh\necho EVIL\n' >/home/alice/evil/id; chown alice /home/alice/evil/id; chmod 0755 /home/alice/evil/id
expect "a bare name ignores the caller's PATH" 0 '^0$' as alice PATH=/home/alice/evil:/usr/bin "$SANDBOX/bin/elevate" id -u
expect "a symlinked rule path matches the real binary" 0 '^root$' as alice elevate whoami
expect "...and the link itself" 0 '^root$' as alice elevate "$CMDS/whoami-link"
expect "a path through a symlinked directory matches the real path's rule" 0 '^0$' as alice elevate "$CMDS/bin-link/id" -u
expect "a bare name that is nowhere in the secure PATH is denied, saying so" 77 'not found' as alice elevate no-such-command-xyz

# --- working directory
capture as_user alice env ELEVATE_SOCKET="$SOCK" PATH="$SANDBOX/bin:/usr/bin:/bin" sh -c "cd $SANDBOX/cwd-test && elevate pwd"
[ "$OUT" = "$SANDBOX/cwd-test" ] && ok "the command runs in the caller's cwd" || notok "the command runs in the caller's cwd" "got: $OUT $ERR"
expect "a cwd the target user cannot enter fails clearly (126)" 126 'working directory' \
  as_user alice env ELEVATE_SOCKET="$SOCK" PATH="$SANDBOX/bin:/usr/bin:/bin" sh -c 'cd /home/alice && elevate -u svc id -un'

# --- executable checks (six refusals, counted in the audit log from here on)
refused_before=$(grep -c '"event":"run.refused"' "$AUDIT")
expect "a world-writable executable is refused (126)" 126 'writable' as alice elevate "$CMDS/ww-script"
expect "an executable in a group-writable dir is refused (126)" 126 'gw: writable' as alice elevate "$CMDS/gw/script"
expect "an executable in a world-writable dir is refused (126)" 126 'ow: writable' as alice elevate "$CMDS/ow/script"
expect "an executable in a dir not owned by root is refused (126)" 126 'bobdir: owned by uid' as alice elevate "$CMDS/bobdir/script"
expect "an executable not owned by root is refused (126)" 126 'not root' as alice elevate "$CMDS/ok/bob-owned"
expect "a group-writable executable is refused (126)" 126 'writable' as alice elevate "$CMDS/ok/gw-file"
expect "...while its root-owned 0755 neighbour runs" 0 '^fine$' as alice elevate "$CMDS/ok/fine"
refused=$(( $(grep -c '"event":"run.refused"' "$AUDIT") - refused_before ))
[ "$refused" = 6 ] && ok "each refusal is audited as run.refused" || notok "each refusal is audited as run.refused" "$refused new run.refused records, want 6"

# --- many at once
pids=(); for _ in $(seq 16); do as alice elevate id -u >/dev/null 2>&1 & pids+=($!); done
fails=0; for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
[ "$fails" = 0 ] && ok "16 concurrent runs all succeed" || notok "16 concurrent runs all succeed" "$fails failed"
