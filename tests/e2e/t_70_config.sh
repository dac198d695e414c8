# shellcheck shell=bash
# elevated.toml: every path and the host identity from the config file alone; the default
# socket (on the sandbox's private /run/elevate); hosts and host_labels against the daemon.

fixture_users

CFG=$SANDBOX/cfg
install -d -m 0755 "$CFG" "$CFG/policy.d"
cat >"$CFG/policy.d/70-hosts.toml" <<'TOML'
[[profile]]
name = "web"
hosts = ["web-*"]
users = ["alice"]
[[profile.command]]
path = "/usr/bin/id"
args = ["-u"]

[[profile]]
name = "prod"
host_labels = { env = "prod" }
users = ["bob"]
[[profile.command]]
path = "/usr/bin/id"
args = ["-u"]

[[profile]]
name = "db"
hosts = ["db-*"]
users = ["carol"]
[[profile.command]]
path = "/usr/bin/id"
args = ["-u"]
TOML
chmod 0644 "$CFG/policy.d/70-hosts.toml"
# write_cfg HOSTNAME ENV: the config file, with every key this suite can check.
write_cfg() {
  cat >"$CFG/elevated.toml" <<TOML
socket = "/run/elevate/elevated.sock"
policy_dir = "$CFG/policy.d"
state_dir = "$CFG/state"
audit_log = "$CFG/audit.jsonl"
hostname = "$1"

[labels]
env = "$2"
role = "frontend"

[limits]
max_connections = 64
max_connections_per_uid = 8
requests_per_second = 100
burst = 100
read_timeout_ms = 2000
idle_timeout_ms = 5000
kill_grace_ms = 500
TOML
  chmod 0644 "$CFG/elevated.toml"
}
# The CLI as USER without ELEVATE_SOCKET: it must find the default socket itself.
as_nosock() { local u=$1; shift; as_user "$u" /usr/bin/timeout -k 5 30 env PATH="$SANDBOX/bin:/usr/bin:/bin" "$@"; }
cfg_start() { sandbox_daemon_start "$SANDBOX/bin" /run/elevate/elevated.sock "$DLOG" --config "$CFG/elevated.toml" "$@" && DPID=$SANDBOX_DPID; }

write_cfg WEB-7 prod
if cfg_start; then ok "elevated runs from --config alone (socket, dirs, audit log, host, labels, limits)"
else notok "elevated runs from --config alone (socket, dirs, audit log, host, labels, limits)"; return; fi
expect "the CLI finds the default socket /run/elevate/elevated.sock" 0 'WEB-7|web-7' as_nosock bob elevate status
expect "hosts: a glob matching the configured hostname allows (case-insensitively)" 0 '^0$' as_nosock alice elevate id -u
expect "host_labels: the configured [labels] allow" 0 '^0$' as_nosock bob elevate id -u
expect "hosts: a profile for other hosts does not apply" 77 'denied' as_nosock carol elevate id -u
[ -s "$CFG/audit.jsonl" ] && grep -q '"event":"run.allowed"' "$CFG/audit.jsonl" && ok "audit_log from the config is written" || notok "audit_log from the config is written" "$(tail -3 "$CFG/audit.jsonl" 2>&1)"
stop_daemon
[ -f "$CFG/state/audit-anchor.json" ] && ok "state_dir from the config holds the audit anchor" || notok "state_dir from the config holds the audit anchor" "$(ls -la "$CFG/state" 2>&1)"
[ ! -e "$SOCK" ] && ok "nothing listened on the suite's usual socket" || notok "nothing listened on the suite's usual socket" "$(ls -l "$SOCK" 2>&1)"
expect "offline: audit verify finds the log and anchor through --config" 0 'audit log OK' "$SANDBOX/bin/elevate" --config "$CFG/elevated.toml" audit verify
expect "offline: policy explain uses the config's policy dir and hostname" 0 'ALLOWED.*profile web' \
  "$SANDBOX/bin/elevate" --config "$CFG/elevated.toml" policy explain --user alice -- id -u
expect "offline: ...and its labels" 77 'DENIED' "$SANDBOX/bin/elevate" --config "$CFG/elevated.toml" policy explain --user carol -- id -u

# --hostname overrides the config's hostname; other labels switch profiles off.
write_cfg web-7 staging
cfg_start --hostname db-3 || return
expect "--hostname overrides the config: the db profile applies" 0 '^0$' as_nosock carol elevate id -u
expect "...and the web profile no longer does" 77 'denied' as_nosock alice elevate id -u
expect "host_labels: other label values deny" 77 'denied' as_nosock bob elevate id -u
expect "status shows the effective host name" 0 'db-3' "$SANDBOX/bin/elevate" --socket /run/elevate/elevated.sock status
stop_daemon

# A broken config is an error at start, not silent defaults.
printf 'socket = "/run/elevate/elevated.sock"\nno_such_key = 1\n' >"$CFG/bad.toml"
expect "an unknown config key stops the daemon at start (non-zero, naming the file)" 78 'bad\.toml' \
  timeout 10 "$SANDBOX/bin/elevated" --config "$CFG/bad.toml"
printf '[limits]\nburst = "many"\n' >"$CFG/bad2.toml"
expect "a config value of the wrong type stops the daemon at start" 78 'bad2\.toml' \
  timeout 10 "$SANDBOX/bin/elevated" --config "$CFG/bad2.toml"
expect "a --config that does not exist stops the daemon at start" 78 'no such configuration file' \
  timeout 10 "$SANDBOX/bin/elevated" --config "$CFG/missing.toml"
[ ! -e /run/elevate/elevated.sock ] && ok "no daemon was left listening" || notok "no daemon was left listening" "$(ls -l /run/elevate 2>&1)"
