#!/usr/bin/env python3
"""Summarise a `cargo build --timings` report: the wall time, the units, and the slowest ones.

    cargo test --workspace --features ndarray,wgpu --no-run --timings
    python3 scripts/build_timings.py "$CARGO_TARGET_DIR"/cargo-timings/cargo-timing.html --top 20

Prints a Markdown table (unit, seconds, share of the summed unit time) for docs/benchmarks.md.
Cargo writes the units as a JSON array (`UNIT_DATA`) inside the HTML page; this reads it.
"""

import argparse
import json
import re
import sys


def units_of(html: str) -> list:
    match = re.search(r"const UNIT_DATA = (\[.*?\]);\n", html, re.S)
    if not match:
        sys.exit("no UNIT_DATA in this file: is it a cargo --timings report?")
    return json.loads(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="cargo-timing*.html")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    try:
        html = open(args.report, encoding="utf-8").read()
    except OSError as e:
        sys.exit(f"cannot read {args.report}: {e}")
    units = units_of(html)
    wall = max(u["start"] + u["duration"] for u in units)
    summed = sum(u["duration"] for u in units)
    print(f"{len(units)} units, wall {wall / 60:.1f} min, summed unit time {summed / 60:.1f} min\n")
    print("| unit | s | share |")
    print("|---|---:|---:|")
    for u in sorted(units, key=lambda u: -u["duration"])[: args.top]:
        target = u.get("target", "").strip()
        name = f'{u["name"]} {u["version"]}{(" " + target) if target else ""}'
        print(f'| {name} | {u["duration"]:.1f} | {100 * u["duration"] / summed:.1f}% |')


if __name__ == "__main__":
    main()
