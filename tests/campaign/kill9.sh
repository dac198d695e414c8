#!/usr/bin/env bash
# The kill -9 campaign (a script, not a test: the long run takes about 10 minutes): the real
# elevated and elevate, real users and a real /etc/group, lease traffic from several clients
# while the daemon is killed with SIGKILL at random moments and restarted; after every restart
# eight invariants are checked (tests/campaign/invariants.py), and a table says how often each
# was checked and violated. Exits 1 on any violation (but those named with --known-issue).
#
#   sudo tests/campaign/kill9.sh                       1,000 kills, a seed from the clock
#   sudo tests/campaign/kill9.sh --kills 40 --seed 7 --self-test
#   ELEVATE_BIN_DIR=target/debug ...                   use already-built binaries (default: a release build)
#
# Runs in a private mount namespace with a copy of /etc (tests/lib/sandbox.sh): the users,
# groups, daemon and its state exist only there. kill9.py --help lists the options.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
source "$repo/tests/lib/sandbox.sh"

if ! { [ -n "${SANDBOX_PARENT_NS:-}" ] && sandbox_in_private_ns; }; then
  die() { echo "kill9: $*" >&2; exit 2; }
  [ "$(id -u)" -eq 0 ] || die "run as root (it creates users inside a mount namespace)"
  for t in unshare:util-linux useradd:passwd grpck:passwd python3:python3; do
    command -v "${t%%:*}" >/dev/null || die "missing ${t%%:*}: apt-get install ${t#*:}"
  done
  # Release by default: each round verifies the whole audit log, tens of MB by the end of a
  # long run, which a debug build's SHA-256 takes seconds over.
  if [ -z "${ELEVATE_BIN_DIR:-}" ]; then
    if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then PATH=$HOME/.cargo/bin:$PATH; fi
    (cd "$repo" && cargo build --release --quiet -p elevated -p elevate-cli) ||
      die "build failed (cargo build --release -p elevated -p elevate-cli)"
    ELEVATE_BIN_DIR="${CARGO_TARGET_DIR:-$repo/target}/release"
  fi
  ELEVATE_BIN_DIR=$(cd "$ELEVATE_BIN_DIR" && pwd)
  export ELEVATE_BIN_DIR
  sandbox_enter "$0" "$@"
fi

# --- inside the namespace ---------------------------------------------------------------
sandbox_setup
sandbox_install_bins "$ELEVATE_BIN_DIR/elevated" "$ELEVATE_BIN_DIR/elevate"
rm -rf /etc/elevate   # the copy of /etc is the machine's: an installed elevate's config stays out

# The cast: six requesters, three approvers (in the approver group), three granted groups,
# and one requester who is a standing member of a granted group that a profile of theirs
# also grants (the lease must never add or remove that membership).
CAMPAIGN_REQUESTERS="k9req1 k9req2 k9req3 k9req4 k9req5 k9req6"
CAMPAIGN_APPROVERS="k9appr1 k9appr2 k9appr3"
CAMPAIGN_LEADS=k9leads
CAMPAIGN_GRANTED="k9grant-a k9grant-b k9grant-c"
CAMPAIGN_STANDING="k9req6:k9grant-b"
for g in $CAMPAIGN_GRANTED; do sandbox_group "$g"; done
for u in $CAMPAIGN_REQUESTERS; do sandbox_user "$u"; done
for u in $CAMPAIGN_APPROVERS; do sandbox_user "$u" "$CAMPAIGN_LEADS"; done
for s in $CAMPAIGN_STANDING; do usermod -aG "${s#*:}" "${s%%:*}"; done
export CAMPAIGN_REQUESTERS CAMPAIGN_APPROVERS CAMPAIGN_LEADS CAMPAIGN_GRANTED CAMPAIGN_STANDING
# No __pycache__ in the checkout (kill9.py imports invariants.py).
PYTHONDONTWRITEBYTECODE=1 python3 "$here/kill9.py" "$@"
