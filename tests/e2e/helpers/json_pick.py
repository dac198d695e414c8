#!/usr/bin/env python3
"""Pick values out of JSON on stdin, for the e2e shell tests (lib.sh's json_get, json_count, json_has).

    json_pick.py get [--json] PATH     print each value PATH selects, one per line; fail if none
    json_pick.py count PATH            print how many values PATH selects (0 is an answer, not an error)
    json_pick.py has PATH...           succeed when every PATH selects at least one value

PATH is a small subset of jq:
    .                 the whole document
    .key              a member of an object (a missing key is an error, naming it)
    [N]               element N of an array (negative counts from the end)
    []                every element of an array
    [k=v]             the elements of an array whose member k is v; [k=v,k2=w] all must hold;
                      [k=v|w] either value; values are compared as get prints them
    ... | length      the length of each selected array, object or string
    ... | keys        the keys of each selected object, sorted, one per line
e.g. '.leases[state=pending].id', '.profiles | length', '.last_reload.errors'.

get prints strings as they are and everything else as JSON (true, null, [1, 2]); with --json
strings are quoted too, so that `false` and "false" differ. When PATH does not fit the JSON,
the message says which step failed and why, and shows the JSON.
"""
import json
import os
import re
import sys

SHOW = 1500  # characters of the JSON shown in an error


class PathError(Exception):
    pass


def text(v, as_json=False):
    if isinstance(v, str) and not as_json:
        return v
    return json.dumps(v)


def parse(path):
    """PATH -> (steps, func). Steps: ("key", k) | ("index", n) | ("each",) | ("where", [(k, {v...})])."""
    func = None
    m = re.match(r"^(.*?)\s*\|\s*(length|keys)\s*$", path, re.S)
    if m:
        path, func = m.group(1), m.group(2)
    path = path.strip()
    if not path.startswith((".", "[")):
        raise PathError("a path starts with '.' (e.g. .leases[0].id), not %r" % path)
    steps, i = [], 0
    if path == ".":
        return steps, func
    while i < len(path):
        if path[i] == ".":
            m = re.compile(r"\.([A-Za-z0-9_-]+)").match(path, i)
            if not m:
                raise PathError("expected a key after '.' at %r" % path[i:])
            steps.append(("key", m.group(1)))
            i = m.end()
        elif path[i] == "[":
            j = path.find("]", i)
            if j < 0:
                raise PathError("unclosed '[' at %r" % path[i:])
            inner = path[i + 1:j]
            if inner == "":
                steps.append(("each",))
            elif re.fullmatch(r"-?[0-9]+", inner):
                steps.append(("index", int(inner)))
            else:
                conds = []
                for c in inner.split(","):
                    k, eq, v = c.partition("=")
                    if not eq or not re.fullmatch(r"[A-Za-z0-9_-]+", k):
                        raise PathError("expected [N], [] or [key=value] at %r" % path[i:j + 1])
                    conds.append((k, set(v.split("|"))))
                steps.append(("where", conds))
            i = j + 1
        else:
            raise PathError("unexpected %r at %r" % (path[i], path[i:]))
    return steps, func


def kind(v):
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null", int: "a number", float: "a number"}[type(v)]


def select(doc, steps):
    """The values the steps select, with the path that led to each; and why a step left none."""
    cur = [(doc, "")]
    why_none = None
    for step in steps:
        nxt = []
        for v, at in cur:
            where = at or "."
            if step[0] == "key":
                k = step[1]
                if not isinstance(v, dict):
                    raise PathError("%s is %s, so it has no key %r" % (where, kind(v), k))
                if k not in v:
                    keys = ", ".join(sorted(v)) or "none"
                    raise PathError("no key %r at %s (its keys: %s)" % (k, where, keys))
                nxt.append((v[k], "%s.%s" % (at, k)))
            elif step[0] == "index":
                n = step[1]
                if not isinstance(v, list):
                    raise PathError("%s is %s, not an array, so it has no [%d]" % (where, kind(v), n))
                if not -len(v) <= n < len(v):
                    raise PathError("%s has %d element(s), so no [%d]" % (where, len(v), n))
                nxt.append((v[n], "%s[%d]" % (at, n)))
            elif step[0] == "each":
                if not isinstance(v, list):
                    raise PathError("%s is %s, not an array, so it has no []" % (where, kind(v)))
                if not v:
                    why_none = "%s is an empty array" % where
                nxt.extend((e, "%s[%d]" % (at, n)) for n, e in enumerate(v))
            else:
                conds = step[1]
                label = ",".join("%s=%s" % (k, "|".join(sorted(vs))) for k, vs in conds)
                if not isinstance(v, list):
                    raise PathError("%s is %s, not an array, so it has no [%s]" % (where, kind(v), label))
                hits = [(e, "%s[%s]" % (at, label)) for e in v
                        if isinstance(e, dict) and all(k in e and text(e[k]) in vs for k, vs in conds)]
                if not hits:
                    why_none = "no element of %s (%d in all) has %s" % (where, len(v), label)
                nxt.extend(hits)
        cur = nxt
    return cur, why_none


def apply_func(func, vals):
    out = []
    for v, at in vals:
        if func == "length":
            if not isinstance(v, (list, dict, str)):
                raise PathError("%s is %s, which has no length" % (at or ".", kind(v)))
            out.append(len(v))
        else:
            if not isinstance(v, dict):
                raise PathError("%s is %s, which has no keys" % (at or ".", kind(v)))
            out.extend(sorted(v))
    return out


def main(argv):
    if len(argv) < 2 or argv[0] not in ("get", "count", "has"):
        sys.exit("usage: json_pick.py get [--json] PATH | count PATH | has PATH...  (JSON on stdin)")
    mode, args = argv[0], argv[1:]
    as_json = False
    if mode == "get" and args[0] == "--json":
        as_json, args = True, args[1:]
    if not args or (mode != "has" and len(args) != 1):
        sys.exit("json_%s: wrong arguments: %s" % (mode, " ".join(argv[1:])))
    raw = sys.stdin.read()
    name = "json_" + mode
    if not raw.strip():
        print("%s %s: no JSON on stdin (the input is empty)" % (name, " ".join(args)), file=sys.stderr)
        return 1
    try:
        doc = json.loads(raw)
    except ValueError as e:
        print("%s %s: the input is not JSON (%s); it begins:\n    %s" % (name, " ".join(args), e, raw[:300]),
              file=sys.stderr)
        return 1
    shown = json.dumps(doc, separators=(",", ":"))
    if len(shown) > SHOW:
        shown = shown[:SHOW] + "... (%d characters in all)" % len(shown)
    for path in args:
        try:
            steps, func = parse(path)
            vals, why_none = select(doc, steps)
            if func:
                vals = [(v, "") for v in apply_func(func, vals)]
        except PathError as e:
            print("%s %s: %s\n    JSON: %s" % (name, path, e, shown), file=sys.stderr)
            return 1
        if mode == "count":
            print(len(vals))
        elif not vals:
            print("%s %s: nothing there: %s\n    JSON: %s" % (name, path, why_none or "no value", shown),
                  file=sys.stderr)
            return 1
        elif mode == "get":
            try:
                sys.stdout.write("".join(text(v, as_json) + "\n" for v, _ in vals))
                sys.stdout.flush()
            except BrokenPipeError:
                # The reader had enough (`| head -1`, `| grep -q`): that is not a failure.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
