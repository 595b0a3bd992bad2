#!/usr/bin/env python3
"""The design counts of docs/architecture.md ("Design counts"), for a checkout:

    python3 scripts/design_counts.py [CHECKOUT]      # default: this one
    git worktree add /tmp/before de4a29d && python3 scripts/design_counts.py /tmp/before

Counts: import cycles (scripts/import_cycles.py), ember-train's `pub mod`s and pub items,
the CLI's hand-written override blocks, hand-written `FromStr` impls, library strings that
name a CLI flag, functions over 80 lines in crates/*/src, and what one new knob must touch.
"""
import re
import subprocess
import sys
from pathlib import Path

root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
here = Path(__file__).resolve().parent


def files(pattern):
    return sorted(p for p in root.glob(pattern) if p.is_file())


def src_text(p):
    t = p.read_text()
    i = t.find("#[cfg(test)]")
    return t if i < 0 else t[:i]


def count(regex, paths, flags=re.M):
    return sum(len(re.findall(regex, src_text(p), flags)) for p in paths)


def long_functions(paths, limit=80):
    out = []
    for p in paths:
        lines = src_text(p).splitlines()
        i = 0
        while i < len(lines):
            if re.match(r"\s*(pub(\([a-z]+\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s", lines[i]):
                depth, started, j = 0, False, i
                while j < len(lines):
                    depth += lines[j].count("{") - lines[j].count("}")
                    started |= "{" in lines[j]
                    if (started and depth <= 0) or (not started and lines[j].rstrip().endswith(";")):
                        break
                    j += 1
                n = j - i + 1
                if n > limit:
                    out.append((n, f"{p.relative_to(root)}:{i + 1}"))
                i = j + 1
            else:
                i += 1
    return sorted(out, reverse=True)


train_src = files("crates/ember-train/src/**/*.rs")
lib_src = [p for p in files("crates/ember-*/src/**/*.rs") if "ember-cli" not in str(p) and not p.name == "cli.rs"]
all_src = files("crates/*/src/**/*.rs")

cycles = subprocess.run(
    [sys.executable, str(here / "import_cycles.py"), str(root)], capture_output=True, text=True
)
last = cycles.stdout.strip().splitlines()[-1] if cycles.stdout.strip() else "(not measured)"
lib = (root / "crates/ember-train/src/lib.rs").read_text()
# The flag handling of `ember train` and `ember finetune`: before, train.rs held both (and
# eval, export, predict); after, cmd/train.rs and cmd/finetune.rs.
cli = (
    files("crates/ember-train/src/cli.rs")
    + files("crates/ember-cli/src/train.rs")
    + files("crates/ember-cli/src/cmd/train.rs")
    + files("crates/ember-cli/src/cmd/finetune.rs")
)
flag_strings = 0
for p in lib_src:
    flag_strings += len(re.findall(r'"[^"\n]*--[a-z][a-z-]+[^"\n]*"', src_text(p)))

print(f"checkout: {root}")
print(f"import cycles: {last}")
print(f"ember-train pub mods: {len(re.findall(r'^pub mod', lib, re.M))}")
PUB_ITEM = r"^\s*pub (fn|struct|enum|trait|type|const|static)\b"
OVERRIDE = r"if let Some|is_some\(\)"
print(f"ember-train pub items: {count(PUB_ITEM, train_src)}")
print(f"CLI override blocks (if let Some / is_some in cli.rs and ember train/finetune): {count(OVERRIDE, cli)}")
print(f"hand-written FromStr impls: {count(r'impl (std::str::)?FromStr for', all_src)}")
print(f"library strings naming a flag (not cli.rs, not ember-cli): {flag_strings}")
longs = long_functions(all_src)
print(f"functions over 80 lines: {len(longs)}")
for n, where in longs:
    print(f"    {n:4} {where}")
