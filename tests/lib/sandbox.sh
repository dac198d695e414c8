# shellcheck shell=bash
# A sandbox for tests and benchmarks that need root, real users and a real /etc, without
# touching the machine. Source it INSIDE a private mount namespace:
#
#   unshare --mount --propagation private bash -c 'source tests/lib/sandbox.sh; sandbox_setup; ...'
#
# sandbox_setup puts a tmpfs on /mnt (root-owned 0755, so the daemon's executable checks pass
# for commands placed there — /tmp is world-writable and would be refused), copies /etc into it
# and binds the copy over /etc (the directory, not single files: useradd renames files, and
# rename() onto a bind-mounted file fails with EBUSY), and puts a tmpfs on /home. Everything
# disappears with the namespace.
#
#   $SANDBOX        /mnt: scratch space, root-owned all the way up
#   $SANDBOX/bin    elevate binaries copied here (readable by test users wherever the checkout is)
#   sandbox_user NAME [GROUP...]   create a user (home on the tmpfs) in the given groups
#   sandbox_group NAME             create a group
#   as_user NAME CMD...            run CMD as NAME with a clean environment and its groups

sandbox_setup() {
  [ "$(id -u)" -eq 0 ] || { echo "sandbox: needs root" >&2; return 1; }
  if [ "$(readlink /proc/self/ns/mnt)" = "$(readlink /proc/1/ns/mnt)" ]; then
    echo "sandbox: refusing to mount outside a private mount namespace (unshare --mount --propagation private)" >&2
    return 1
  fi
  SANDBOX=/mnt
  mount -t tmpfs -o mode=0755,uid=0,gid=0 elevate-sandbox "$SANDBOX"
  cp -a /etc "$SANDBOX/etc"
  mount --bind "$SANDBOX/etc" /etc
  mount -t tmpfs -o mode=0755 elevate-home /home
  install -d -m 0755 "$SANDBOX/bin"
  export SANDBOX
}

# Copy the binaries from $1 into $SANDBOX/bin so test users can run them even when the
# checkout lives under a directory they cannot enter.
sandbox_install_bins() {
  local f
  for f in "$@"; do install -m 0755 "$f" "$SANDBOX/bin/"; done
}

sandbox_group() {
  getent group "$1" >/dev/null || groupadd "$1"
}

sandbox_user() {
  local name=$1; shift
  local g
  for g in "$@"; do sandbox_group "$g"; done
  useradd --create-home --shell /bin/bash --user-group ${1:+--groups "$(IFS=,; echo "$*")"} "$name"
  chmod 0700 "/home/$name"
}

as_user() {
  local name=$1; shift
  setpriv --reuid="$name" --regid="$(id -g "$name")" --init-groups --reset-env -- "$@"
}
