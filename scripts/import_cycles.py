#!/usr/bin/env python3
"""Import cycles between the source files of each crate: every `crate::a::b` path a file names
(in `use` lines or inline) is an edge to the file that defines module `a::b` (or `a`); a
strongly connected component of more than one file is a cycle. Prints each, and the count.

    python3 scripts/import_cycles.py            # all crates
    python3 scripts/import_cycles.py --edges    # also each cycle's edges, with lines
    python3 scripts/import_cycles.py /tmp/before  # another checkout
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# `python3 scripts/import_cycles.py [CHECKOUT]`: another checkout (an older commit's worktree).
_args = [a for a in sys.argv[1:] if not a.startswith("--")]
if _args:
    ROOT = Path(_args[0]).resolve()


def module_files(src: Path):
    """Module path (tuple) -> file, for every .rs under src."""
    mods = {}
    for f in src.rglob("*.rs"):
        rel = f.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] in ("mod", "lib", "main"):
            parts = parts[:-1]
        mods[tuple(parts)] = f
    return mods


def strip_tests(text: str) -> str:
    """The text above the first `#[cfg(test)]` (unit tests may import anything)."""
    i = text.find("#[cfg(test)]")
    return text if i < 0 else text[:i]


def use_paths(text: str):
    """(line, path) for each `crate::...` path, grouped `use crate::{a, b::c}` expanded."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("//"):
            continue
        for m in re.finditer(r"crate::((?:[a-z_][a-z0-9_]*::)*)(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)", line):
            prefix = [p for p in m.group(1).split("::") if p]
            tail = m.group(2)
            if tail.startswith("{"):
                for item in tail[1:-1].split(","):
                    item = item.strip().split("::")
                    out.append((n, prefix + [p for p in item if p]))
            else:
                out.append((n, prefix + [tail]))
    # Multi-line `use crate::{...};` blocks.
    for m in re.finditer(r"use crate::\{([^}]*)\}", text, re.S):
        n = text[: m.start()].count("\n") + 1
        for item in m.group(1).split(","):
            item = [p for p in item.strip().split("::") if p and p != "self"]
            if item:
                out.append((n, item))
    return out


def graph(src: Path):
    mods = module_files(src)
    edges = {f: {} for f in mods.values()}
    for mod, f in mods.items():
        text = strip_tests(f.read_text())
        for n, path in use_paths(text):
            # The longest prefix of the path that is a module.
            for k in range(len(path), 0, -1):
                target = mods.get(tuple(path[:k]))
                if target is not None:
                    break
            else:
                continue
            if target != f and not is_ancestor(mods, target, f):
                edges[f].setdefault(target, n)
    return edges


def is_ancestor(mods, parent_file, child_file):
    """A parent module naming its child (or the child its parent's items) is structure, not an
    import: `mod.rs` re-exporting its submodules is not a cycle."""
    inv = {v: k for k, v in mods.items()}
    p, c = inv[parent_file], inv[child_file]
    return len(p) < len(c) and c[: len(p)] == p


def sccs(edges):
    index, low, stack, on, out, i = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = i[0]
        i[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
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
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return [c for c in out if len(c) > 1]


def main():
    show_edges = "--edges" in sys.argv
    total = 0
    for src in sorted(ROOT.glob("crates/*/src")):
        edges = graph(src)
        for comp in sccs(edges):
            total += 1
            names = sorted(str(f.relative_to(ROOT)) for f in comp)
            print(f"cycle of {len(comp)} files: {', '.join(names)}")
            if show_edges:
                for f in comp:
                    for t, n in edges[f].items():
                        if t in comp:
                            print(f"    {f.relative_to(ROOT)}:{n} -> {t.relative_to(ROOT)}")
    print(f"{total} import cycles")


if __name__ == "__main__":
    main()
