#!/usr/bin/env python3
"""The workspace's declared `rust-version` must be true for its locked dependencies.

Every workspace crate must declare a `rust-version` (they inherit the workspace's), and no
package in Cargo.lock may declare a newer one: a lockfile that needs Rust 1.89 makes a
`rust-version = "1.80"` a lie that only shows up on someone else's older toolchain. (That
the code itself fits the declared version is clippy's `incompatible_msrv` lint, which the
clippy step already runs with -D warnings: it reads the same field.)

Reads `cargo metadata --locked` (python3 stdlib only). Exit status: 0 true, 1 not, 2 cargo
failed.
"""

import json
import os
import subprocess
import sys


def version(v):
    """'1.89' / '1.89.0' -> (1, 89, 0), for comparing."""
    parts = [int(p) for p in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    try:
        meta = json.loads(
            subprocess.run(
                ["cargo", "metadata", "--format-version", "1", "--locked"],
                cwd=root,
                check=True,
                stdout=subprocess.PIPE,
            ).stdout
        )
    except (OSError, subprocess.CalledProcessError, ValueError) as e:
        print(f"msrv: cargo metadata failed: {e}", file=sys.stderr)
        return 2
    members = set(meta["workspace_members"])
    ours = [p for p in meta["packages"] if p["id"] in members]
    theirs = [p for p in meta["packages"] if p["id"] not in members]
    errors = []
    declared = {}
    for p in ours:
        if p.get("rust_version"):
            declared[p["name"]] = p["rust_version"]
        else:
            errors.append(f"{p['name']}: no rust-version (add `rust-version.workspace = true`)")
    floor = min(declared.values(), key=version) if declared else None
    needs = sorted(
        (p for p in theirs if p.get("rust_version")),
        key=lambda p: version(p["rust_version"]),
    )
    if floor:
        for p in needs:
            if version(p["rust_version"]) > version(floor):
                errors.append(
                    f"{p['name']} {p['version']} needs Rust {p['rust_version']}, "
                    f"but rust-version is {floor}"
                )
    if errors:
        for e in errors:
            print(f"msrv: {e}", file=sys.stderr)
        print(
            "msrv: raise [workspace.package] rust-version in Cargo.toml to the highest "
            "version above (or pin older dependencies with `cargo update --precise`)",
            file=sys.stderr,
        )
        return 1
    top = needs[-1] if needs else None
    print(
        f"msrv: rust-version {floor} covers all {len(theirs)} locked packages"
        + (f" (the highest need: {top['name']} {top['version']}, Rust {top['rust_version']})"
           if top else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
