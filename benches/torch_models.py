#!/usr/bin/env python3
"""PyTorch (torchvision models) on the same models, batch and machine as benches/models.rs.

python3 benches/torch_models.py   -> one JSON line per (model, pass): images/s, median of 5.
"""
import json
import statistics
import time

import torch
import torch.nn as nn
import torchvision.models as tvm

torch.manual_seed(0)
BATCH = 4


def lenet_modern():
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def resnet18_cifar():
    m = tvm.resnet18(num_classes=10)
    m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    return m


MODELS = [
    ("lenet5_modern", lenet_modern, (1, 28, 28)),
    ("resnet18_cifar", resnet18_cifar, (3, 32, 32)),
    ("alexnet", tvm.alexnet, (3, 224, 224)),
    ("googlenet", lambda: tvm.googlenet(aux_logits=False, init_weights=True), (3, 224, 224)),
    ("resnet18", tvm.resnet18, (3, 224, 224)),
    ("resnet50", tvm.resnet50, (3, 224, 224)),
    ("densenet121", tvm.densenet121, (3, 224, 224)),
]


def bench(fn, reps=5):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


for name, make, shape in MODELS:
    model = make()
    x = torch.randn(BATCH, *shape)
    model.eval()
    with torch.no_grad():
        fwd = bench(lambda: model(x))
    model.train()
    def step():
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()
    both = bench(step)
    for kind, secs in (("forward", fwd), ("forward+backward", both)):
        print(json.dumps({"framework": f"pytorch {torch.__version__}", "threads": torch.get_num_threads(),
                          "model": name, "pass": kind, "batch": BATCH,
                          "seconds_per_batch": round(secs, 5), "images_per_s": round(BATCH / secs, 2)}),
              flush=True)
