#!/usr/bin/env bash
# Every test elevate has, in the order a failure is cheapest to find:
# formatting and lints, unit and integration tests, then the end-to-end suite with the real
# daemon, real users and real PAM inside a private mount namespace (the machine is untouched),
# a short kill -9 campaign, and the package tests.
#
# Run as root on Debian/Ubuntu:   sudo ./tests/run-all.sh
# Installs the apt packages the tests need if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "run-all: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "the tests create users and mount namespaces: run as root (sudo $0)"

# Debian packages the tests use: unshare/setpriv (util-linux), useradd (passwd), python3 for
# protocol fuzzing, sudo/opendoas/hyperfine for the benchmark, pamtester/openssh for PAM,
# dbus/gdbus/python3-dbus/busctl for the D-Bus API, logrotate/man-db for the package tests,
# faketime to move the daemon's wall clock.
need=(util-linux passwd python3 procps sudo opendoas hyperfine pamtester openssh-server dbus gcc libpam0g-dev
      libglib2.0-bin python3-dbus python3-gi systemd logrotate man-db groff-base binutils faketime)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "run-all: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || die "no Rust toolchain: install it with rustup (https://rustup.rs), then re-run"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== msrv: the declared rust-version covers every locked dependency"
python3 tests/lint/msrv.py
echo "== module import cycles: no two sibling modules use each other"
python3 tests/lint/module-cycles.py --self-test
python3 tests/lint/module-cycles.py
echo "== sizes: no source file over 700 lines, no function over 80"
python3 tests/lint/sizes.py
echo "== cargo test (unit and integration)"
cargo test --workspace --quiet
echo "== end-to-end"
cargo build --workspace --quiet
ELEVATE_BIN_DIR="$PWD/target/debug" bash tests/e2e/run.sh
echo "== kill -9 campaign, short: 40 kills under lease traffic, 8 invariants checked after each restart"
echo "   (the long one, 1,000 kills, about 10 minutes: sudo tests/campaign/kill9.sh --self-test)"
ELEVATE_BIN_DIR="$PWD/target/debug" bash tests/campaign/kill9.sh --kills 40 --self-test
echo "== packaging: the .deb and install.sh, installed and removed in a private copy of the system"
bash tests/packaging/run.sh
