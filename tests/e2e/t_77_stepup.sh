# shellcheck shell=bash
# Step-up authentication: the daemon is the PAM application (service `elevate`) and the
# conversation reaches the requester's terminal (a real pseudo-terminal here).

fixture_users

install -m 0644 "$repo/packaging/pam.d/elevate" /etc/pam.d/elevate
echo 'alice:correct horse battery' | chpasswd
mkcmd stepup-cmd 0755 <<'SH'
#!/bin/sh
echo stepped-up-ok
SH
mkcmd stepup-cached 0755 <<'SH'
#!/bin/sh
echo cached-ok
SH
policy_file 77-stepup.toml <<TOML
[[profile]]
name = "stepup"
users = ["alice"]
authenticate = true
[[profile.command]]
path = "$CMDS/stepup-cmd"

[[profile]]
name = "stepup-cached"
users = ["alice"]
authenticate = true
auth_cache = "5m"
[[profile.command]]
path = "$CMDS/stepup-cached"

[[profile]]
name = "stepup-lease"
users = ["alice"]
access = "lease"
max_duration = "1h"
authenticate = true
TOML
start_daemon || return

# on_pty USER ANSWER SHELL-CODE: run SHELL-CODE as USER on a fresh pseudo-terminal (its own
# session), answering every "Password:" prompt with ANSWER; prints the transcript, then RC=N.
cat >"$SANDBOX/on-pty.py" <<'PY'
import os, pty, sys, time, select
user, answer, code = sys.argv[1], sys.argv[2], sys.argv[3]
env = {"PATH": os.environ["PATH"], "ELEVATE_SOCKET": os.environ["SOCK"], "TERM": "dumb"}
pid, fd = pty.fork()
if pid == 0:
    os.execvpe("setpriv", ["setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups", "--", "sh", "-c", code], env)
out = b""; answered = 0; deadline = time.time() + 25
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.2)
    if fd in r:
        try: chunk = os.read(fd, 4096)
        except OSError: break
        if not chunk: break
        out += chunk
        if out.count(b"assword") > answered:
            answered += 1
            os.write(fd, answer.encode() + b"\n")
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
print("\nPROMPTS=%d RC=%d" % (answered, os.waitstatus_to_exitcode(status)))
PY
on_pty() { SOCK=$SOCK PATH="$SANDBOX/bin:/usr/bin:/bin" timeout 40 python3 "$SANDBOX/on-pty.py" "$@"; }

capture on_pty alice 'correct horse battery' "elevate $CMDS/stepup-cmd"
grep -q 'stepped-up-ok' <<<"$OUT" && grep -q 'RC=0' <<<"$OUT" && grep -q 'PROMPTS=1' <<<"$OUT" \
  && ok "right password on the terminal: the command runs" || notok "right password on the terminal: the command runs" "$OUT"
grep -q 'correct horse' <<<"$OUT" && notok "the password is not echoed" "$OUT" || ok "the password is not echoed"
capture on_pty alice 'wrong password' "elevate $CMDS/stepup-cmd"
! grep -q 'stepped-up-ok' <<<"$OUT" && grep -q 'RC=77' <<<"$OUT" && grep -qi 'authentication failed' <<<"$OUT" \
  && ok "wrong password: denied (77), nothing runs" || notok "wrong password: denied (77), nothing runs" "$OUT"
capture on_pty alice 'correct horse battery' "elevate $CMDS/stepup-cmd; elevate $CMDS/stepup-cmd"
[ "$(grep -c 'stepped-up-ok' <<<"$OUT")" = 2 ] && grep -q 'PROMPTS=2' <<<"$OUT" \
  && ok "without auth_cache every run asks again" || notok "without auth_cache every run asks again" "$OUT"
capture on_pty alice 'correct horse battery' "elevate $CMDS/stepup-cached; elevate $CMDS/stepup-cached"
[ "$(grep -c 'cached-ok' <<<"$OUT")" = 2 ] && grep -q 'PROMPTS=1' <<<"$OUT" \
  && ok "auth_cache: a second run on the same terminal and session does not ask" || notok "auth_cache: a second run on the same terminal and session does not ask" "$OUT"
capture on_pty alice 'correct horse battery' "elevate $CMDS/stepup-cached"
grep -q 'PROMPTS=1' <<<"$OUT" && grep -q 'cached-ok' <<<"$OUT" \
  && ok "...but another terminal session is asked" || notok "...but another terminal session is asked" "$OUT"
expect "no terminal: cannot authenticate, denied" 77 'authentication failed' as alice setsid -w elevate "$CMDS/stepup-cmd"
capture on_pty alice 'correct horse battery' "elevate request stepup-lease --for 5m --reason stepup"
grep -q 'RC=0' <<<"$OUT" && grep -q 'PROMPTS=1' <<<"$OUT" && grep -qi 'active' <<<"$OUT" \
  && ok "a lease request for an authenticate profile asks, then activates" || notok "a lease request for an authenticate profile asks, then activates" "$OUT"
assert "auth.succeeded and auth.failed are audited (requester, profile, via), with no secret" \
  python3 - "$AUDIT" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
assert "correct horse" not in text and "wrong password" not in text, "a secret reached the audit log"
recs = [json.loads(l) for l in text.splitlines()]
ok = [r for r in recs if r["event"] == "auth.succeeded"]
bad = [r for r in recs if r["event"] == "auth.failed"]
assert ok and bad, [r["event"] for r in recs[-8:]]
assert ok[0]["requester"]["user"] == "alice" and ok[0]["profile"] == "stepup" and ok[0]["via"] == "run" and ok[0]["service"] == "elevate", ok[0]
assert bad[0]["error"] and bad[0]["requester"]["tty"].startswith("/dev/pts/"), bad[0]
assert any(r["via"] == "request" and r["profile"] == "stepup-lease" for r in ok), ok
PY
grep -q "correct horse" "$DLOG" && notok "no secret in the daemon log" || ok "no secret in the daemon log"
