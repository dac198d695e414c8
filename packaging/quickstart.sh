#!/usr/bin/env bash
# Build, install and start elevate on this machine the way an admin would — the Debian
# package (packaging/build-deb), or packaging/install.sh where there is no dpkg — then give
# you one small grant and show a real elevated command.
#
#   sudo ./packaging/quickstart.sh
#
# The daemon runs under systemd when systemd is PID 1 (the package enables and starts it),
# otherwise in the background with its log in /var/log/elevate/elevated.log.
# The grant (/etc/elevate/policy.d/10-quickstart.toml) lets the invoking user run `id` and
# `whoami` as root — harmless, and easy to remove. Everything else the package installs
# grants nothing. Remove it all with: apt purge elevate (or packaging/uninstall.sh --purge).
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

systemd=no
[ -d /run/systemd/system ] && systemd=yes

# A daemon started by an earlier run of this script (not under systemd) makes way.
if [ "$systemd" = no ] && pid=$(cat /run/elevate/elevated.pid 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then
  kill -TERM "$pid"; for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi

if command -v dpkg-deb >/dev/null && command -v apt-get >/dev/null; then
  echo "== building the Debian package"
  packaging/build-deb
  deb=$(realpath "$(ls "${CARGO_TARGET_DIR:-target}"/debian/elevate_*.deb | tail -1)")
  echo "== installing $deb"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >/dev/null
else
  echo "== no dpkg here: packaging/install.sh"
  packaging/install.sh
fi

if [ "$systemd" = no ]; then
  echo "== starting elevated in the background (systemd is not PID 1 here)"
  install -d -m 0755 -o root -g root /run/elevate
  setsid /usr/sbin/elevated >>/var/log/elevate/elevated.log 2>&1 </dev/null &
  echo $! >/run/elevate/elevated.pid
fi
for _ in $(seq 100); do elevate status >/dev/null 2>&1 && break; sleep 0.1; done
elevate status

who="${SUDO_USER:-}"
if [ -z "$who" ] || [ "$who" = root ]; then
  who=elevate-demo
  id "$who" >/dev/null 2>&1 || useradd --system --create-home --shell /bin/bash "$who"
fi
cat >/etc/elevate/policy.d/10-quickstart.toml <<TOML
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
chmod 0644 /etc/elevate/policy.d/10-quickstart.toml

echo "== checking the policy, then reloading it"
elevate policy check /etc/elevate/policy.d
elevate reload

echo "== as $who: elevate list"
runuser -u "$who" -- elevate list
echo "== as $who: elevate id"
runuser -u "$who" -- elevate id
echo
if [ "$systemd" = yes ]; then
  echo "elevate is running under systemd (systemctl status elevated; journalctl -u elevated)."
else
  echo "elevate is running (log: /var/log/elevate/elevated.log)."
fi
echo "Audit log: /var/log/elevate/audit.jsonl (elevate audit verify). Man pages: elevate(1), elevated(8), elevate-policy(5), pam_elevate(8)."
echo "Edit /etc/elevate/policy.d/*.toml, check with 'elevate policy check', apply with 'elevate reload'."
