#!/usr/bin/env python3
"""PyTorch twin of an `ember train` CIFAR-10 run, for the accuracy parity of issue 15.

    python3 benches/torch_cifar_parity.py --images DIR --ember-run RUN [--epochs E] [--seed S]
        [--base-channels 16] [--cutout 16] [--label-smoothing 0.1] [--no-decay-norm-bias]

DIR is the JPEG ImageFolder (`DIR/<class>/<n>.jpg`, the extracted cifar10-train-jpg.tar.gz);
RUN is the Ember run directory of the same recipe (and `--train-limit`, same rule): its `validation.txt` (written by `ember
train` for folder datasets) names the held-out images, so both frameworks train on the same
45,000 images and validate on the same 5,000. Everything else follows Ember's definitions:

- network: ResNet-18 with the CIFAR stem (3x3/1 conv, no max pool), widths b, 2b, 4b, 8b;
  torchvision's init (Kaiming normal, fan_out, for convs; PyTorch's default for the linear);
- data: ImageNet mean/std (Ember's statistics for a folder dataset); pad-4 zero crop, flip,
  normalise, then a cutout square (centred on a random pixel, clipped, set to 0);
- SGD, Nesterov momentum 0.9, weight decay (optionally not on rank-1 parameters), batch 128
  with the last short batch kept, OneCycleLR (pct_start 0.3, div 25, final div 1e4) stepped
  per batch, momentum not cycled (Ember's optimizers take a fixed momentum);
- label smoothing in the training loss only; validation is plain cross-entropy and accuracy.

Augmentation runs on uint8 tensors held in memory (the whole set is 150 MB), batch by batch,
so the loader costs nothing next to the network. Prints one JSON line per epoch and a final
summary line.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.down = None
        if stride != 1 or cin != planes:
            self.down = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.down is None else self.down(x)))


class ResNet18Cifar(nn.Module):
    def __init__(self, b, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, b, 3, 1, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU())
        layers, cin = [], b
        for planes, stride in ((b, 1), (2 * b, 2), (4 * b, 2), (8 * b, 2)):
            layers += [BasicBlock(cin, planes, stride), BasicBlock(planes, planes, 1)]
            cin = planes
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(8 * b, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def load(root, held_out):
    """uint8 [N,3,H,W] images and labels of the ImageFolder `root`, split by `held_out`
    (`class/file` names); benches/torch_airbench.py reads the folder the same way."""
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    train, val = ([], []), ([], [])
    for label, c in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(root, c))):
            img = np.asarray(Image.open(os.path.join(root, c, f)).convert("RGB"))
            part = val if f"{c}/{f}" in held_out else train
            part[0].append(img)
            part[1].append(label)
    as_tensors = lambda p: (torch.from_numpy(np.stack(p[0])).permute(0, 3, 1, 2).contiguous(),
                            torch.tensor(p[1]))
    # Without held-out images (training on every image) the validation part is (None, None).
    return as_tensors(train), as_tensors(val) if val[0] else (None, None)


def augment(x, cutout, gen):
    """uint8 [N,3,32,32] -> normalised float: pad-4 zero crop, flip, normalise, cutout."""
    n, _, h, w = x.shape
    padded = F.pad(x.float() / 255.0, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=gen)
    dx = torch.randint(0, 9, (n,), generator=gen)
    rows = (dy.view(n, 1) + torch.arange(h)).view(n, 1, h, 1).expand(n, 3, h, w + 8)
    out = padded.gather(2, rows)
    cols = (dx.view(n, 1) + torch.arange(w)).view(n, 1, 1, w).expand(n, 3, h, w)
    out = out.gather(3, cols)
    flip = torch.rand(n, generator=gen) < 0.5
    out[flip] = out[flip].flip(3)
    out = (out - MEAN) / STD
    if cutout > 0:
        cy = torch.randint(0, h, (n,), generator=gen).view(n, 1, 1)
        cx = torch.randint(0, w, (n,), generator=gen).view(n, 1, 1)
        ys = torch.arange(h).view(1, h, 1)
        xs = torch.arange(w).view(1, 1, w)
        lo_y, lo_x = cy - cutout // 2, cx - cutout // 2
        # Rows and columns [c - size/2, c - size/2 + size), clipped: Ember's `cutout`.
        mask = (ys >= lo_y) & (ys < lo_y + cutout) & (xs >= lo_x) & (xs < lo_x + cutout)
        out = out.masked_fill(mask.unsqueeze(1), 0.0)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", required=True)
    ap.add_argument("--ember-run", required=True)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--base-channels", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--cutout", type=int, default=16)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--no-decay-norm-bias", action="store_true")
    ap.add_argument("--train-limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    with open(os.path.join(args.ember_run, "validation.txt")) as f:
        # `class/file` of each held-out image (an archive's entries carry a longer prefix).
        held_out = {"/".join(line.strip().split("/")[-2:]) for line in f if line.strip()}
    (xt, yt), (xv, yv) = load(args.images, held_out)
    assert len(yv) == len(held_out), f"{len(held_out)} held-out names, {len(yv)} found in {args.images}"
    xv = (xv.float() / 255.0 - MEAN) / STD
    if args.train_limit is not None and args.train_limit < len(yt):
        # Ember's `train_limit`: evenly spaced items of the (class-ordered) training split.
        step = len(yt) / args.train_limit
        keep = torch.tensor([int(i * step) for i in range(args.train_limit)])
        xt, yt = xt[keep], yt[keep]

    model = ResNet18Cifar(args.base_channels)
    decay = [p for p in model.parameters() if not (args.no_decay_norm_bias and p.ndim <= 1)]
    no_decay = [p for p in model.parameters() if args.no_decay_norm_bias and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": args.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    opt = torch.optim.SGD(groups, lr=args.lr, momentum=0.9, nesterov=True)
    steps = (len(yt) + args.batch_size - 1) // args.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps,
                                                cycle_momentum=False)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(len(yt), generator=gen)
        loss_sum, correct = 0.0, 0
        for i in range(steps):
            idx = order[i * args.batch_size:(i + 1) * args.batch_size]
            x, y = augment(xt[idx], args.cutout, gen), yt[idx]
            logits = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=args.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
        train_secs = time.perf_counter() - t0
        model.eval()
        vloss, vcorrect = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(yv), 500):
                logits = model(xv[i:i + 500])
                vloss += F.cross_entropy(logits, yv[i:i + 500], reduction="sum").item()
                vcorrect += (logits.argmax(1) == yv[i:i + 500]).sum().item()
        print(json.dumps({"framework": "pytorch", "seed": args.seed, "epoch": epoch,
                          "train_loss": round(loss_sum / len(yt), 4),
                          "train_acc": round(100 * correct / len(yt), 2),
                          "val_loss": round(vloss / len(yv), 4), "val_acc": round(100 * vcorrect / len(yv), 2),
                          "train_images_per_s": round(len(yt) / train_secs, 1)}), flush=True)
    print(json.dumps({"framework": "pytorch", "seed": args.seed, "epochs": args.epochs,
                      "wall_s": round(time.perf_counter() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
