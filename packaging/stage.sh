#!/usr/bin/env bash
# Build elevate (release) and stage every installed file under $STAGE, laid out as on the
# target system. Sourced by packaging/build-deb and packaging/install.sh, which set:
#   STAGE     where to stage (emptied first)
#   PAM_DIR   the PAM module directory, relative to / (Debian: usr/lib/<multiarch>/security)
# and get back: version.
# shellcheck shell=bash
if ! command -v cargo >/dev/null; then
  for c in "${SUDO_USER:+$(getent passwd "$SUDO_USER" | cut -d: -f6)}/.cargo/bin" "$HOME/.cargo/bin"; do
    [ -x "$c/cargo" ] && PATH="$c:$PATH" && break
  done
fi
command -v cargo >/dev/null || die "no Rust toolchain: install one with rustup (https://rustup.rs)"
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
[ -n "$version" ] || die "no version in Cargo.toml"
target=${CARGO_TARGET_DIR:-$repo/target}
stage=$STAGE
gen=$stage.gen
rm -rf "$stage" "$gen"
mkdir -p "$stage"

echo "stage: building elevate $version (release)"
cargo build --release --locked --quiet -p elevated -p elevate-cli -p pam-elevate
cargo run --release --locked --quiet -p elevate-cli --example gen_docs -- "$gen"

# put MODE SRC DEST: one file into the staged tree (DEST relative to /).
put() { install -D -m "$1" "$2" "$stage/$3"; }

put 0755 "$target/release/elevate" usr/bin/elevate
put 0755 "$target/release/elevated" usr/sbin/elevated
put 0644 "$target/release/libpam_elevate.so" "$PAM_DIR/pam_elevate.so"
strip --strip-unneeded "$stage/usr/bin/elevate" "$stage/usr/sbin/elevated" \
  "$stage/$PAM_DIR/pam_elevate.so"

put 0644 packaging/systemd/elevated.service lib/systemd/system/elevated.service
put 0644 packaging/systemd/elevated.socket lib/systemd/system/elevated.socket
put 0644 packaging/tmpfiles.d/elevate.conf usr/lib/tmpfiles.d/elevate.conf
put 0644 packaging/dbus/org.elevate.Elevated1.conf usr/share/dbus-1/system.d/org.elevate.Elevated1.conf
put 0644 packaging/pam-configs/elevate usr/share/pam-configs/elevate

# Configuration: conffiles. The policy shipped in /etc grants nothing.
put 0644 packaging/logrotate/elevate etc/logrotate.d/elevate
put 0644 packaging/pam.d/elevate etc/pam.d/elevate
put 0644 packaging/etc/elevated.toml etc/elevate/elevated.toml
put 0644 packaging/etc/policy.d/00-admin.toml etc/elevate/policy.d/00-admin.toml

# Documentation: man pages, completions, the examples (policy.d is also the test fixture set).
for page in "$gen"/man1/*.1; do
  put 0644 "$page" "usr/share/man/man1/$(basename "$page")"
done
put 0644 packaging/man/elevate-policy.5 usr/share/man/man5/elevate-policy.5
put 0644 packaging/man/elevated.8 usr/share/man/man8/elevated.8
put 0644 packaging/man/pam_elevate.8 usr/share/man/man8/pam_elevate.8
find "$stage/usr/share/man" -type f -exec gzip -9n {} +
put 0644 "$gen/completions/elevate.bash" usr/share/bash-completion/completions/elevate
put 0644 "$gen/completions/_elevate" usr/share/zsh/vendor-completions/_elevate
put 0644 "$gen/completions/elevate.fish" usr/share/fish/vendor_completions.d/elevate.fish
for f in policy.d/*.toml; do
  put 0644 "$f" "usr/share/doc/elevate/examples/policy.d/$(basename "$f")"
done
for f in packaging/pam.d/*.snippet; do
  put 0644 "$f" "usr/share/doc/elevate/examples/pam.d/$(basename "$f")"
done
put 0644 README.md usr/share/doc/elevate/README.md
gzip -9n "$stage/usr/share/doc/elevate/README.md"
cat >"$stage/usr/share/doc/elevate/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: elevate

Files: *
License: $(sed -n 's/^license *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
EOF
chmod 0644 "$stage/usr/share/doc/elevate/copyright"

