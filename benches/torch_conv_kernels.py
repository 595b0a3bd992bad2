#!/usr/bin/env python3
"""PyTorch's side of examples/conv_kernels.rs: forward, input gradient and weight gradient of
each distinct convolution of a model, timed on PyTorch's own kernels (F.conv2d and
torch.ops.aten.convolution_backward), with GFLOP/s.

python3 benches/torch_conv_kernels.py --model resnet18_cifar --batch-size 128
"""
import argparse
import collections
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_models import MODELS

p = argparse.ArgumentParser()
p.add_argument("--model", default="resnet18_cifar")
p.add_argument("--batch-size", type=int, default=128)
p.add_argument("--reps", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)

make, shape, _ = MODELS[a.model]
net = make().eval()
shapes = collections.Counter()
hooks = []
for m in net.modules():
    if isinstance(m, nn.Conv2d):
        hooks.append(m.register_forward_hook(lambda m, i, o: shapes.update([(
            m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.groups,
            tuple(i[0].shape[2:]))])))
with torch.no_grad():
    net(torch.randn(1, *shape))


def median_ms(f):
    f()
    t = []
    for _ in range(a.reps):
        s = time.perf_counter()
        f()
        t.append((time.perf_counter() - s) * 1e3)
    return statistics.median(t)


n = a.batch_size
for (c_in, c_out, k, s, pad, g, (h, w)), uses in sorted(shapes.items()):
    x = torch.randn(n, c_in, h, w)
    wt = torch.randn(c_out, c_in // g, *k) * 0.1
    y = F.conv2d(x, wt, None, s, pad, 1, g)
    dy = torch.randn_like(y)
    macs = n * c_out * y.shape[2] * y.shape[3] * (c_in // g) * k[0] * k[1]

    def back(mask):
        return lambda: torch.ops.aten.convolution_backward(
            dy, x, wt, None, s, pad, (1, 1), False, (0, 0), g, mask)

    for name, f in (("forward", lambda: F.conv2d(x, wt, None, s, pad, 1, g)),
                    ("input_grad", back([True, False, False])),
                    ("weight_grad", back([False, True, False]))):
        ms = median_ms(f)
        print(json.dumps({"framework": f"pytorch {torch.__version__}", "model": a.model, "batch": n,
                          "c_in": c_in, "c_out": c_out, "kernel": list(k), "stride": list(s),
                          "padding": list(pad), "groups": g, "input": [h, w], "uses": uses,
                          "pass": name, "ms": round(ms, 3),
                          "gflops": round(2 * macs / (ms * 1e6), 1)}), flush=True)
