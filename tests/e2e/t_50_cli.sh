# shellcheck shell=bash
# The CLI's other commands: list, status, policy check and explain.

fixture_policy base   # list and explain show alice's profiles basic, as-svc, lease-only
start_daemon || return
expect "list shows alice's profiles" 0 'basic' as alice elevate list
expect "list shows lease profiles as not active, with how to request" 0 'lease-only \(lease, not active' as alice elevate list
expect "list shows the allowed commands" 0 '/usr/bin/echo restart \{nginx.service\|php-fpm.service\}' as alice elevate list
capture as alice elevate list
expect_not "list shows no profile alice is not eligible for" 'marker|bob-id'
expect "list for someone with nothing says so" 0 'may not run anything' as bob elevate list
capture as alice elevate list --json
[ "$(json_get .user <<<"$OUT")" = alice ] && grep -qx basic <<<"$(json_get '.profiles[].name' <<<"$OUT")" \
  && ok "list --json is valid JSON: user alice, with her profile basic" || notok "list --json is valid JSON: user alice, with her profile basic" "$OUT"
expect "list -- CMD: allowed → 0 and the resolved path" 0 '/usr/bin/id as root' as alice elevate list -- id -u
expect "list -- CMD: denied → 77" 77 'denied' as alice elevate list -- uptime
expect "status --json has the policy digest" 0 '"policy_digest"' as bob elevate status --json
capture as bob elevate status --json
json_has .policy_digest .last_reload.ok .last_reload.errors .last_reload.warnings .profiles .policy_files <<<"$OUT" \
  && ok "status --json has policy_digest, last_reload{ok,errors,warnings}, profiles, policy_files" || notok "status --json has policy_digest, last_reload{ok,errors,warnings}, profiles, policy_files" "$OUT"
capture as alice elevate list --json
python3 -m json.tool <<<"$OUT" >/dev/null && ok "list --json passes python3 -m json.tool" || notok "list --json passes python3 -m json.tool" "$OUT"
names=$(json_get '.profiles[].name' <<<"$OUT")
grep -qx basic <<<"$names" && grep -qx as-svc <<<"$names" && ! grep -qx bob-id <<<"$names" \
  && ok "list --json names alice's profiles basic and as-svc, and not bob's bob-id" \
  || notok "list --json names alice's profiles basic and as-svc, and not bob's bob-id" "names: $(echo $names)" "$OUT"
capture as carol elevate list
grep -q 'as-svc' <<<"$OUT" && ! grep -q 'basic' <<<"$OUT" && ok "a group member's list shows the group's profile only" || notok "a group member's list shows the group's profile only" "$OUT"
expect "list -u USER -- CMD checks as that run-as user" 0 '' as alice elevate list -u svc -- id -un
expect "list -- CMD with wrong arguments → 77" 77 '' as alice elevate list -- echo restart apache.service

# --- policy check (offline; no daemon needed, no privileges)
expect "policy check on the live dir" 0 'policy OK' "$SANDBOX/bin/elevate" policy check "$POL"
install -d -m 0755 "$SANDBOX/check"
printf '[[profile]]\nname = "x"\nusers = ["alice"]\n\n[[profile.command]]\npath = "bin/relative"\n' >"$SANDBOX/check/bad.toml"
chmod 0644 "$SANDBOX/check/bad.toml"
expect "policy check: an invalid file → 1 with file:line:col" 1 'bad\.toml:6:[0-9]+: error' "$SANDBOX/bin/elevate" policy check "$SANDBOX/check/bad.toml"
printf '[[profile]]\nname = "ok"\nusers = ["alice"]\n' >"$SANDBOX/check/user.toml"; chown alice "$SANDBOX/check/user.toml"
expect "policy check: a file not owned by root is refused like the daemon would" 1 'root' "$SANDBOX/bin/elevate" policy check "$SANDBOX/check/user.toml"
expect "policy check --no-permissions accepts it" 0 'policy OK' "$SANDBOX/bin/elevate" policy check --no-permissions "$SANDBOX/check/user.toml"
expect "policy check works for an unprivileged user" 0 'policy OK' as bob elevate policy check "$POL"
printf '[[profile]]\nname = "oops"\nusers = ["alice"]\n[[profile.command]]\npath = "/usr/bin/find"\nrest = "any"\n' >"$SANDBOX/check/find.toml"
expect "policy check lints escape hatches (find as root with free arguments)" 0 'find.toml:[0-9]+:[0-9]+: warning' \
  "$SANDBOX/bin/elevate" policy check "$SANDBOX/check/find.toml"
expect "the shipped example policies are valid" 0 'policy OK' "$SANDBOX/bin/elevate" policy check --no-permissions "$repo"/policy.d/*.toml

# --- policy explain
expect "explain: allowed, naming the profile and rule" 0 'ALLOWED.*profile basic' \
  "$SANDBOX/bin/elevate" policy explain --policy-dir "$POL" --user alice -- echo restart nginx.service
expect "explain: denied, naming the nearest rule and the mismatching argument" 77 'nearest rule.*argument 2' \
  "$SANDBOX/bin/elevate" policy explain --policy-dir "$POL" --user alice -- echo restart apache.service

# --- hosts and labels, offline
install -d -m 0755 "$SANDBOX/hostpol"
policy_at() { cat >"$1"; chmod 0644 "$1"; }
policy_at "$SANDBOX/hostpol/h.toml" <<'TOML'
[[profile]]
name = "web"
hosts = ["web-*"]
users = ["alice"]
[[profile.command]]
path = "/usr/bin/id"

[[profile]]
name = "prod"
host_labels = { env = "prod" }
users = ["bob"]
[[profile.command]]
path = "/usr/bin/id"
TOML
X=("$SANDBOX/bin/elevate" policy explain --policy-dir "$SANDBOX/hostpol")
expect "explain --host: a matching host glob allows" 0 'ALLOWED.*profile web' "${X[@]}" --host web-1 --user alice -- id
expect "explain --host: another host is denied" 77 'DENIED' "${X[@]}" --host db-1 --user alice -- id
expect "explain --host: host names compare case-insensitively" 0 'ALLOWED' "${X[@]}" --host WEB-2 --user alice -- id
expect "explain --labels: matching labels allow" 0 'ALLOWED.*profile prod' "${X[@]}" --labels env=prod --user bob -- id
expect "explain --labels: other labels deny" 77 'DENIED' "${X[@]}" --labels env=staging --user bob -- id
expect "explain: a user the policy does not name is denied" 77 'DENIED' "${X[@]}" --host web-1 --user carol -- id
expect "policy check --host says when no profile applies there" 0 'no profile applies' "$SANDBOX/bin/elevate" policy check --host db-1 "$SANDBOX/hostpol"
capture "$SANDBOX/bin/elevate" policy check --json "$SANDBOX/check/bad.toml"
[ "$RC" = 1 ] && [ "$(json_get --json .valid <<<"$OUT")" = false ] && json_has '.errors[0]' <<<"$OUT" \
  && ok "policy check --json: valid=false with the errors, exit 1" || notok "policy check --json: valid=false with the errors, exit 1" "rc=$RC $OUT"
policy_at "$SANDBOX/check/syntax.toml" <<'TOML'
[[profile]]
name = "x"
users = ["alice"
TOML
expect "policy check: a TOML syntax error → 1 with file:line:col" 1 'syntax\.toml:[0-9]+:[0-9]+: error' "$SANDBOX/bin/elevate" policy check "$SANDBOX/check/syntax.toml"
policy_at "$SANDBOX/check/dup.toml" <<'TOML'
[[profile]]
name = "same"
users = ["alice"]
[[profile]]
name = "same"
users = ["bob"]
TOML
expect "policy check: a duplicate profile name → 1" 1 'dup\.toml:[0-9]+:[0-9]+: error' "$SANDBOX/bin/elevate" policy check "$SANDBOX/check/dup.toml"
policy_at "$SANDBOX/check/badname.toml" <<'TOML'
[[profile]]
name = "Bad Name"
users = ["alice"]
TOML
expect "policy check: a profile name outside [a-z0-9][a-z0-9._-]* → 1" 1 'badname\.toml:2:[0-9]+: error' "$SANDBOX/bin/elevate" policy check "$SANDBOX/check/badname.toml"
policy_at "$SANDBOX/check/badre.toml" <<'TOML'
[[profile]]
name = "re"
users = ["alice"]
[[profile.command]]
path = "/usr/bin/echo"
args = [{ regex = "(unclosed" }]
TOML
expect "policy check: an invalid regex → 1 with its line" 1 'badre\.toml:6:[0-9]+: error' "$SANDBOX/bin/elevate" policy check "$SANDBOX/check/badre.toml"

tmpf=$(mktemp /tmp/elevate-validate.XXXXXX.toml)
printf '[[profile]]\nname = "tmp"\nusers = ["alice"]\n[[profile.command]]\npath = "/usr/bin/id"\n' >"$tmpf"; chmod 0644 "$tmpf"
expect "policy check accepts a root-owned file in a sticky dir like /tmp (Ansible validate)" 0 'policy OK' "$SANDBOX/bin/elevate" policy check "$tmpf"
rm -f "$tmpf"

# --- usage errors
expect "a named --config that does not exist is an error, not silent defaults" 2 'no such configuration file' \
  "$SANDBOX/bin/elevate" --config /nonexistent/elevated.toml status
expect "usage error → 2" 2 '' "$SANDBOX/bin/elevate" run
expect "usage: -u without a value → 2" 2 '' "$SANDBOX/bin/elevate" run -u
expect "usage: an unknown subcommand option → 2" 2 '' "$SANDBOX/bin/elevate" list --no-such-option
expect "usage: policy explain without a command → 2" 2 '' "$SANDBOX/bin/elevate" policy explain --user alice
expect "--help works" 0 'Usage' "$SANDBOX/bin/elevate" --help
