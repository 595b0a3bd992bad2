#!/usr/bin/env python3
"""PyTorch's side of examples/train_step.rs: forward, cross-entropy, backward and one
optimizer step on a fixed random batch, timed per step.

python3 benches/torch_train_step.py --model resnet18_cifar --batch-size 128 --steps 10
-> one JSON line: images/s over the timed steps, median seconds per step.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn

from torch_models import MODELS

p = argparse.ArgumentParser()
p.add_argument("--model", default="resnet18_cifar")
p.add_argument("--batch-size", type=int, default=128)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--optimizer", default="momentum", choices=["momentum", "adam"])
p.add_argument("--threads", type=int, default=2)
p.add_argument("--channels-last", action="store_true", help="NHWC memory layout")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)

make, shape, classes = MODELS[a.model]
net = make()
net.train()
x = torch.randn(a.batch_size, *shape)
if a.channels_last:
    net = net.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
y = torch.arange(a.batch_size) % classes
opt = (torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9) if a.optimizer == "momentum"
       else torch.optim.Adam(net.parameters(), lr=0.01))
loss_fn = nn.CrossEntropyLoss()
times = []
for step in range(a.warmup + a.steps):
    t = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(net(x), y)
    loss.backward()
    opt.step()
    last = loss.item()
    if step >= a.warmup:
        times.append(time.perf_counter() - t)
print(json.dumps({
    "framework": f"pytorch {torch.__version__}", "model": a.model, "batch": a.batch_size,
    "optimizer": a.optimizer, "layout": "channels_last" if a.channels_last else "nchw", "threads": torch.get_num_threads(), "steps": a.steps,
    "images_per_s": round(a.steps * a.batch_size / sum(times), 2),
    "median_seconds_per_step": round(statistics.median(times), 5), "last_loss": last,
}))
