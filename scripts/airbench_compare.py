#!/usr/bin/env python3
"""Ember's airbench94 against the PyTorch CPU port, alternating, on the same cores (issue 29).

    python3 scripts/airbench_compare.py --seeds 42 43 44 [--layouts nchw channels_last]
        [--archive ../shared/data/cifar10/cifar10-train-jpg.tar.gz] [--out runs/airbench_compare]
        [--write docs/results.md]

For each seed: Ember's `cifar_speedrun` example (release build; the run directory's
`validation.txt` names its held-out 5,000 images), then `benches/torch_airbench.py` on the
same images and split in each layout asked for. Every JSON line goes to OUT/results.jsonl (a
rerun skips what is already there, so a killed comparison continues); the table of means,
per-seed rows and ratios is printed and, with --write, put between the markers
`<!-- airbench-table -->` and `<!-- /airbench-table -->` of that file.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_name():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("Model name"))
        flags = out.split("Flags:", 1)[1] if "Flags:" in out else ""
        return f"{name}{', AVX-512' if 'avx512f' in flags else ''}, {os.cpu_count()} cores"
    except Exception:  # noqa: BLE001 - a name is only a label
        return platform.processor() or "unknown CPU"


def last_json(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no JSON line in:\n{text[-2000:]}")


def run(cmd, env=None):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return last_json(p.stdout)


def table(rows, cpu):
    def mean(xs):
        return statistics.mean(xs) if xs else float("nan")

    by = {}
    for r in rows:
        by.setdefault(r["who"], []).append(r)
    ember = by.get("ember", [])
    lines = [f"CPU: {cpu}. Accuracy on the seeded 5,000-image validation split of the JPEG copy "
             "(trained on the other 45,000), final weights.", "",
             "| run | seeds | val acc (no TTA) | val acc (6-view TTA) | training s | time / Ember |",
             "|---|---|---:|---:|---:|---:|"]
    e_time = mean([r["train_seconds"] for r in ember])
    for who, rs in sorted(by.items(), key=lambda kv: kv[0] != "ember"):
        t = mean([r["train_seconds"] for r in rs])
        lines.append(f"| {who} | {', '.join(str(r['seed']) for r in rs)} "
                     f"| {100 * mean([r['acc'] for r in rs]):.2f}% "
                     f"| {100 * mean([r['acc_tta'] for r in rs]):.2f}% | {t:.0f} | {t / e_time:.2f} |")
    lines += ["", "| run | seed | val acc | TTA | training s |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['who']} | {r['seed']} | {100 * r['acc']:.2f}% | {100 * r['acc_tta']:.2f}% "
                     f"| {r['train_seconds']:.0f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    ap.add_argument("--layouts", nargs="+", default=["channels_last", "nchw"],
                    choices=["channels_last", "nchw"])
    ap.add_argument("--archive", default=os.path.join(ROOT, "../shared/data/cifar10/cifar10-train-jpg.tar.gz"))
    ap.add_argument("--out", default=os.path.join(ROOT, "runs/airbench_compare"))
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                                                  "release/examples/cifar_speedrun"))
    ap.add_argument("--write", help="a Markdown file with the table markers")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    images = os.path.join(a.out, "images")
    if not os.path.isdir(images):
        with tarfile.open(a.archive) as t:
            t.extractall(images)
    # The ImageFolder root: the directory whose subdirectories are the classes.
    root = images
    while len(os.listdir(root)) == 1:
        root = os.path.join(root, os.listdir(root)[0])
    log = os.path.join(a.out, "results.jsonl")
    rows = [json.loads(line) for line in open(log)] if os.path.exists(log) else []
    done = {(r["who"], r["seed"]) for r in rows}
    env = dict(os.environ, EMBER_NO_TUI="1")
    for seed in a.seeds:
        ember_run = os.path.join(a.out, f"ember-{seed}")
        if ("ember", seed) not in done:
            j = run([a.bin, "--dataset", f"folder:{a.archive}", "--seed", str(seed), "--out", ember_run,
                     "--log-every", "600"], env)
            rows.append({"who": "ember", "seed": seed, "acc": j["val_accuracy"], "acc_tta": j["val_accuracy_tta"],
                         "train_seconds": j["train_seconds"], "raw": j})
            open(log, "a").write(json.dumps(rows[-1]) + "\n")
        for layout in a.layouts:
            who = f"pytorch {layout}"
            if (who, seed) in done:
                continue
            cmd = [sys.executable, os.path.join(ROOT, "benches/torch_airbench.py"), "--images", root,
                   "--ember-run", ember_run, "--seed", str(seed)]
            if layout == "channels_last":
                cmd.append("--channels-last")
            j = run(cmd)
            rows.append({"who": who, "seed": seed, "acc": j["val_accuracy"] / 100,
                         "acc_tta": j["val_accuracy_tta"] / 100, "train_seconds": j["train_seconds"], "raw": j})
            open(log, "a").write(json.dumps(rows[-1]) + "\n")
    text = table(rows, cpu_name())
    print(text)
    if a.write:
        doc = open(a.write).read()
        start, end = "<!-- airbench-table -->", "<!-- /airbench-table -->"
        if start not in doc or end not in doc:
            sys.exit(f"{a.write} has no {start} ... {end} markers")
        head, rest = doc.split(start, 1)
        _, tail = rest.split(end, 1)
        open(a.write, "w").write(f"{head}{start}\n{text}\n{end}{tail}")


if __name__ == "__main__":
    main()
