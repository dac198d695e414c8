# shellcheck shell=bash
# The end-of-lease set-gid sweep (issue 11): a holder who copies a program during the lease
# and makes it set-gid with the lease's group keeps nothing once the lease ends.

fixture_user hank
sandbox_group vault
# Readable by the group alone: what the copy would keep reading.
install -d -m 0750 -o root -g vault "$SANDBOX/vault"
echo "the vault's secret" >"$SANDBOX/vault/secret"
chown root:vault "$SANDBOX/vault/secret"; chmod 0640 "$SANDBOX/vault/secret"

policy_file 66-setgid.toml <<'TOML'
[[profile]]
name = "vault"
users = ["hank"]
access = "lease"
max_duration = "1h"
grant_groups = ["vault"]

[[profile.command]]
path = "/usr/bin/uptime"
TOML
# /home is the sandbox's own tmpfs, mounted without nosuid, so set-gid bits work there.
printf 'setgid_scan = ["/home", "%%h"]\n[limits]\nkill_grace_ms = 500\n' >"$SANDBOX/setgid.toml"
CONFIG=$SANDBOX/setgid.toml start_daemon || return

mode_of() { stat -c %a "$1" 2>/dev/null; }
# reads_secret FILE: FILE, run as hank with no supplementary groups at all (only a set-gid
# bit can give it the vault group), reads the vault's file.
reads_secret() {
  setpriv --reuid=hank --regid="$(id -g hank)" --clear-groups --reset-env -- "$1" "$SANDBOX/vault/secret" >/dev/null 2>&1
}

capture as hank elevate request vault --for 10m --reason "issue 11"
vid=$(head -1 <<<"$OUT")
in_group hank vault && ok "the lease grants vault" || notok "the lease grants vault" "$OUT $ERR"

# The attack, with the lease's group in hand (elevate with), plus one copy deeper down.
assert "during the lease, the holder makes set-gid copies of cat with the lease's group" \
  as hank elevate with "$vid" -- sh -c 'cp /usr/bin/cat ~/gcat && chgrp vault ~/gcat && chmod 2755 ~/gcat &&
    mkdir -p ~/a/b && cp ~/gcat ~/a/b/gcat2 && chgrp vault ~/a/b/gcat2 && chmod 2711 ~/a/b/gcat2'
[ "$(mode_of /home/hank/gcat)" = 2755 ] && [ "$(mode_of /home/hank/a/b/gcat2)" = 2711 ] \
  && ok "...the copies are set-gid" || notok "...the copies are set-gid" "$(ls -l /home/hank/gcat /home/hank/a/b/gcat2 2>&1)"
reads_secret /home/hank/gcat && ok "...and read the group's file without the membership" \
  || notok "...and read the group's file without the membership" "$(ls -l /home/hank/gcat)"
# Someone else's set-gid tool with the same group: not the holder's to lose.
cp /usr/bin/cat /home/vault-tool && chgrp vault /home/vault-tool && chmod 2755 /home/vault-tool

expect "status warns that /home honours set-id bits" 0 'warning: /home is not mounted nosuid: a lease.s group can be kept in a set-gid file there until the end-of-lease sweep strips it' \
  "$SANDBOX/bin/elevate" --socket "$SOCK" status
expect "policy check warns the same, offline" 0 'warning: /home is not mounted nosuid' \
  "$SANDBOX/bin/elevate" --config "$SANDBOX/setgid.toml" policy check "$POL/66-setgid.toml"

expect "the holder revokes the lease" 0 '' as hank elevate revoke "$vid"
if wait_for 10 sh -c '[ "$(stat -c %a /home/hank/gcat)" = 755 ] && [ "$(stat -c %a /home/hank/a/b/gcat2)" = 711 ]'; then
  ok "after revocation the copies have no set-gid bit"
else
  notok "after revocation the copies have no set-gid bit" "$(ls -l /home/hank/gcat /home/hank/a/b/gcat2 2>&1)"
fi
grep '"event":"setgid.stripped"' "$AUDIT" | grep -q '"path":"/home/hank/gcat"' \
  && ok "a setgid.stripped record names the copy" || notok "a setgid.stripped record names the copy" "$(grep '"event":"setgid' "$AUDIT")"
grep '"event":"setgid.stripped"' "$AUDIT" | grep '"path":"/home/hank/gcat"' | grep -q '"mode_before":"2755","mode_after":"0755"\|"mode_after":"0755".*"mode_before":"2755"' \
  && ok "...with the mode before and after" || notok "...with the mode before and after" "$(grep '"event":"setgid.stripped"' "$AUDIT")"
in_group hank vault && notok "the membership is gone" "$(id -nG hank)" || ok "the membership is gone"
reads_secret /home/hank/gcat && notok "the copy no longer reads the group's file" "$(ls -l /home/hank/gcat)" \
  || ok "the copy no longer reads the group's file"
[ "$(mode_of /home/vault-tool)" = 2755 ] && ok "a set-gid file the holder does not own is left alone" \
  || notok "a set-gid file the holder does not own is left alone" "$(ls -l /home/vault-tool)"
grep -q '"event":"setgid.scan"' "$AUDIT" && notok "a complete walk writes no setgid.scan record" "$(grep '"event":"setgid.scan"' "$AUDIT")" \
  || ok "a complete walk writes no setgid.scan record"
expect "the audit chain verifies" 0 'audit log OK' "$SANDBOX/bin/elevate" audit verify "$AUDIT" --anchor "$STATE/audit-anchor.json"
rm -f /home/vault-tool
