#!/usr/bin/env bash
# The Debian package and the installer, for real: build the .deb, inspect it, install it
# with dpkg into a private mount namespace whose /usr, /etc and /var are overlays of the
# machine's (so the machine itself is untouched), check files, permissions, conffiles, the
# man pages, completions, units, tmpfiles and logrotate, run the installed daemon, then
# remove and purge it and check that nothing is left behind. The same for
# packaging/install.sh and uninstall.sh.
#
#   sudo tests/packaging/run.sh
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

if [ -z "${ELEVATE_PKG_INSIDE:-}" ]; then
  fail() { echo "packaging: $*" >&2; echo "0 passed, 1 failed"; exit 1; }
  [ "$(id -u)" -eq 0 ] || fail "must run as root (dpkg -i inside a mount namespace)"
  for t in unshare:util-linux dpkg-deb:dpkg man:man-db logrotate:logrotate systemd-analyze:systemd \
           systemd-tmpfiles:systemd pam-auth-update:libpam-runtime useradd:passwd python3:python3; do
    command -v "${t%%:*}" >/dev/null || fail "missing ${t%%:*}: apt-get install ${t#*:}"
  done
  "$repo/packaging/build-deb" || fail "packaging/build-deb failed"
  export ELEVATE_PKG_INSIDE=1
  ELEVATE_DEB=$(ls "${CARGO_TARGET_DIR:-$repo/target}"/debian/elevate_*.deb | tail -1)
  export ELEVATE_DEB
  timeout -k 10 "${ELEVATE_PKG_TIMEOUT:-600}" unshare --mount --propagation private -- bash "$0" "$@"
  exit $?
fi

PASSED=0 FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok - $1"; }
notok() { FAILED=$((FAILED + 1)); echo "not ok - $1"; shift; local l; for l in "$@"; do printf '    %s\n' "$l"; done; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else notok "$name" "failed: $*"; fi; }
# expect NAME RC REGEX CMD...
expect() {
  local name=$1 want=$2 pat=$3 out rc; shift 3
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" = "$want" ] && { [ -z "$pat" ] || grep -qE -- "$pat" <<<"$out"; }; then ok "$name"
  else notok "$name" "exit $rc (want $want), pattern: $pat" "output: ${out:0:800}"; fi
}

# --- a writable copy of the system: overlays on /usr, /etc and /var, a fresh /run and /tmp
T=$(mktemp -d /tmp/elevate-pkg.XXXXXX)
mount -t tmpfs tmpfs "$T"
for d in usr etc var; do
  mkdir -p "$T/up/$d" "$T/work/$d" "$T/low/$d"
  mount --bind "/$d" "$T/low/$d"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$T/up/$d,workdir=$T/work/$d" "/$d" ||
    { echo "packaging: cannot overlay /$d"; echo "0 passed, 1 failed"; exit 1; }
done
mount -t tmpfs tmpfs /run
# A machine that already has elevate (a developer's) looks fresh in here.
rm -rf /etc/elevate /var/lib/elevate /var/log/elevate /etc/pam.d/elevate /etc/logrotate.d/elevate \
  /usr/local/sbin/elevated /usr/local/bin/elevate
DEB=$ELEVATE_DEB
MULTIARCH=usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/security

# What the overlays changed (type, mode, owner and content of each file that differs from
# the machine's), to compare before and after. Left out: dpkg's and apt's own bookkeeping,
# pam-auth-update's list of profiles it has seen, and shadow-utils' group-/gshadow- backups.
snapshot() {
  (cd "$T/up" && find . ! -type d ! -path './var/lib/dpkg/*' ! -path './var/log/dpkg.log' \
     ! -path './var/log/apt/*' ! -path './var/cache/*' ! -path './var/lib/pam/seen' \
     ! -path './var/lib/apt/extended_states' ! -path './etc/group-' ! -path './etc/gshadow-' \
     -printf '%p %y %m %u:%g\n' | sort |
   while read -r p y m o; do
     if [ "$y" = f ]; then
       low=$T/low/${p#./}
       [ -f "$low" ] && [ "$(stat -c '%a %U:%G' "$low")" = "$m $o" ] && cmp -s "$p" "$low" && continue
       echo "$p $y $m $o $(md5sum <"$p" | cut -c1-12)"
     else echo "$p $y $m $o"; fi
   done)
}

# --- the package itself
expect "dpkg-deb: the package's name and version" 0 '^elevate[[:space:]]+0\.' dpkg-deb -W "$DEB"
LIST=$(dpkg-deb -c "$DEB")
for want in "-rwxr-xr-x root/root .* ./usr/sbin/elevated$" "-rwxr-xr-x root/root .* ./usr/bin/elevate$" \
            "-rw-r--r-- root/root .* ./$MULTIARCH/pam_elevate.so$" "./lib/systemd/system/elevated.service$" \
            "./lib/systemd/system/elevated.socket$" "./usr/lib/tmpfiles.d/elevate.conf$" \
            "./usr/share/dbus-1/system.d/org.elevate.Elevated1.conf$" "./usr/share/pam-configs/elevate$" \
            "./etc/pam.d/elevate$" "./etc/logrotate.d/elevate$" "./etc/elevate/elevated.toml$" \
            "./etc/elevate/policy.d/00-admin.toml$" "./usr/share/man/man1/elevate.1.gz$" \
            "./usr/share/man/man1/elevate-request.1.gz$" "./usr/share/man/man5/elevate-policy.5.gz$" \
            "./usr/share/man/man8/elevated.8.gz$" "./usr/share/man/man8/pam_elevate.8.gz$" \
            "./usr/share/bash-completion/completions/elevate$" "./usr/share/zsh/vendor-completions/_elevate$" \
            "./usr/share/fish/vendor_completions.d/elevate.fish$" \
            "./usr/share/doc/elevate/examples/policy.d/20-db.toml$"; do
  grep -qE -- "$want" <<<"$LIST" && ok "dpkg -c: $want" || notok "dpkg -c: $want"
done
grep -q 'setuid\|-rws' <<<"$LIST" && notok "no setuid file in the package" || ok "no setuid file in the package"
grep -q '^-.* \./etc/elevate/policy\.d/[^0]' <<<"$LIST" && notok "/etc ships only 00-admin.toml" || ok "/etc ships only 00-admin.toml"
CONF=$(dpkg-deb -I "$DEB" conffiles)
[ "$(wc -l <<<"$CONF")" = 4 ] && grep -qx /etc/elevate/policy.d/00-admin.toml <<<"$CONF" && grep -qx /etc/pam.d/elevate <<<"$CONF" \
  && ok "conffiles: the four files under /etc" || notok "conffiles: the four files under /etc" "$CONF"

useradd --create-home pkguser 2>/dev/null
groupadd pkggrp 2>/dev/null
BEFORE=$(snapshot)

# --- install
expect "dpkg -i installs it" 0 '' dpkg -i "$DEB" </dev/null
expect "dpkg knows it installed" 0 '^ii +elevate ' dpkg -l elevate
mode() { stat -c '%a %U:%G' "$1" 2>&1; }
for spec in "/usr/sbin/elevated 755 root:root" "/usr/bin/elevate 755 root:root" "/$MULTIARCH/pam_elevate.so 644 root:root" \
            "/etc/elevate/policy.d/00-admin.toml 644 root:root" "/var/lib/elevate 700 root:root" \
            "/var/log/elevate 750 root:adm" "/run/elevate 755 root:root"; do
  set -- $spec
  [ "$(mode "$1")" = "$2 $3" ] && ok "installed: $1 is $2 $3" || notok "installed: $1 is $2 $3" "$(mode "$1")"
done
expect "dpkg records the conffiles" 0 '/etc/elevate/elevated.toml' dpkg-query -W -f='${Conffiles}\n' elevate
expect "elevated --check: the shipped policy is valid" 0 'policy OK: 0 profiles' elevated --check
expect "elevate policy check: the same" 0 'policy OK' elevate policy check /etc/elevate/policy.d
expect "the example policies validate too" 0 'policy OK' elevate policy check /usr/share/doc/elevate/examples/policy.d
expect "the units pass systemd-analyze verify" 0 '' systemd-analyze verify /lib/systemd/system/elevated.socket /lib/systemd/system/elevated.service
expect "the PAM profile is registered, not enabled" 0 '' sh -c '! grep -q pam_elevate /etc/pam.d/common-account /etc/pam.d/common-session'
expect "bash completion loads" 0 'complete .*elevate' bash -c 'source /usr/share/bash-completion/completions/elevate && complete -p elevate'

# --- every man page the package ships renders without warnings, and man finds them by name
for f in $(dpkg -L elevate | grep '^/usr/share/man/.*\.gz$'); do
  w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$f" 2>&1 >/dev/null)
  [ -z "$w" ] && ok "man -l $(basename "$f") renders without warnings" || notok "man -l $(basename "$f") renders without warnings" "$w"
done
for page in elevate "5 elevate-policy" "8 elevated" "8 pam_elevate" elevate-request; do
  # shellcheck disable=SC2086
  man -w $page >/dev/null 2>&1 && ok "man $page is found" || notok "man $page is found"
done

# --- the installed daemon (no systemd here: started by hand, as the README says)
/usr/sbin/elevated >>/var/log/elevate/elevated.log 2>&1 &
DPID=$!
for _ in $(seq 100); do elevate status >/dev/null 2>&1 && break; sleep 0.05; done
expect "the installed daemon answers" 0 'policy: /etc/elevate/policy.d' elevate status
expect "as shipped it grants nothing" 77 'denied' setpriv --reuid=pkguser --regid=pkguser --init-groups -- elevate id
expect "...and lists nothing" 0 '' sh -c "! setpriv --reuid=pkguser --regid=pkguser --init-groups -- elevate list | grep -q '^  '"

# logrotate: the chain continues across the rotated files.
cat >/etc/elevate/policy.d/90-pkgtest.toml <<'TOML'
[[profile]]
name = "pkg-lease"
users = ["pkguser"]
access = "lease"
default_duration = "10m"
max_duration = "1h"
grant_groups = ["pkggrp"]
TOML
chmod 0644 /etc/elevate/policy.d/90-pkgtest.toml
expect "elevate reload takes the admin's new file" 0 'policy reloaded' elevate reload
expect "a lease for the uninstall to end" 0 '' setpriv --reuid=pkguser --regid=pkguser --init-groups -- elevate request pkg-lease
id -nG pkguser | grep -qw pkggrp && ok "...the lease's membership is in /etc/group" || notok "...the lease's membership is in /etc/group"
expect "logrotate rotates the audit log" 0 '' logrotate -f -s "$T/logrotate.state" /etc/logrotate.d/elevate
[ -f /var/log/elevate/audit.jsonl.1 ] && ok "...into audit.jsonl.1" || notok "...into audit.jsonl.1" "$(ls -l /var/log/elevate)"
setpriv --reuid=pkguser --regid=pkguser --init-groups -- elevate id >/dev/null 2>&1  # a record after the rotation
expect "audit verify across the rotation (with the anchor)" 0 'audit log OK' elevate audit verify \
  /var/log/elevate/audit.jsonl.1 /var/log/elevate/audit.jsonl --anchor /var/lib/elevate/audit-anchor.json
expect "the new file alone does not start the log: not proven" 1 'missing-start: the oldest records are missing' \
  elevate audit verify /var/log/elevate/audit.jsonl --anchor /var/lib/elevate/audit-anchor.json
expect "...accepted with --allow-missing-start, saying where its chain starts" 0 'not proven: the oldest records \(before seq' \
  elevate audit verify /var/log/elevate/audit.jsonl --anchor /var/lib/elevate/audit-anchor.json --allow-missing-start

# --- remove: leases end cleanly, the daemon stops, conffiles stay
expect "dpkg -r removes it" 0 '' dpkg -r elevate </dev/null
id -nG pkguser | grep -qw pkggrp && notok "removal ended the lease (membership gone)" || ok "removal ended the lease (membership gone)"
grep -q '"event":"lease.revoked".*elevate is being removed' /var/log/elevate/audit.jsonl && ok "...audited with the reason" || notok "...audited with the reason"
kill -0 "$DPID" 2>/dev/null && notok "removal stopped the daemon" || ok "removal stopped the daemon"
wait "$DPID" 2>/dev/null
[ ! -e /usr/sbin/elevated ] && [ ! -e "/$MULTIARCH/pam_elevate.so" ] && ok "binaries and module gone" || notok "binaries and module gone"
[ -f /etc/elevate/elevated.toml ] && ok "conffiles stay after remove" || notok "conffiles stay after remove"
rm -f /etc/elevate/policy.d/90-pkgtest.toml   # the admin's own file: theirs to remove
expect "dpkg -P purges it" 0 '' dpkg -P elevate </dev/null
AFTER=$(snapshot)
d=$(diff <(echo "$BEFORE") <(echo "$AFTER"))
[ -z "$d" ] && ok "purge leaves nothing behind" || notok "purge leaves nothing behind" "$d"

# --- packaging/install.sh and uninstall.sh, on the same copy of the system
BEFORE=$(snapshot)
expect "install.sh installs" 0 'installed' "$repo/packaging/install.sh"
for f in /usr/sbin/elevated /usr/bin/elevate "/$MULTIARCH/pam_elevate.so" /etc/elevate/policy.d/00-admin.toml \
         /lib/systemd/system/elevated.service /usr/share/man/man8/elevated.8.gz; do
  [ -f "$f" ] && ok "install.sh: $f" || notok "install.sh: $f"
done
[ "$(mode /var/lib/elevate)" = "700 root:root" ] && ok "install.sh: the state dir is root's, 0700" || notok "install.sh: the state dir" "$(mode /var/lib/elevate)"
echo "# edited" >>/etc/elevate/elevated.toml
expect "install.sh again keeps an edited file" 0 'kept /etc/elevate/elevated.toml' "$repo/packaging/install.sh"
grep -q '# edited' /etc/elevate/elevated.toml && [ -f /etc/elevate/elevated.toml.elevate-new ] && ok "...and puts the new one beside it" || notok "...and puts the new one beside it"
/usr/sbin/elevated >>/var/log/elevate/elevated.log 2>&1 &
DPID=$!
for _ in $(seq 100); do elevate status >/dev/null 2>&1 && break; sleep 0.05; done
expect "the installed daemon answers" 0 'elevated 0\.' elevate status
expect "uninstall.sh keeps edited configuration without --purge" 0 'kept /etc/elevate/elevated.toml' "$repo/packaging/uninstall.sh"
kill -0 "$DPID" 2>/dev/null && notok "uninstall.sh stopped the daemon" || ok "uninstall.sh stopped the daemon"
wait "$DPID" 2>/dev/null
rm -f /etc/elevate/elevated.toml /etc/elevate/elevated.toml.elevate-new
rm -rf /var/lib/elevate /var/log/elevate /run/elevate
rmdir /etc/elevate/policy.d /etc/elevate 2>/dev/null
AFTER=$(snapshot)
d=$(diff <(echo "$BEFORE") <(echo "$AFTER"))
[ -z "$d" ] && ok "uninstall.sh (plus the kept file) leaves nothing behind" || notok "uninstall.sh (plus the kept file) leaves nothing behind" "$d"
expect "install.sh, then uninstall.sh --purge" 0 'elevate removed' sh -c "'$repo/packaging/install.sh' >/dev/null && '$repo/packaging/uninstall.sh' --purge"
AFTER=$(snapshot)
d=$(diff <(echo "$BEFORE") <(echo "$AFTER"))
[ -z "$d" ] && ok "uninstall.sh --purge leaves nothing behind" || notok "uninstall.sh --purge leaves nothing behind" "$d"

# --- the README's first command, on the same copy of the system
BEFORE=$(snapshot)
expect "packaging/quickstart.sh installs, starts and shows a real elevated command" 0 'uid=0\(root\)' "$repo/packaging/quickstart.sh"
expect "...through the package" 0 '^ii +elevate ' dpkg -l elevate
expect "...which purges cleanly" 0 '' dpkg -P elevate </dev/null
rm -f /etc/elevate/policy.d/10-quickstart.toml; rmdir /etc/elevate/policy.d /etc/elevate 2>/dev/null
userdel -r elevate-demo 2>/dev/null
AFTER=$(snapshot)
d=$(diff <(echo "$BEFORE") <(echo "$AFTER") | grep -v -e 'etc/passwd' -e 'etc/group' -e 'etc/shadow' -e 'etc/gshadow' -e 'etc/subuid' -e 'etc/subgid' -e '^[0-9,]*[acd][0-9,]*$' -e '^---$')
[ -z "$d" ] && ok "...leaving nothing behind but the demo user's account files" || notok "...leaving nothing behind" "$d"

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
