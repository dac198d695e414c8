#!/usr/bin/env bash
# Build, install and start elevate on this machine, with the example policy and one small
# grant for you, then show a real elevated command.
#
#   sudo ./packaging/quickstart.sh
#
# What it changes: installs /usr/local/bin/elevate and /usr/local/sbin/elevated, creates
# /etc/elevate/{elevated.toml,policy.d/}, /var/lib/elevate, /var/log/elevate and /run/elevate,
# and starts the daemon (in the background; a systemd unit comes with the packaging work).
# The grant (/etc/elevate/policy.d/00-quickstart.toml) lets the invoking user run `id` and
# `whoami` as root — harmless, and easy to remove.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "quickstart: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root: sudo $0"

if ! command -v cargo >/dev/null; then
  for c in "${SUDO_USER:+$(getent passwd "$SUDO_USER" | cut -d: -f6)}/.cargo/bin" "$HOME/.cargo/bin"; do
    [ -x "$c/cargo" ] && export PATH="$c:$PATH" && break
  done
fi
command -v cargo >/dev/null || die "no Rust toolchain: install it with rustup (https://rustup.rs), then re-run"
command -v cc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libpam0g-dev >/dev/null; }

echo "== building (release)"
cargo build --release --quiet -p elevated -p elevate-cli

echo "== installing"
install -D -m 0755 -o root -g root target/release/elevated /usr/local/sbin/elevated
install -D -m 0755 -o root -g root target/release/elevate /usr/local/bin/elevate
install -d -m 0755 -o root -g root /etc/elevate /etc/elevate/policy.d
install -d -m 0700 -o root -g root /var/lib/elevate
install -d -m 0750 -o root -g root /var/log/elevate
[ -e /etc/elevate/elevated.toml ] || install -m 0644 -o root -g root /dev/null /etc/elevate/elevated.toml
for f in policy.d/*.toml; do
  dest="/etc/elevate/policy.d/$(basename "$f")"
  [ -e "$dest" ] || install -m 0644 -o root -g root "$f" "$dest"
done

who="${SUDO_USER:-}"
if [ -z "$who" ] || [ "$who" = root ]; then
  who=elevate-demo
  id "$who" >/dev/null 2>&1 || useradd --system --create-home --shell /bin/bash "$who"
fi
cat > /etc/elevate/policy.d/00-quickstart.toml <<TOML
# Written by packaging/quickstart.sh: lets $who see what elevate does. Remove at will.
[[profile]]
name = "quickstart"
description = "Who am I, with privileges?"
users = ["$who"]

[[profile.command]]
path = "/usr/bin/id"

[[profile.command]]
path = "/usr/bin/whoami"
TOML
chmod 0644 /etc/elevate/policy.d/00-quickstart.toml

echo "== checking the policy"
elevate policy check /etc/elevate/policy.d

echo "== starting elevated"
if pid=$(cat /run/elevate/elevated.pid 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then
  echo "already running (pid $pid): restarting it with the new binary"
  kill -TERM "$pid"; for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi
install -d -m 0755 -o root -g root /run/elevate
setsid /usr/local/sbin/elevated >>/var/log/elevate/elevated.log 2>&1 < /dev/null &
echo $! > /run/elevate/elevated.pid
for _ in $(seq 50); do elevate status >/dev/null 2>&1 && break; sleep 0.1; done
elevate status

echo "== as $who: elevate list"
runuser -u "$who" -- elevate list
echo "== as $who: elevate id"
runuser -u "$who" -- elevate id
echo
echo "elevate is running (log: /var/log/elevate/elevated.log, audit: /var/log/elevate/audit.jsonl)."
echo "Try: elevate audit verify    Edit /etc/elevate/policy.d/*.toml, then: kill -HUP \$(cat /run/elevate/elevated.pid)"
