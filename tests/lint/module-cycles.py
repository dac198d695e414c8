#!/usr/bin/env python3
"""Import cycles between sibling modules, in every crate of the workspace.

A module may use its parent's items (that is how Rust folders work), and a parent its
children's; but two modules at the same level that use each other, directly or around a
longer loop, are one module split in the wrong place. This reports such loops at every
level: between the top-level modules of a crate (`daemon: conn -> conversation -> conn`)
and between the children of each folder module (`daemon: state::leases -> state::logins ->
state::leases`).

How it reads the code (python3 stdlib only, no compiler):

* Each crate root (`src/lib.rs`, `src/main.rs`, `[[bin]]` paths) is followed through its
  `mod` declarations (files, folders with `mod.rs`, `#[path]`, inline `mod x { }`), so
  every source file gets its module path.
* Comments and string literals are blanked first, so doc links and messages are not code.
* Test code is skipped: items under `#[cfg(test)]` (test modules included) and files named
  `tests.rs` or `*_tests.rs`.
* Edges come from `use` declarations (`crate::`, `super::`, `self::`, and names already in
  scope) and from `crate::`/`super::`/`self::` paths written in code. A path that names an
  item a module re-exports or imports (`pub use leases::LeaseOp;` in `state`, then
  `super::LeaseOp` in a child) is followed to where the item lives, so re-exports do not
  hide a dependency. Glob imports are followed when the name is defined in the glob's source.

Limits: names that arrive only through a glob import of a parent (`use super::*;`) and are
then used unqualified are not seen; macros are not expanded.

Exit status: 0 no cycles; 1 cycles (each printed, with one place that makes each edge);
2 usage or I/O error. `--self-test` checks the script on small made-up crates.
"""

import os
import re
import sys
import tempfile

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
ITEM_RE = re.compile(
    r"\b(?:fn|struct|enum|union|trait|type|static|mod|const(?!\s+(?:fn|unsafe|async|extern)\b))"
    r"\s+(" + IDENT + r")"
    r"|\bmacro_rules!\s*(" + IDENT + r")"
)
PATH_RE = re.compile(
    r"(?<![\w$])((?:crate|self|super)(?:::super)*)::(" + IDENT + r"(?:::" + IDENT + r")*)"
)
MOD_RE = re.compile(
    r"(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*([;{])"
)
PATH_ATTR_RE = re.compile(r'#\[path\s*=\s*"([^"]*)"\]')
CFG_TEST_RE = re.compile(r"#\[cfg\(test\)\]")


# ---------------------------------------------------------------------------------------
# Lexing: blank comments and literals (keeping newlines, so line numbers stay right).


def blank(text):
    """`text` with comments, strings and char literals replaced by spaces. String
    literals keep their quotes and `#[path = "..."]` attributes are kept whole (the
    module tree needs them)."""
    out = []
    i, n = 0, len(text)

    def spaces(s):
        return "".join(c if c == "\n" else " " for c in s)

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(spaces(text[i:j]))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(spaces(text[i:j]))
            i = j
        elif c == "#" and PATH_ATTR_RE.match(text, i):
            m = PATH_ATTR_RE.match(text, i)
            out.append(m.group(0))
            i = m.end()
        elif c in "rbc" and re.match(r"(?:br|cr|r)#*\"", text[i:i + 260]) and not (
            i and (text[i - 1].isalnum() or text[i - 1] == "_")
        ):
            m = re.match(r"(?:br|cr|r)(#*)\"", text[i:])
            close = '"' + m.group(1)
            j = text.find(close, i + m.end())
            j = n if j < 0 else j + len(close)
            out.append(spaces(text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('"' + spaces(text[i + 1:j]) + '"')
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{7f}') or a lifetime / label ('a, 'static).
            if i + 1 < n and text[i + 1] == "\\":
                j = text.find("'", i + 3)  # past the escaped character: '\'' '\\'
                j = n if j < 0 else j + 1
            elif i + 2 < n and text[i + 2] == "'":
                j = i + 3
            else:
                out.append(c)
                i += 1
                continue
            out.append(spaces(text[i:j]))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def item_end(text, start):
    """End of the item starting at `start`: after its first `;` outside brackets, or after
    the `}` closing its first top-level `{`."""
    depth, i = 0, start
    while i < len(text):
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0 and c == "}":
                return i + 1
        elif c == ";" and depth == 0:
            return i + 1
        i += 1
    return len(text)


def drop_test_items(code):
    """`code` with every `#[cfg(test)]` item blanked."""
    while True:
        m = CFG_TEST_RE.search(code)
        if not m:
            return code
        end = item_end(code, m.end())
        code = code[: m.start()] + "".join(
            ch if ch == "\n" else " " for ch in code[m.start():end]
        ) + code[end:]


def top_level_spans(code):
    """(start, end) of the text at brace depth 0 of `code`, as a list of ranges."""
    spans, depth, start = [], 0, 0
    for i, c in enumerate(code):
        if c == "{":
            if depth == 0:
                spans.append((start, i))
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                start = i + 1
    spans.append((start, len(code)))
    return spans


def at_top_level(code, pos, spans):
    return any(s <= pos < e for s, e in spans)


# ---------------------------------------------------------------------------------------
# Module tree.


class Module:
    def __init__(self, path, file, code, line_offset, dir_):
        self.path = path  # tuple of names below the crate root
        self.file = file
        self.code = code  # blanked, tests removed, inline children blanked
        self.line_offset = line_offset  # line of `code`'s first character in `file`
        self.dir = dir_  # where `mod x;` looks for x.rs / x/mod.rs
        self.children = {}
        self.aliases = {}  # name -> absolute path (tuple), from `use`
        self.globs = []  # absolute paths of `use X::*`
        self.items = set()
        self.uses = []  # (absolute path, line) of every use-declared path


def is_test_file(path):
    base = os.path.basename(path)
    return base == "tests.rs" or base.endswith("_tests.rs")


def load_tree(root_file, problems):
    """Every module of the crate rooted at `root_file`, by path."""
    modules = {}

    def visit(path, file, code, line_offset, dir_):
        mod = Module(path, file, code, line_offset, dir_)
        modules[path] = mod
        spans = top_level_spans(code)
        for m in MOD_RE.finditer(code):
            if not at_top_level(code, m.start(), spans):
                continue
            name, kind = m.group(1), m.group(2)
            before = code[max(0, m.start() - 300):m.start()]
            attr = list(PATH_ATTR_RE.finditer(before))
            explicit = None
            if attr and not before[attr[-1].end():].strip():
                explicit = attr[-1].group(1)
            child_path = path + (name,)
            if kind == "{":
                end = item_end(code, m.start())
                inner_start = m.end()
                inner = code[inner_start:end - 1]
                line = line_offset + code.count("\n", 0, inner_start)
                child_dir = os.path.join(dir_, name)
                visit(child_path, file, inner, line, child_dir)
                # The parent's own code no longer holds the child's.
                mod.code = mod.code[:inner_start] + "".join(
                    ch if ch == "\n" else " " for ch in inner
                ) + mod.code[end - 1:]
                mod.children[name] = child_path
                continue
            if explicit:
                candidates = [os.path.join(os.path.dirname(file), explicit)]
            else:
                candidates = [
                    os.path.join(dir_, name + ".rs"),
                    os.path.join(dir_, name, "mod.rs"),
                ]
            found = next((c for c in candidates if os.path.isfile(c)), None)
            if found is None:
                problems.append(f"{file}: mod {name}: no file ({' or '.join(candidates)})")
                continue
            if is_test_file(found):
                continue
            mod.children[name] = child_path
            with open(found, encoding="utf-8") as f:
                child_code = drop_test_items(blank(f.read()))
            if os.path.basename(found) == "mod.rs" or explicit:
                child_dir = os.path.dirname(found) if os.path.basename(found) == "mod.rs" else (
                    os.path.join(os.path.dirname(found), name)
                )
            else:
                child_dir = os.path.join(dir_, name)
            visit(child_path, found, child_code, 1, child_dir)

    with open(root_file, encoding="utf-8") as f:
        code = drop_test_items(blank(f.read()))
    visit((), root_file, code, 1, os.path.dirname(root_file))
    return modules


# ---------------------------------------------------------------------------------------
# `use` trees.


def split_top(s, sep=","):
    parts, depth, cur = [], 0, []
    for c in s:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if c == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def expand_use(tree, prefix=()):
    """(segments, bound name or '*' or None) for every leaf of a use tree."""
    tree = re.sub(r"\s+", " ", tree).strip()
    if tree.startswith("::"):
        tree = tree[2:]
    if tree.startswith("{") and tree.endswith("}"):
        out = []
        for part in split_top(tree[1:-1]):
            out += expand_use(part, prefix)
        return out
    m = re.match(r"^(.*?)::\s*(\{.*\}|\*)$", tree, re.S)
    if m:
        head = tuple(s.strip() for s in m.group(1).split("::") if s.strip())
        if m.group(2) == "*":
            return [(prefix + head, "*")]
        return expand_use(m.group(2), prefix + head)
    m = re.match(r"^(.*?)(?:\s+as\s+(" + IDENT + r"))?$", tree, re.S)
    segs = tuple(s.strip() for s in m.group(1).split("::") if s.strip())
    if tree == "*":
        return [(prefix, "*")]
    if segs == ("self",):
        segs = ()
        name = m.group(2) or (prefix[-1] if prefix else None)
        return [(prefix, name)]
    name = m.group(2) or (segs[-1] if segs else None)
    if name == "_":
        name = None
    return [(prefix + segs, name)]


def absolute(mod, segs, modules):
    """The crate-absolute form of a path written in `mod`, or None (another crate)."""
    if not segs:
        return None
    here = mod.path
    first = segs[0]
    if first == "crate":
        return tuple(segs[1:])
    if first in ("self", "super"):
        base = list(here)
        i = 0
        while i < len(segs) and segs[i] in ("self", "super"):
            if segs[i] == "super":
                if not base:
                    return None
                base.pop()
            i += 1
        return tuple(base) + tuple(segs[i:])
    if first in mod.children:
        return here + tuple(segs)
    if first in mod.aliases:
        return mod.aliases[first] + tuple(segs[1:])
    return None


def collect_uses(mod, modules):
    code = mod.code
    spans = top_level_spans(code)
    for m in re.finditer(r"\buse\b", code):
        rest = code[m.end():]
        if rest.lstrip().startswith("<"):
            continue  # `impl Trait + use<'a>`
        end = code.find(";", m.end())
        if end < 0:
            continue
        line = mod.line_offset + code.count("\n", 0, m.start())
        for segs, name in expand_use(code[m.end():end]):
            path = absolute(mod, segs, modules)
            if path is None:
                continue
            mod.uses.append((path, line))
            if not at_top_level(code, m.start(), spans):
                continue
            if name == "*":
                mod.globs.append(path)
            elif name:
                mod.aliases[name] = path


def collect_items(mod):
    code = mod.code
    spans = top_level_spans(code)
    for m in ITEM_RE.finditer(code):
        if at_top_level(code, m.start(), spans):
            mod.items.add(m.group(1) or m.group(2))


def resolve(path, modules, seen=None):
    """The module that holds what `path` (crate-absolute) names."""
    seen = set() if seen is None else seen
    if path in seen:
        return ()
    seen.add(path)
    here = ()
    for i, name in enumerate(path):
        mod = modules.get(here)
        if mod is None:
            return here
        if name in mod.children:
            here = mod.children[name]
            continue
        if name in mod.items:
            return here
        if name in mod.aliases:
            return resolve(mod.aliases[name] + tuple(path[i + 1:]), modules, seen)
        for g in mod.globs:
            src = modules.get(resolve(g, modules, seen))
            if src and (name in src.children or name in src.items or name in src.aliases):
                return resolve(g + tuple(path[i:]), modules, seen)
        return here
    return here


# ---------------------------------------------------------------------------------------
# Edges and cycles.


def edges_of(modules):
    """{parent path: {(a, b): (file, line)}}: sibling a uses sibling b, first place seen."""
    groups = {}
    for mod in modules.values():
        refs = list(mod.uses)
        for m in PATH_RE.finditer(mod.code):
            segs = tuple(m.group(1).split("::")) + tuple(m.group(2).split("::"))
            path = absolute(mod, segs, modules)
            if path is not None:
                refs.append((path, mod.line_offset + mod.code.count("\n", 0, m.start())))
        for path, line in refs:
            target = resolve(path, modules)
            here = mod.path
            for k in range(min(len(here), len(target))):
                if here[k] != target[k]:
                    group = groups.setdefault(here[:k], {})
                    group.setdefault((here[k], target[k]), (mod.file, line))
                    break
    return groups


def sccs(nodes, adj):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(adj.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            strong(v)
    return [c for c in out if len(c) > 1]


def cycles_in(comp, adj, limit=50):
    """Elementary cycles of one strongly connected component, each starting at its
    smallest node, at most `limit`."""
    found = []
    order = {v: i for i, v in enumerate(comp)}
    for s in comp:
        stack = [(s, [s])]
        while stack and len(found) < limit:
            v, path = stack.pop()
            for w in sorted(adj.get(v, ()), reverse=True):
                if w not in order or order[w] < order[s]:
                    continue
                if w == s:
                    found.append(path + [s])
                elif w not in path:
                    stack.append((w, path + [w]))
    found.sort(key=lambda c: (len(c), c))
    return found[:limit]


def crate_roots(crate_dir):
    """(label suffix, root file) of the crate's library and binaries."""
    manifest = os.path.join(crate_dir, "Cargo.toml")
    lib_path, bins = None, []
    try:
        import tomllib

        with open(manifest, "rb") as f:
            data = tomllib.load(f)
        lib_path = (data.get("lib") or {}).get("path")
        bins = [b.get("path") for b in data.get("bin", []) if b.get("path")]
    except (ImportError, OSError, ValueError):
        pass
    roots = []
    lib = os.path.join(crate_dir, lib_path or "src/lib.rs")
    if os.path.isfile(lib):
        roots.append(("", lib))
    bin_files = [os.path.join(crate_dir, b) for b in bins]
    main = os.path.join(crate_dir, "src/main.rs")
    if os.path.isfile(main) and main not in bin_files:
        bin_files.append(main)
    bin_dir = os.path.join(crate_dir, "src/bin")
    if os.path.isdir(bin_dir):
        bin_files += sorted(
            os.path.join(bin_dir, f) for f in os.listdir(bin_dir) if f.endswith(".rs")
        )
    for b in bin_files:
        if os.path.isfile(b):
            roots.append((" (bin)" if roots else "", b))
    return roots


def workspace_members(root):
    with open(os.path.join(root, "Cargo.toml"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^members\s*=\s*\[(.*?)\]", text, re.S | re.M)
    if not m:
        return ["."]
    return re.findall(r'"([^"]+)"', m.group(1))


def check_crate(label, root_file, out):
    """Append the crate's cycles to `out`; return their count and the files not found."""
    problems = []
    modules = load_tree(root_file, problems)
    for mod in modules.values():
        collect_items(mod)
    # Aliases may build on each other (`use leases::x; use crate::leases;`, in any order): the
    # second pass sees every alias the first one found.
    for _ in range(2):
        for mod in modules.values():
            mod.globs, mod.uses = [], []
            collect_uses(mod, modules)
    count = 0
    for parent, edges in sorted(edges_of(modules).items()):
        adj = {}
        for a, b in edges:
            adj.setdefault(a, set()).add(b)
        prefix = "".join(p + "::" for p in parent)
        for comp in sccs(list(adj), adj):
            for cyc in cycles_in(comp, adj):
                count += 1
                out.append(f"{label}: " + " -> ".join(prefix + c for c in cyc))
                for a, b in zip(cyc, cyc[1:]):
                    file, line = edges[(a, b)]
                    out.append(f"    {prefix}{a} -> {prefix}{b}: {file}:{line}")
    return count, problems


def run(root, out):
    total, problems = 0, []
    for member in workspace_members(root):
        crate_dir = os.path.relpath(os.path.join(root, member))
        for suffix, root_file in crate_roots(crate_dir):
            label = os.path.relpath(crate_dir, root) + suffix
            n, p = check_crate(label, root_file, out)
            total += n
            problems += p
    return total, problems


# ---------------------------------------------------------------------------------------
# Self-test: small made-up crates with known answers.


def self_test():
    cases = {
        # Two top-level modules using each other, one through a re-export of the root.
        "direct": ({
            "src/lib.rs": "mod a;\nmod b;\npub use b::Thing;\n",
            "src/a.rs": "use crate::Thing;\npub fn f() {}\n",
            "src/b.rs": "pub struct Thing;\nfn g() { crate::a::f() }\n",
        }, ["x: a -> b -> a"]),
        # Children using their parent and the parent using its children: no cycle.
        # Comments, strings and test code never count.
        "parent-child": ({
            "src/lib.rs": "mod state;\nmod conn;\n",
            "src/state/mod.rs": "mod leases;\npub use leases::Lease;\npub struct State;\n",
            "src/state/leases.rs": "use super::State;\npub struct Lease;\n",
            "src/conn.rs": (
                "use crate::state::Lease;\n// crate::x::y\n/* use crate::conn; */\n"
                "const S: &str = \"crate::conn::z\";\n#[cfg(test)]\nmod tests {\n"
                "    use crate::conn;\n}\n"
            ),
        }, []),
        # Siblings inside a folder, through `super::` and a parent's private import.
        "nested": ({
            "src/main.rs": "mod state;\n",
            "src/state/mod.rs": (
                "mod leases;\nmod logins;\nuse logins::Login;\npub struct State;\n"
            ),
            "src/state/leases.rs": "use super::Login;\npub struct Lease;\n",
            "src/state/logins.rs": "pub struct Login;\nfn f(_: super::leases::Lease) {}\n",
        }, ["x: state::leases -> state::logins -> state::leases"]),
        # A longer loop, a glob re-export, inline modules, tests.rs files and `$crate`.
        "longer": ({
            "src/lib.rs": (
                "mod a;\nmod b;\nmod c;\n#[cfg(test)]\nmod tests;\npub use c::*;\n"
                "mod inline { pub fn h() { crate::a::f() } }\n"
            ),
            "src/a.rs": "pub fn f() { crate::b::g() }\n",
            "src/b.rs": "use self::inner::x;\nuse crate::deep;\nmod inner { pub fn x() {} }\n",
            "src/c.rs": (
                "pub const fn deep() {}\npub struct Deep;\n"
                "macro_rules! m { () => { $crate::b::g() } }\n"
                "fn k() { let _ = ['\"', '\\'', '{']; let _ = r#\"crate::b::g\"#; crate::a::f() }\n"
            ),
            "src/tests.rs": "use crate::a;\nuse crate::c;\n",
        }, ["x: a -> b -> c -> a"]),
    }
    failed = 0
    for name, (files, want) in cases.items():
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "Cargo.toml"), "w") as f:
                f.write('[workspace]\nmembers = ["x"]\n')
            for rel, text in files.items():
                p = os.path.join(d, "x", rel)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "w") as f:
                    f.write(text)
            out = []
            run(d, out)
            got = [line for line in out if not line.startswith(" ")]
            if got != want:
                failed += 1
                print(f"self-test {name}: got {got}, want {want}", file=sys.stderr)
                print("\n".join(out), file=sys.stderr)
    print(f"module-cycles self-test: {len(cases) - failed}/{len(cases)} passed")
    return 1 if failed else 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) > 2 or (len(argv) == 2 and argv[1].startswith("-")):
        print(f"usage: {argv[0]} [--self-test | WORKSPACE_DIR]", file=sys.stderr)
        return 2
    root = argv[1] if len(argv) == 2 else os.path.join(os.path.dirname(__file__), "..", "..")
    os.chdir(root)
    out = []
    try:
        total, problems = run(".", out)
    except OSError as e:
        print(f"module-cycles: {e}", file=sys.stderr)
        return 2
    for p in problems:
        print(f"module-cycles: warning: {p}", file=sys.stderr)
    if out:
        print("\n".join(out))
        print(
            f"module-cycles: {total} cycle(s) between sibling modules; move what both sides "
            "need into one of them, a new module, or the parent",
            file=sys.stderr,
        )
        return 1
    print("module-cycles: no cycles between sibling modules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
