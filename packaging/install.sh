#!/usr/bin/env bash
# Install elevate on a host without dpkg: the same files as the Debian package, staged by
# packaging/stage.sh, plus a manifest so that packaging/uninstall.sh removes exactly what
# this added. On Debian and Ubuntu prefer the package: packaging/build-deb, then
# apt install ./target/debian/elevate_*.deb
#
#   sudo packaging/install.sh
#
# Existing files under /etc are kept (an admin's edits win); the new version is put beside
# them as FILE.elevate-new. PAM_DIR=lib64/security (relative to /) overrides where the PAM
# module goes.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
die() { echo "install: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root: sudo $0"
[ ! -e /var/lib/dpkg/info/elevate.list ] || die "elevate is installed as a Debian package; use apt to upgrade or remove it"
for t in cc:"a C compiler (gcc)" strip:binutils gzip:gzip install:coreutils; do
  command -v "${t%%:*}" >/dev/null || die "missing ${t%%:*}: install ${t#*:}"
done
[ -e /usr/include/security/pam_modules.h ] || die "missing the PAM headers: install libpam0g-dev (Debian) or pam-devel (Fedora)"

if [ -z "${PAM_DIR:-}" ]; then
  triplet=$(cc -print-multiarch 2>/dev/null || true)
  for d in ${triplet:+usr/lib/$triplet/security} usr/lib64/security lib64/security usr/lib/security lib/security; do
    [ -e "/$d/pam_unix.so" ] && PAM_DIR=$d && break
  done
  [ -n "${PAM_DIR:-}" ] || die "cannot tell where PAM modules live (no pam_unix.so found); set PAM_DIR=path/relative/to/root"
fi

STAGE=${CARGO_TARGET_DIR:-$repo/target}/install/stage
# shellcheck source=packaging/stage.sh
source "$repo/packaging/stage.sh"
# The maintainer scripts travel with the install, for uninstall.sh.
for s in postinst prerm postrm; do put 0755 "packaging/debian/$s" "usr/share/elevate/$s"; done

manifest=/usr/share/elevate/install-manifest
previous=$(cat "$manifest" 2>/dev/null || true)
tmp=$(mktemp)
while IFS= read -r rel; do
  dest=/$rel
  mode=$(stat -c %a "$stage/$rel")
  if [ "${rel#etc/}" != "$rel" ] && [ -e "$dest" ]; then
    # Ours and unchanged since: replace it. Anyone else's, or edited: keep it.
    was=$(awk -v p="$dest" '$2 == p { print $1 }' <<<"$previous")
    if [ -z "$was" ] || [ "$(md5sum <"$dest" | cut -d' ' -f1)" != "$was" ]; then
      install -m "$mode" -o root -g root "$stage/$rel" "$dest.elevate-new"
      echo "install: kept $dest (edited or not ours); the shipped version is $dest.elevate-new" >&2
      echo "$(md5sum <"$dest.elevate-new" | cut -d' ' -f1)  $dest.elevate-new" >>"$tmp"
      [ -z "$was" ] || echo "$was  $dest" >>"$tmp"
      continue
    fi
  fi
  install -D -m "$mode" -o root -g root "$stage/$rel" "$dest"
  echo "$(md5sum <"$dest" | cut -d' ' -f1)  $dest" >>"$tmp"
done < <(cd "$stage" && find . -type f | sed 's|^\./||' | sort)
install -m 0644 "$tmp" "$manifest"
rm -f "$tmp"

/usr/share/elevate/postinst configure "$([ -n "$previous" ] && echo "$version")"
echo "install: elevate $version installed ($(wc -l <"$manifest") files; manifest $manifest)"
echo "install: remove it with packaging/uninstall.sh (or /usr/share/elevate/uninstall.sh)"
