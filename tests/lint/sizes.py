#!/usr/bin/env python3
"""Sizes that keep the code readable: no non-test Rust source file over 700 lines and no
function over 80 lines (both counted as written, comments included), in every workspace crate.

Test code does not count: files named tests.rs, *_tests.rs or under a tests/ folder, and
everything from a `#[cfg(test)]` line to the end of a file (where this codebase keeps its
test modules). Exits 1 and lists what is too long.

    python3 tests/lint/sizes.py [--max-file N] [--max-fn N]
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FN = re.compile(r"^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?(?:extern\s+\"C\"\s+)?fn\s+(\w+)")


def is_test_file(path):
    parts = path.split(os.sep)
    name = parts[-1]
    return name == "tests.rs" or name.endswith("_tests.rs") or "tests" in parts[:-1]


def code_lines(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        if line.strip() == "#[cfg(test)]":
            return lines[:i]
    return lines


def is_declaration(lines, i):
    """A signature that ends in `;` before any body opens (a trait method without a default)."""
    for line in lines[i:]:
        text = line.split("//")[0].rstrip()
        if "{" in text:
            return False
        if text.endswith(";"):
            return True
    return True


def functions(lines):
    """(name, first line, length) of each fn whose body closes at its own indentation."""
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m or is_declaration(lines, i):
            continue
        indent = m.group(1)
        for j in range(i, len(lines)):
            if lines[j] == indent + "}" or (j == i and line.rstrip().endswith("}")):
                yield m.group(2), i + 1, j - i + 1
                break


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-file", type=int, default=700)
    ap.add_argument("--max-fn", type=int, default=80)
    args = ap.parse_args()
    found = []
    for top in sorted(os.listdir(ROOT)):
        src = os.path.join(ROOT, top, "src")
        if top in ("target", "fuzz") or not os.path.isdir(src):
            continue
        for dirpath, _, files in os.walk(src):
            for name in sorted(files):
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, ROOT)
                if not name.endswith(".rs") or is_test_file(rel):
                    continue
                lines = code_lines(path)
                if len(lines) > args.max_file:
                    found.append(f"{rel}: {len(lines)} lines (at most {args.max_file})")
                for fname, at, n in functions(lines):
                    if n > args.max_fn:
                        found.append(f"{rel}:{at}: fn {fname} is {n} lines (at most {args.max_fn})")
    for f in found:
        print(f)
    if found:
        print(f"sizes: {len(found)} too long; split along a real seam")
        return 1
    print("sizes: every file and function within bounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
