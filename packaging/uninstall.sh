#!/usr/bin/env bash
# Remove what packaging/install.sh installed: end every lease cleanly (memberships removed,
# sessions ended, audited), take pam_elevate.so out of the PAM stacks, stop the daemon, and
# delete the files in the manifest. Configuration under /etc that was edited is kept unless
# --purge; --purge also removes the state and the logs (the audit log included).
#
#   sudo packaging/uninstall.sh [--purge]
set -euo pipefail
die() { echo "uninstall: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root: sudo $0"
purge=no
case "${1:-}" in
  --purge) purge=yes ;;
  "") ;;
  *) die "usage: $0 [--purge]" ;;
esac
[ ! -e /var/lib/dpkg/info/elevate.list ] || die "elevate is installed as a Debian package: apt remove elevate (or purge)"
manifest=/usr/share/elevate/install-manifest
[ -f "$manifest" ] || die "no $manifest: elevate was not installed by install.sh here"

/usr/share/elevate/prerm remove

kept=()
while read -r sum path; do
  case "$path" in
    /usr/share/elevate/postrm|"$manifest") continue ;;
    /etc/*)
      if [ "$purge" = no ] && [ -e "$path" ] && [ "$(md5sum <"$path" | cut -d' ' -f1)" != "$sum" ]; then
        kept+=("$path"); continue
      fi ;;
  esac
  rm -f "$path"
  rmdir -p --ignore-fail-on-non-empty "$(dirname "$path")" 2>/dev/null || true
done <"$manifest"

if [ "$purge" = yes ]; then /usr/share/elevate/postrm purge; else /usr/share/elevate/postrm remove; fi
rm -f /usr/share/elevate/postrm "$manifest"
rmdir /usr/share/elevate 2>/dev/null || true
for k in "${kept[@]}"; do echo "uninstall: kept $k (edited; --purge removes it)"; done
echo "uninstall: elevate removed"
