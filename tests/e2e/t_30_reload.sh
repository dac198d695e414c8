# shellcheck shell=bash
# SIGHUP reloads all-or-nothing: a bad file never replaces a good policy.

fixture_policy base   # the good policy every reload is compared with
start_daemon || return
digest=$(status_field policy_digest)

policy_file 90-broken.toml <<'TOML'
[[profile]]
name = "broken"
users = ["bob"]
bogus_key = 1
TOML
reload_daemon
[ "$(status_field last_reload.ok)" = false ] && ok "a broken file makes the reload fail" || notok "a broken file makes the reload fail" "last_reload: $(status_field last_reload)"
status_field last_reload.errors | grep -qE '90-broken\.toml:[0-9]+:[0-9]+' && ok "status reports the error as file:line:col" || notok "status reports the error as file:line:col" "$(status_field last_reload.errors)"
[ "$(status_field policy_digest)" = "$digest" ] && ok "the previous policy stays in force (digest unchanged)" || notok "the previous policy stays in force (digest unchanged)" "digest before: $digest, now: $(status_field policy_digest)"
expect "alice still runs what the good policy allows" 0 '^0$' as alice elevate id -u
expect "status (human) says the reload failed" 0 'FAILED' "$SANDBOX/bin/elevate" --socket "$SOCK" status
grep '"event":"policy.reload"' "$AUDIT" | tail -1 | grep -q '90-broken' \
  && ok "the failed reload is audited (policy.reload, with the error)" || notok "the failed reload is audited (policy.reload, with the error)" "$(grep '"event":"policy.reload"' "$AUDIT" | tail -1)"
expect "elevated --check reports the same error and exits non-zero" 1 '90-broken\.toml:[0-9]+:[0-9]+: error' \
  "$SANDBOX/bin/elevated" --config /dev/null --policy-dir "$POL" --check
rm -f "$POL/90-broken.toml"
expect "elevated --check passes on the fixed dir" 0 'policy OK' "$SANDBOX/bin/elevated" --config /dev/null --policy-dir "$POL" --check

policy_file 91-bob.toml <<'TOML'
[[profile]]
name = "bob-id"
users = ["bob"]
[[profile.command]]
path = "/usr/bin/id"
args = ["-u"]
TOML
chmod 0666 "$POL/91-bob.toml"
reload_daemon
[ "$(status_field last_reload.ok)" = false ] && ok "a world-writable policy file is rejected" || notok "a world-writable policy file is rejected" "last_reload: $(status_field last_reload)"
expect "...and grants nothing" 77 'denied' as bob elevate id -u
chmod 0644 "$POL/91-bob.toml"; chown bob "$POL/91-bob.toml"
reload_daemon
[ "$(status_field last_reload.ok)" = false ] && ok "a policy file not owned by root is rejected" || notok "a policy file not owned by root is rejected" "last_reload: $(status_field last_reload)"
chown root "$POL/91-bob.toml"
reload_daemon
[ "$(status_field last_reload.ok)" = true ] && ok "fixed file: the reload succeeds" || notok "fixed file: the reload succeeds" "$(status_field last_reload.errors)"
expect "the new policy applies at once" 0 '^0$' as bob elevate id -u
rm -f "$POL/91-bob.toml"
reload_daemon
expect "removing the profile revokes it" 77 'denied' as bob elevate id -u
[ "$(status_field policy_digest)" = "$digest" ] && ok "...and the digest is the original one again" || notok "...and the digest is the original one again" "digest at the start: $digest, now: $(status_field policy_digest)"

# --- the directory itself must be root's and not group/world-writable
policy_file 91-bob.toml <<'TOML'
[[profile]]
name = "bob-id"
users = ["bob"]
[[profile.command]]
path = "/usr/bin/id"
args = ["-u"]
TOML
chmod 0775 "$POL"
reload_daemon
[ "$(status_field last_reload.ok)" = false ] && status_field last_reload.errors | grep -q 'writable' \
  && ok "a group-writable policy dir is rejected" || notok "a group-writable policy dir is rejected" "$(status_field last_reload.errors)"
expect "...and the file in it grants nothing" 77 'denied' as bob elevate id -u
expect "...while the previous policy stays" 0 '^0$' as alice elevate id -u
chmod 0755 "$POL"; chown bob "$POL"
reload_daemon
[ "$(status_field last_reload.ok)" = false ] && ok "a policy dir not owned by root is rejected" || notok "a policy dir not owned by root is rejected" "$(status_field last_reload.errors)"
chown root "$POL"
reload_daemon
expect "fixed dir: the new file applies" 0 '^0$' as bob elevate id -u
status_field policy_files | grep -q '91-bob.toml' && ok "status lists the policy files" || notok "status lists the policy files" "$(status_field policy_files)"
rm -f "$POL/91-bob.toml"
reload_daemon

# --- a policy directory that disappears keeps the last good policy (an empty one allows nothing)
mv "$POL" "$POL.away"
reload_daemon
[ "$(status_field last_reload.ok)" = false ] && status_field last_reload.errors | grep -q 'does not exist; keeping the previous policy' \
  && ok "a missing policy dir makes the reload fail and says so" || notok "a missing policy dir makes the reload fail and says so" "$(status_field last_reload)"
expect "...and the last good policy stays in force" 0 '^0$' as alice elevate id -u
mv "$POL.away" "$POL"
reload_daemon
[ "$(status_field last_reload.ok)" = true ] && ok "the directory back: the reload succeeds" || notok "the directory back: the reload succeeds" "$(status_field last_reload.errors)"

# --- `elevate reload` (what ExecReload runs): reloads now and reports the outcome
R() { "$SANDBOX/bin/elevate" --socket "$SOCK" reload "$@"; }
expect "elevate reload: ok, exit 0" 0 '^policy reloaded' R
printf '[[profile]]\nname = "x"\nbogus = 1\n' | policy_file 92-broken.toml
expect "elevate reload: a broken file is reported, exit 1" 1 '92-broken\.toml:3:1: error: unknown field `bogus`' R
expect "...the previous policy stays in force" 0 '^0$' as alice elevate id -u
expect "elevate reload --json: the report" 1 '"ok": false' R --json
rm -f "$POL/92-broken.toml"
expect "elevate reload: fixed, exit 0" 0 '^policy reloaded' R
expect "elevate reload: refused to a user" 77 'only root may reload' as alice elevate reload
