#!/usr/bin/env bash
# Internal module dependency graph of the crate: every `use crate::...` / `use super::...` /
# `use self::...` (incl. nested and multi-line use trees, `pub use`, globs) and every inline path
# such as `crate::a::b::f(` or `super::x::Y`, each resolved to the longest existing module
# (a module is a file: src/a/b.rs -> a::b, src/a/mod.rs -> a, src/lib.rs -> crate, src/main.rs ->
# main, where `hookpipe::` means the library root). `#[cfg(test)]` items (e.g. `mod tests {}`),
# comments and string literals are ignored. Fails on an import cycle (a strongly connected
# component of more than one module) and reports files with many non-test lines.
#
# Edges to a module's own ancestors count (`use crate::pipeline::Stage` in pipeline::verify);
# `mod child;` declarations do not, nor do bare relative paths such as `use child::Item;` or
# `child::f()` (a parent naming its own submodules without `self::`), unless --child-paths.
#
#   scripts/module-deps.sh                  # summary; exit 1 if there is a cycle
#   scripts/module-deps.sh --list           # also every edge `a -> b` with its import sites
#   scripts/module-deps.sh --max-lines 600  # also exit 1 if a file has > 600 non-test lines
#
# Needs only bash and python3; does not build anything.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec python3 - "$@" <<'PY'
import os
import re
import sys
from collections import defaultdict, deque

USAGE = """usage: scripts/module-deps.sh [--list] [--max-lines N] [--depth N] [--child-paths] [--crate NAME] [--src DIR]
  --list          print every internal edge `a -> b` (with the file:line sites causing it)
  --max-lines N   fail (exit 1) if a file has more than N lines outside #[cfg(test)] items
                  (without it: report files over 800 such lines, but do not fail on them)
  --depth N       collapse modules to their first N path segments (--depth 1: pipeline::verify::scheme
                  counts as pipeline) to see cycles between module trees; default: one module a file
  --child-paths   also resolve bare paths naming a child module (`use child::X`, `child::f()`)
  --crate NAME    library crate name, treated as `crate::` in main.rs (default: from Cargo.toml)
  --src DIR       source directory, relative to the crate root (default: src)
exit status: 0 no cycles, 1 cycle (or --max-lines violation), 2 usage error"""


def die_usage(msg=None):
    if msg:
        print(f"module-deps: {msg}", file=sys.stderr)
    print(USAGE, file=sys.stderr)
    sys.exit(2)


args = sys.argv[1:]
opt_list = False
opt_child = False
depth = None
max_lines = 800
max_lines_explicit = False
crate_name = None
src_dir = "src"
i = 0
while i < len(args):
    a = args[i]
    if a == "--list":
        opt_list = True
    elif a == "--child-paths":
        opt_child = True
    elif a in ("-h", "--help"):
        print(USAGE)
        sys.exit(0)
    elif a in ("--max-lines", "--depth", "--crate", "--src") or a.startswith(("--max-lines=", "--depth=", "--crate=", "--src=")):
        if "=" in a:
            a, val = a.split("=", 1)
        else:
            i += 1
            if i >= len(args):
                die_usage(f"{a} needs a value")
            val = args[i]
        if a == "--max-lines":
            if not val.isdigit():
                die_usage(f"--max-lines wants a number, got {val!r}")
            max_lines = int(val)
            max_lines_explicit = True
        elif a == "--depth":
            if not val.isdigit() or int(val) < 1:
                die_usage(f"--depth wants a number >= 1, got {val!r}")
            depth = int(val)
        elif a == "--crate":
            crate_name = val
        else:
            src_dir = val.rstrip("/")
    else:
        die_usage(f"unknown argument {a!r}")
    i += 1

if crate_name is None:
    crate_name = "hookpipe"
    try:
        with open("Cargo.toml", encoding="utf-8") as f:
            in_pkg = False
            for line in f:
                s = line.strip()
                if s.startswith("["):
                    in_pkg = s == "[package]"
                elif in_pkg:
                    m = re.match(r'name\s*=\s*"([^"]+)"', s)
                    if m:
                        crate_name = m.group(1).replace("-", "_")
                        break
    except OSError:
        pass

if not os.path.isdir(src_dir):
    die_usage(f"no source directory {src_dir!r} (run from a crate, or pass --src)")

# ---------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------
MAIN_KEY = ("<main>",)
modules = {}  # module path tuple -> relative file
for root, dirs, files in os.walk(src_dir):
    dirs.sort()
    rel_dir = os.path.relpath(root, src_dir)
    parts = [] if rel_dir == "." else rel_dir.split(os.sep)
    if parts and parts[0] == "bin":
        continue  # other binaries are separate crates
    for fn in sorted(files):
        if not fn.endswith(".rs"):
            continue
        path = os.path.join(root, fn)
        stem = fn[:-3]
        if not parts and stem == "lib":
            key = ()
        elif not parts and stem == "main":
            key = MAIN_KEY
        elif stem == "mod":
            key = tuple(parts)
        else:
            key = tuple(parts) + (stem,)
        modules[key] = os.path.relpath(path, ".")


def mname(key):
    if key == ():
        return "crate"
    if key == MAIN_KEY:
        return "main"
    return "::".join(key)


# ---------------------------------------------------------------------------------------------
# Lexing: blank comments and string/char literal contents, keeping every newline
# ---------------------------------------------------------------------------------------------
RAW_START = re.compile(r'(?:b|c)?r(#*)"')


def strip_code(text):
    out = []
    n = len(text)
    i = 0

    def blank(s):
        return re.sub(r"[^\n]", " ", s)

    while i < n:
        c = text[i]
        if c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c == "/" and text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(text[i:j]))
            i = j
        elif c in "rbc" and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")) and RAW_START.match(text, i):
            m = RAW_START.match(text, i)
            end = text.find('"' + m.group(1), m.end())
            end = n if end < 0 else end + 1 + len(m.group(1))
            out.append(" " * (m.end() - 1 - i) + '"' + blank(text[m.end():end - 1 - len(m.group(1))]) + '"' + " " * len(m.group(1)))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append('"' + blank(text[i + 1:j - 1]) + '"')
            i = j
        elif c == "'":
            if i + 1 < n and text[i + 1] == "\\":
                j = i + 1
                while j < n and text[j] != "'" and text[j] != "\n":
                    j += 2 if text[j] == "\\" else 1
                j = min(j + 1, n)
                out.append("'" + blank(text[i + 1:j - 1]) + "'")
                i = j
            elif i + 2 < n and text[i + 2] == "'" and text[i + 1] != "\n":
                out.append("' '")
                i += 3
            else:
                out.append("'")  # lifetime or label
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def match_close(code, i, open_ch, close_ch):
    """Index just past the bracket matching code[i] == open_ch."""
    depth = 0
    n = len(code)
    while i < n:
        ch = code[i]
        if ch == open_ch:
            depth += 1
        elif ch == close_ch:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


CFG_TEST = re.compile(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
INNER_CFG_TEST = re.compile(r"#\s*!\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
OUTER_ATTR = re.compile(r"\s*#\s*\[")
MOD_DECL = re.compile(r"\s*(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(?:r#)?([A-Za-z_]\w*)\s*;")


def test_items(code):
    """(start, end) spans of the items under #[cfg(test)], and names of `mod x;` among them."""
    spans, test_mods = [], []
    pos = 0
    while True:
        m = CFG_TEST.search(code, pos)
        if not m:
            break
        j = m.end()
        while True:  # further attributes on the same item
            a = OUTER_ATTR.match(code, j)
            if not a:
                break
            j = match_close(code, a.end() - 1, "[", "]")
        d = MOD_DECL.match(code, j)
        if d:
            test_mods.append(d.group(1))
        # the item ends at its first top-level `;` or at the brace matching its first `{`
        k, depth, end = j, 0, len(code)
        while k < len(code):
            ch = code[k]
            if ch in "([":
                depth += 1
            elif ch in ")]":
                depth -= 1
            elif depth <= 0 and ch == ";":
                end = k + 1
                break
            elif depth <= 0 and ch == "{":
                end = match_close(code, k, "{", "}")
                break
            elif depth <= 0 and ch == "}":  # attribute on something odd: stop at the enclosing end
                end = k
                break
            k += 1
        spans.append((m.start(), end))
        pos = end
    return spans, test_mods


def blank_spans(code, spans):
    chars = list(code)
    for s, e in spans:
        for k in range(s, e):
            if chars[k] != "\n":
                chars[k] = " "
    return "".join(chars)


INLINE_MOD = re.compile(r"(?<![\w:])mod\s+(?:r#)?([A-Za-z_]\w*)\s*\{")


def inline_mods(code):
    """(start, end, name) of inline `mod name { ... }` blocks (non-test ones; tests are blanked)."""
    res = []
    for m in INLINE_MOD.finditer(code):
        res.append((m.end() - 1, match_close(code, m.end() - 1, "{", "}"), m.group(1)))
    return res


# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------
TOKEN = re.compile(r"\$?(?:r#)?[A-Za-z_]\w*|::|[{},*;]|\S")
USE_KW = re.compile(r"(?<![\w:$#])use\b")
INLINE_PATH = re.compile(r"(?<![\w:$#.])(\$crate|crate|super|self|" + re.escape(crate_name) + r"|[a-z_]\w*)((?:\s*::\s*(?:r#)?[A-Za-z_]\w*)+)")


def use_leaves(code, start, end):
    """Leaf paths [(segments, offset_of_last_segment)] of the use tree in code[start:end]."""
    toks = [(m.group(0), m.start()) for m in TOKEN.finditer(code, start, end)]
    leaves = []
    p = 0

    def tree(prefix):
        nonlocal p
        path = list(prefix)
        last = toks[p][1] if p < len(toks) else start
        while p < len(toks):
            t, off = toks[p]
            if t == "::":
                p += 1
            elif t == "{":
                p += 1
                while p < len(toks) and toks[p][0] != "}":
                    if toks[p][0] == ",":
                        p += 1
                        continue
                    before = p
                    tree(path)
                    if p == before:
                        p += 1  # unparseable token: skip it
                p += 1  # the `}`
                return
            elif t == "*":
                p += 1
                leaves.append((path, off))
                return
            elif re.match(r"\$?(?:r#)?[A-Za-z_]", t):
                if t == "as" and path != list(prefix):
                    p += 2  # `as name`
                    break
                path.append(t[2:] if t.startswith("r#") else t)
                last = off
                p += 1
            else:
                break
        if path != list(prefix):
            leaves.append((path, last))

    while p < len(toks) and toks[p][0] not in (";",):
        before = p
        tree([])
        if p < len(toks) and toks[p][0] == ",":
            p += 1
        if p == before:
            p += 1
    return leaves


def resolve(segs, here, file_key, children):
    """Module key a path starting at `here` (file module + inline modules) points into, or None."""
    first = segs[0]
    if file_key == MAIN_KEY:
        if first != crate_name:
            return None  # the binary's own items (`crate::`, `self::`), or another crate
        base, rest = [], segs[1:]
    elif first in ("crate", "$crate"):
        base, rest = [], segs[1:]
    elif first == "self":
        base, rest = list(here), segs[1:]
    elif first == "super":
        k = 0
        while k < len(segs) and segs[k] == "super":
            k += 1
        if k > len(here):
            return None
        base, rest = list(here[:len(here) - k]), segs[k:]
    elif opt_child and first in children:
        base, rest = list(here), segs
    else:
        return None  # an extern crate, std, a local item, ...
    rest = [s for s in rest if s != "self"]
    full = base + rest
    for k in range(len(full), -1, -1):
        if tuple(full[:k]) in modules:
            return tuple(full[:k])
    return ()


def line_of(code, off, starts):
    lo, hi = 0, len(starts) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if starts[mid] <= off:
            lo = mid
        else:
            hi = mid - 1
    return lo + 1


edges = defaultdict(list)  # (from, to) -> [(file, line)]
file_lines = {}  # file -> (total lines, non-test lines)
test_only = set()
sources = {}

for key in sorted(modules, key=lambda k: (k == MAIN_KEY, k)):
    rel = modules[key]
    with open(rel, encoding="utf-8", errors="replace") as f:
        text = f.read()
    sources[rel] = text.split("\n")
    code = strip_code(text)
    starts = [0] + [m.end() for m in re.finditer(r"\n", code)]
    total = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    if INNER_CFG_TEST.search(code):  # `#![cfg(test)]`: the whole file is test code
        spans, tmods = [(0, len(code))], []
    else:
        spans, tmods = test_items(code)
    if key != MAIN_KEY:
        test_only.update(key + (name,) for name in tmods)  # `#[cfg(test)] mod name;`
    test_lines = set()
    for s, e in spans:
        test_lines.update(range(line_of(code, s, starts), line_of(code, max(s, e - 1), starts) + 1))
    file_lines[rel] = (total, total - len([l for l in test_lines if l <= total]))
    code = blank_spans(code, spans)
    if key in test_only:
        continue
    mods_inline = inline_mods(code)
    children = {k[-1] for k in modules if len(k) == len(key) + 1 and k[:len(key)] == key} if key != MAIN_KEY else set()
    children |= {m[2] for m in mods_inline}

    def here_at(off):
        h = list(key) if key != MAIN_KEY else []
        for s, e, name in mods_inline:
            if s <= off < e:
                h.append(name)
        return tuple(h)

    def add(segs, off):
        here = here_at(off)
        target = resolve(segs, here, key, children if len(here) == len(key) else set())
        if target is None or target == key:
            return
        edges[(key, target)].append((rel, line_of(code, off, starts)))

    # use declarations
    use_spans = []
    for m in USE_KW.finditer(code):
        end = code.find(";", m.end())
        end = len(code) if end < 0 else end
        for segs, off in use_leaves(code, m.end(), end):
            add(segs, off)
        use_spans.append((m.start(), end + 1))
    code = blank_spans(code, use_spans)
    # inline paths
    for m in INLINE_PATH.finditer(code):
        first = m.group(1)
        if first not in ("crate", "$crate", "super", "self", crate_name) and not opt_child:
            continue
        segs = [first] + [s.strip().removeprefix("r#") for s in m.group(2).split("::")[1:]]
        add(segs, m.start())


def collapse(k):
    return k if depth is None or k in ((), MAIN_KEY) else k[:depth]


nodes = sorted({collapse(k) for k in modules}, key=mname)
if depth is not None:
    merged = defaultdict(list)
    for (a, b), sites in edges.items():
        if collapse(a) != collapse(b):
            merged[(collapse(a), collapse(b))].extend(sites)
    edges = merged

for k in list(edges):
    edges[k] = sorted(set(edges[k]), key=lambda s: (s[0], s[1]))

graph = defaultdict(set)
for a, b in edges:
    graph[a].add(b)

# ---------------------------------------------------------------------------------------------
# Strongly connected components (Tarjan, iterative)
# ---------------------------------------------------------------------------------------------
index, low, on_stack, stack, sccs = {}, {}, set(), [], []
counter = 0
for root in nodes:
    if root in index:
        continue
    work = [(root, iter(sorted(graph[root], key=mname)))]
    index[root] = low[root] = counter
    counter += 1
    stack.append(root)
    on_stack.add(root)
    while work:
        v, it = work[-1]
        advanced = False
        for w in it:
            if w not in index:
                index[w] = low[w] = counter
                counter += 1
                stack.append(w)
                on_stack.add(w)
                work.append((w, iter(sorted(graph[w], key=mname))))
                advanced = True
                break
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if advanced:
            continue
        work.pop()
        if work:
            low[work[-1][0]] = min(low[work[-1][0]], low[v])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp, key=mname))
sccs.sort(key=lambda c: mname(c[0]))


def shortest_cycle(comp):
    members = set(comp)
    start = comp[0]
    prev = {}
    q = deque([start])
    seen = {start}
    while q:
        v = q.popleft()
        for w in sorted(graph[v], key=mname):
            if w not in members:
                continue
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w not in seen:
                seen.add(w)
                prev[w] = v
                q.append(w)
    return [start]


def site_text(site):
    rel, line = site
    src = sources[rel][line - 1].strip() if line - 1 < len(sources[rel]) else ""
    if len(src) > 100:
        src = src[:97] + "..."
    return f"{rel}:{line}: {src}"


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
if opt_list:
    print("edges:")
    for (a, b) in sorted(edges, key=lambda e: (mname(e[0]), mname(e[1]))):
        sites = ", ".join(f"{r}:{l}" for r, l in edges[(a, b)])
        print(f"  {mname(a)} -> {mname(b)}    ({sites})")
    print()

print(f"modules: {len(nodes)}  edges: {len(edges)}  "
      f"(src: {src_dir}, crate: {crate_name}{', with child paths' if opt_child else ''}{f', depth {depth}' if depth else ''})")
if test_only:
    print("test-only modules (edges ignored): " + ", ".join(sorted(mname(k) for k in test_only)))

status = 0
if not sccs:
    print("no cycles")
else:
    status = 1
    print(f"{len(sccs)} import cycle{'s' if len(sccs) > 1 else ''} (strongly connected components):")
    for n, comp in enumerate(sccs, 1):
        members = set(comp)
        inner = sorted(((a, b) for (a, b) in edges if a in members and b in members),
                       key=lambda e: (mname(e[0]), mname(e[1])))
        print(f"\ncycle {n}: {len(comp)} modules: " + ", ".join(mname(c) for c in comp))
        path = shortest_cycle(comp)
        print("  path: " + " -> ".join(mname(p) for p in path))
        for a, b in zip(path, path[1:]):
            print(f"    {mname(a)} -> {mname(b)}:")
            for site in edges[(a, b)]:
                print(f"      {site_text(site)}")
        if len(inner) > len(path) - 1:
            print(f"  all {len(inner)} edges inside this component:")
            for a, b in inner:
                sites = edges[(a, b)]
                shown = ", ".join(f"{r}:{l}" for r, l in sites[:4])
                more = f", +{len(sites) - 4} more" if len(sites) > 4 else ""
                print(f"    {mname(a)} -> {mname(b)}  ({shown}{more})")
    print()

big = sorted(((rel, t, nt) for rel, (t, nt) in file_lines.items() if nt > max_lines), key=lambda x: -x[2])
if big:
    verdict = "FAIL" if max_lines_explicit else "report only"
    print(f"files over {max_lines} lines outside #[cfg(test)] items ({verdict}):")
    for rel, t, nt in big:
        print(f"  {rel}: {nt} non-test lines ({t} total)")
    if max_lines_explicit:
        status = 1
else:
    print(f"no file over {max_lines} lines outside #[cfg(test)] items")

sys.exit(status)
PY
