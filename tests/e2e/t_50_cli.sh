# shellcheck shell=bash
# The CLI's other commands: list, status, policy check and explain.

start_daemon || return
expect "list shows alice's profiles" 0 'basic' as alice elevate list
expect "list shows lease profiles as not active, with how to request" 0 'lease-only \(lease, not active' as alice elevate list
expect "list shows the allowed commands" 0 '/usr/bin/echo restart \{nginx.service\|php-fpm.service\}' as alice elevate list
capture as alice elevate list
expect_not "list shows no profile alice is not eligible for" 'marker|bob-id'
expect "list for someone with nothing says so" 0 'may not run anything' as bob elevate list
capture as alice elevate list --json
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["user"]=="alice" and any(p["name"]=="basic" for p in d["profiles"])' "$OUT" \
  && ok "list --json is valid JSON with the profiles" || notok "list --json is valid JSON with the profiles" "$OUT"
expect "list -- CMD: allowed → 0 and the resolved path" 0 '/usr/bin/id as root' as alice elevate list -- id -u
expect "list -- CMD: denied → 77" 77 'denied' as alice elevate list -- uptime
expect "status --json has the policy digest" 0 '"policy_digest"' as bob elevate status --json

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

tmpf=$(mktemp /tmp/elevate-validate.XXXXXX.toml)
printf '[[profile]]\nname = "tmp"\nusers = ["alice"]\n[[profile.command]]\npath = "/usr/bin/id"\n' >"$tmpf"; chmod 0644 "$tmpf"
expect "policy check accepts a root-owned file in a sticky dir like /tmp (Ansible validate)" 0 'policy OK' "$SANDBOX/bin/elevate" policy check "$tmpf"
rm -f "$tmpf"

# --- usage errors
expect "a named --config that does not exist is an error, not silent defaults" 2 'no such configuration file' \
  "$SANDBOX/bin/elevate" --config /nonexistent/elevated.toml status
expect "usage error → 2" 2 '' "$SANDBOX/bin/elevate" run
expect "--help works" 0 'Usage' "$SANDBOX/bin/elevate" --help
