#!/usr/bin/env python3
"""PyTorch's side of the `lenet_mnist` comparison: one epoch of the ReLU/max-pool LeNet-5 on
full MNIST, batch 128, SGD momentum 0.9 (or Adam), then evaluation on the 10,000 test digits.
The time is end to end: reading the IDX files, training, evaluating.

python3 benches/torch_lenet_mnist.py [--data-dir ../shared/data/mnist] [--optimizer sgd|adam]
"""
import argparse
import gzip
import json
import time

import numpy as np
import torch
import torch.nn as nn

t0 = time.perf_counter()
p = argparse.ArgumentParser()
p.add_argument("--data-dir", default="../shared/data/mnist")
p.add_argument("--optimizer", default="sgd")
p.add_argument("--epochs", type=int, default=1)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)


def idx(path, offset):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def load(split):
    x = idx(f"{a.data_dir}/{split}-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    y = idx(f"{a.data_dir}/{split}-labels-idx1-ubyte.gz", 8)
    x = (torch.from_numpy(x.astype(np.float32)) / 255.0 - 0.1307) / 0.3081
    return x, torch.from_numpy(y.astype(np.int64))


xtr, ytr = load("train")
xte, yte = load("t10k")
net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                    nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
opt = (torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9) if a.optimizer == "sgd"
       else torch.optim.Adam(net.parameters(), lr=1e-3))
loss_fn = nn.CrossEntropyLoss()
train_time = 0.0
for epoch in range(a.epochs):
    net.train()
    perm = torch.randperm(len(xtr))
    t = time.perf_counter()
    for i in range(0, len(xtr), 128):
        b = perm[i:i + 128]
        opt.zero_grad()
        loss = loss_fn(net(xtr[b]), ytr[b])
        loss.backward()
        opt.step()
    train_time += time.perf_counter() - t
net.eval()
with torch.no_grad():
    correct = sum((net(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item() for i in range(0, 10000, 1000))
print(json.dumps({
    "framework": f"pytorch {torch.__version__}", "optimizer": a.optimizer, "threads": a.threads,
    "epochs": a.epochs, "train_images_per_sec": round(a.epochs * len(xtr) / train_time),
    "seconds_end_to_end": round(time.perf_counter() - t0, 2), "test_accuracy": correct / 10000,
}))
