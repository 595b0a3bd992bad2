#!/usr/bin/env python3
"""Where a training step's time goes, by Burn operation: reads `perf script` output of a
`perf record --call-graph dwarf` run and charges every sample to the innermost frame that
names a backend or autodiff operation (e.g. `conv2d_x_backward`, `batch_norm_train`,
`float_add`), so rayon worker threads are charged to the operation that started them.

perf record -e cpu-clock -F 999 --call-graph dwarf,32768 -o step.data \
    target/release/examples/train_step --model resnet18_cifar --steps 2
perf script -i step.data | python3 scripts/perf_ops.py [--depth N]
"""
import collections
import re
import sys

# Frames that name an operation: Flex's ModuleOps/FloatTensorOps impls, Burn's generic
# module ops, the optimizer, the autodiff engine; the first match from the leaf wins.
OPS = [
    (re.compile(r"burn_flex::ops::module::<impl .*ModuleOps<.*>>::(\w+)"), "flex {}"),
    (re.compile(r"burn_flex::ops::float::<impl .*FloatTensorOps<.*>>::(\w+)"), "flex {}"),
    (re.compile(r"burn_flex::ops::int::<impl .*IntTensorOps<.*>>::(\w+)"), "flex {}"),
    (re.compile(r"burn_flex::ops::bool::<impl .*BoolTensorOps<.*>>::(\w+)"), "flex {}"),
    (re.compile(r"burn_flex::ops::activation::<impl .*ActivationOps<.*>>::(\w+)"), "flex {}"),
    (re.compile(r"burn_backend::backend::ops::modules::base::ModuleOps::(\w+)"), "generic {}"),
    (re.compile(r"burn_optim::optim::(\w+)::"), "optim {}"),
    (re.compile(r"burn_autodiff::ops::.*ModuleOps<.*>>::(\w+)"), "autodiff-module {}"),
    (re.compile(r"burn_autodiff::"), "autodiff (graph)"),
    (re.compile(r"ember_data::"), "ember data"),
    (re.compile(r"burn_train::"), "burn-train"),
]


def main():
    samples = collections.Counter()
    total = 0
    stack = []
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line.strip():
            if stack:
                total += 1
                samples[charge(stack)] += 1
            stack = []
            continue
        if line.startswith((" ", "\t")):
            parts = line.strip().split(" ", 1)
            if len(parts) == 2:
                stack.append(parts[1])
    if stack:
        total += 1
        samples[charge(stack)] += 1
    for name, n in samples.most_common(40):
        print(f"{100.0 * n / total:6.2f}%  {name}")
    print(f"{total} samples")


def charge(stack):
    for frame in stack:  # leaf first
        if "[kernel" in frame or frame.startswith("[unknown]"):
            continue
        for pattern, label in OPS:
            m = pattern.search(frame)
            if m:
                return label.format(*m.groups())
    leaf = stack[0] if stack else "?"
    return "other: " + re.sub(r"\+0x[0-9a-f]+.*", "", leaf)[:80]


if __name__ == "__main__":
    main()
