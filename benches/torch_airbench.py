#!/usr/bin/env python3
"""airbench94 on the CPU in float32: the PyTorch side of Ember's CIFAR-10 speedrun (issue 29).

    python3 benches/torch_airbench.py --images DIR --ember-run RUN [--seed S] [--channels-last]
    python3 benches/torch_airbench.py --images DIR --val-split 0        # all 50,000 images
    python3 benches/torch_airbench.py --images DIR --ember-run RUN --max-steps 20   # throughput

A port of Keller Jordan's airbench94 (arXiv 2404.00498; KellerJordan/cifar10-airbench,
`legacy/airbench94.py`) with only what a CPU needs changed: no `.cuda()`, no `.half()` (float32
throughout), no `torch.compile`, `torch.set_num_threads(2)`, timing with `time.perf_counter()`,
and either memory layout (NCHW, or `--channels-last` as the source uses on the GPU). The
recipe, as the source has it:

- net: 2x2 whitening conv 3->24 (bias) -> GELU -> three groups (64, 256, 256) of
  conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU -> maxpool3 -> linear (no bias)
  -> x 1/9; BN eps 1e-12, momentum 0.4 (PyTorch's convention), scale frozen at 1;
  3x3 convs in PyTorch's default init with their first C_in filters set to the identity;
- whitening weights from the eigen-decomposition of the 2x2x3 patch covariance of 5,000
  training images (here evenly spaced over the training split, which is class-ordered in
  the JPEG folder, so that every class is in it), eps 5e-4; the weight never trains, the
  bias trains for 3 epochs;
- 9.9 epochs of batch 1024, the last short batch dropped; label smoothing 0.2, summed loss;
  SGD Nesterov, momentum 0.85, lr 11.5 and weight decay 0.0153 "per 1,024 examples", BN
  biases at 64x lr; lr multiplier piecewise linear 0.2 -> 1.0 (at 23%) -> 0.07;
- lookahead every 5 steps with decay 0.95^5 * (step / total)^3, the average taken at the end;
- alternating flip (random once, mirrored on odd epochs) and translate 2 (reflect pad, crop);
- evaluation without TTA and with the 6-view TTA (image, mirror, and both 1-pixel shifts).

DIR is the JPEG ImageFolder (`DIR/<class>/<n>.jpg`, the extracted cifar10-train-jpg.tar.gz).
RUN is an Ember run of the same recipe: its `validation.txt` names the held-out images, so
both frameworks train on the same 45,000 images and validate on the same 5,000. Images are
normalised as Ember normalises a folder dataset (ImageNet mean and std; the whitening layer
makes the choice immaterial). Training seconds count the whitening and every step, not the
JPEG decoding. Prints one JSON line per epoch and a final summary line.
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# The same folder reading, split and normalisation as the ResNet parity port.
from torch_cifar_parity import MEAN, STD, load

HYP = dict(epochs=9.9, batch_size=1024, lr=11.5, momentum=0.85, weight_decay=0.0153,
           bias_scaler=64.0, label_smoothing=0.2, whiten_bias_epochs=3, widths=(64, 256, 256),
           bn_momentum=0.6, scaling_factor=1 / 9, tta_level=2, whiten_images=5000)


class BatchNorm(nn.BatchNorm2d):
    def __init__(self, n, momentum, eps=1e-12):
        super().__init__(n, eps=eps, momentum=1 - momentum)
        self.weight.requires_grad = False  # the scale stays 1; only the bias trains


class Conv(nn.Conv2d):
    def __init__(self, cin, cout, kernel_size=3, padding="same", bias=False):
        super().__init__(cin, cout, kernel_size=kernel_size, padding=padding, bias=bias)

    def reset_parameters(self):
        super().reset_parameters()
        if self.bias is not None:
            self.bias.data.zero_()
        w = self.weight.data
        torch.nn.init.dirac_(w[:w.size(1)])


class ConvGroup(nn.Module):
    def __init__(self, cin, cout, momentum):
        super().__init__()
        self.conv1 = Conv(cin, cout)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = BatchNorm(cout, momentum)
        self.conv2 = Conv(cout, cout)
        self.norm2 = BatchNorm(cout, momentum)
        self.activ = nn.GELU()

    def forward(self, x):
        x = self.activ(self.norm1(self.pool(self.conv1(x))))
        return self.activ(self.norm2(self.conv2(x)))


class Mul(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return x * self.scale


def make_net():
    w = HYP["widths"]
    net = nn.Sequential(
        Conv(3, 24, kernel_size=2, padding=0, bias=True), nn.GELU(),
        ConvGroup(24, w[0], HYP["bn_momentum"]), ConvGroup(w[0], w[1], HYP["bn_momentum"]),
        ConvGroup(w[1], w[2], HYP["bn_momentum"]),
        nn.MaxPool2d(3), nn.Flatten(), nn.Linear(w[2], 10, bias=False), Mul(HYP["scaling_factor"]))
    net[0].weight.requires_grad = False
    return net


def init_whitening(layer, images, eps=5e-4):
    c, (h, w) = images.shape[1], layer.weight.shape[2:]
    patches = images.unfold(2, h, 1).unfold(3, w, 1).transpose(1, 3).reshape(-1, c, h, w).float()
    flat = patches.view(len(patches), -1)
    lam, vec = torch.linalg.eigh(flat.T @ flat / len(flat), UPLO="U")
    lam, vec = lam.flip(0).view(-1, 1, 1, 1), vec.T.reshape(c * h * w, c, h, w).flip(0)
    scaled = vec / torch.sqrt(lam + eps)
    layer.weight.data[:] = torch.cat((scaled, -scaled))


class Lookahead:
    def __init__(self, net):
        self.ema = {k: v.clone() for k, v in net.state_dict().items()}

    def update(self, net, decay):
        for ema, p in zip(self.ema.values(), net.state_dict().values()):
            if p.dtype == torch.float:
                ema.lerp_(p, 1 - decay)
                p.copy_(ema)


def normalise(x):
    return (x.float() / 255.0 - MEAN) / STD


def batch_crop(images, size, gen):
    """A random `size` window of each (padded) image: the source's translate."""
    n, c, h, w = images.shape
    r = (h - size) // 2
    dy = torch.randint(0, 2 * r + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * r + 1, (n,), generator=gen)
    rows = (dy.view(n, 1) + torch.arange(size)).view(n, 1, size, 1).expand(n, c, size, w)
    out = images.gather(2, rows)
    cols = (dx.view(n, 1) + torch.arange(size)).view(n, 1, 1, size).expand(n, c, size, size)
    return out.gather(3, cols)


def infer(net, x, tta, fmt):
    def basic(v):
        return net(v.contiguous(memory_format=fmt))

    def mirror(v):
        return 0.5 * basic(v) + 0.5 * basic(v.flip(-1))

    if tta == 0:
        return basic(x)
    logits = mirror(x)
    padded = F.pad(x, (1,) * 4, "reflect")
    shifted = [mirror(padded[:, :, 0:32, 0:32]), mirror(padded[:, :, 2:34, 2:34])]
    return 0.5 * logits + 0.5 * torch.stack(shifted).mean(0)


def evaluate(net, xv, yv, tta, fmt):
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(yv), 2000):
            correct += (infer(net, xv[i:i + 2000], tta, fmt).argmax(1) == yv[i:i + 2000]).sum().item()
    return 100 * correct / len(yv)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", required=True)
    ap.add_argument("--ember-run", help="an Ember run whose validation.txt names the held-out images")
    ap.add_argument("--val-split", type=float, default=None, help="0: train on every image")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-steps", type=int, default=None, help="stop early: a throughput run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format

    held_out = set()
    if args.val_split != 0:
        if not args.ember_run:
            ap.error("--ember-run RUN (for its validation.txt) or --val-split 0")
        with open(os.path.join(args.ember_run, "validation.txt")) as f:
            held_out = {"/".join(line.strip().split("/")[-2:]) for line in f if line.strip()}
    (xt, yt), (xv, yv) = load(args.images, held_out)
    if held_out:
        assert len(yv) == len(held_out), f"{len(held_out)} held-out names, {len(yv)} found"
        xv = normalise(xv)

    bs = HYP["batch_size"]
    steps_per_epoch = len(yt) // bs  # the last short batch is dropped
    total = math.ceil(steps_per_epoch * HYP["epochs"])
    if args.max_steps:
        total = min(total, args.max_steps)
    momentum = HYP["momentum"]
    kilostep_scale = 1024 * (1 + 1 / (1 - momentum))
    lr = HYP["lr"] / kilostep_scale  # the source's "decoupled" lr, for a summed loss
    wd = HYP["weight_decay"] * bs / kilostep_scale
    lr_biases = lr * HYP["bias_scaler"]

    net = make_net()
    start = time.perf_counter()
    images = normalise(xt)
    # Whitening from 5,000 evenly spaced training images (the folder is class-ordered).
    pick = torch.linspace(0, len(yt) - 1, HYP["whiten_images"]).long()
    init_whitening(net[0], images[pick])
    net = net.to(memory_format=fmt)
    norm_biases = [p for k, p in net.named_parameters() if "norm" in k and p.requires_grad]
    other = [p for k, p in net.named_parameters() if "norm" not in k and p.requires_grad]
    opt = torch.optim.SGD([dict(params=norm_biases, lr=lr_biases, weight_decay=wd / lr_biases),
                           dict(params=other, lr=lr, weight_decay=wd / lr)],
                          momentum=momentum, nesterov=True)
    knots = np.interp(np.arange(1 + total), [0, int(0.23 * total), total], [0.2, 1, 0.07])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: knots[i])
    alpha = 0.95 ** 5 * (torch.arange(total + 1) / total) ** 3
    lookahead = Lookahead(net)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=HYP["label_smoothing"], reduction="none")
    flipped = torch.where((torch.rand(len(yt), generator=gen) < 0.5).view(-1, 1, 1, 1),
                          images.flip(-1), images)
    padded = F.pad(flipped, (2,) * 4, "reflect")
    step, train_s = 0, time.perf_counter() - start
    for epoch in range(math.ceil(HYP["epochs"])):
        t0 = time.perf_counter()
        net[0].bias.requires_grad = epoch < HYP["whiten_bias_epochs"]
        net.train()
        crops = batch_crop(padded, 32, gen)
        if epoch % 2 == 1:
            crops = crops.flip(-1)
        order = torch.randperm(len(yt), generator=gen)
        loss_sum, seen = 0.0, 0
        for i in range(steps_per_epoch):
            idx = order[i * bs:(i + 1) * bs]
            out = net(crops[idx].contiguous(memory_format=fmt))
            loss = loss_fn(out, yt[idx]).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum, seen = loss_sum + loss.item(), seen + len(idx)
            step += 1
            if step % 5 == 0:
                lookahead.update(net, decay=alpha[step].item())
            if step >= total:
                lookahead.update(net, decay=1.0)
                break
        secs = time.perf_counter() - t0
        train_s += secs
        line = {"framework": "pytorch", "layout": "channels_last" if args.channels_last else "nchw",
                "seed": args.seed, "epoch": epoch + 1, "steps": step,
                "train_loss": round(loss_sum / max(seen, 1), 4),
                "train_images_per_s": round(seen / secs, 1)}
        print(json.dumps(line), flush=True)
        if step >= total:
            break
    summary = {"framework": f"pytorch {torch.__version__}",
               "layout": "channels_last" if args.channels_last else "nchw", "seed": args.seed,
               "threads": torch.get_num_threads(), "steps": step, "train_seconds": round(train_s, 1),
               "train_images_per_s": round(step * bs / train_s, 1)}
    if held_out:
        summary["val_accuracy"] = round(evaluate(net, xv, yv, 0, fmt), 2)
        summary["val_accuracy_tta"] = round(evaluate(net, xv, yv, HYP["tta_level"], fmt), 2)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
