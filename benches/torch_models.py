#!/usr/bin/env python3
"""PyTorch (torchvision models) on the same models, batch and machine as benches/models.rs.

python3 benches/torch_models.py [--batch 32] [--threads 2] [MODEL ...]
-> one JSON line per (model, pass): images/s, median of 5 timed runs after one warm-up.

MODELS maps each Ember zoo name to a PyTorch twin (same layers and shapes), an input shape and
a class count; benches/torch_train_step.py uses it too.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torchvision.models as tvm


def lenet(act, pool, bn=False):
    def block(i, o, pad):
        layers = [nn.Conv2d(i, o, 5, padding=pad)]
        if bn:
            layers.append(nn.BatchNorm2d(o))
        return layers + [act(), pool(2)]

    def dense(i, o):
        return [nn.Linear(i, o)] + ([nn.BatchNorm1d(o)] if bn else []) + [act()]

    return nn.Sequential(*block(1, 6, 2), *block(6, 16, 0), nn.Flatten(),
                         *dense(400, 120), *dense(120, 84), nn.Linear(84, 10))


def nin():
    def block(i, o, k, s, p):
        return [nn.Conv2d(i, o, k, s, p), nn.ReLU(), nn.Conv2d(o, o, 1), nn.ReLU(),
                nn.Conv2d(o, o, 1), nn.ReLU()]

    return nn.Sequential(*block(3, 96, 11, 4, 0), nn.MaxPool2d(3, 2), *block(96, 256, 5, 1, 2),
                         nn.MaxPool2d(3, 2), *block(256, 384, 3, 1, 1), nn.MaxPool2d(3, 2),
                         nn.Dropout(0.5), *block(384, 1000, 3, 1, 1), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten())


def resnet_cifar(make):
    def build():
        m = make(num_classes=10)
        m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        m.maxpool = nn.Identity()
        return m
    return build


def densenet_cifar():
    m = tvm.densenet121(num_classes=10)
    m.features.conv0 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    m.features.pool0 = nn.Identity()
    return m


MNIST, CIFAR, IMAGENET = (1, 28, 28), (3, 32, 32), (3, 224, 224)
MODELS = {
    "softmax_regression": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), MNIST, 10),
    "mlp": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)),
            MNIST, 10),
    "lenet5": (lambda: lenet(nn.Sigmoid, nn.AvgPool2d), MNIST, 10),
    "lenet5_modern": (lambda: lenet(nn.ReLU, nn.MaxPool2d), MNIST, 10),
    "lenet5_bn": (lambda: lenet(nn.ReLU, nn.MaxPool2d, bn=True), MNIST, 10),
    "alexnet": (tvm.alexnet, IMAGENET, 1000),
    **{f"vgg{d}{bn}": (getattr(tvm, f"vgg{d}{bn}"), IMAGENET, 1000)
       for d in (11, 13, 16, 19) for bn in ("", "_bn")},
    "nin": (nin, IMAGENET, 1000),
    "googlenet": (lambda: tvm.googlenet(aux_logits=False, init_weights=True), IMAGENET, 1000),
    **{f"resnet{d}": (getattr(tvm, f"resnet{d}"), IMAGENET, 1000) for d in (18, 34, 50, 101, 152)},
    **{f"resnet{d}_cifar": (resnet_cifar(getattr(tvm, f"resnet{d}")), CIFAR, 10)
       for d in (18, 34, 50, 101, 152)},
    "resnext50_32x4d": (tvm.resnext50_32x4d, IMAGENET, 1000),
    "densenet121": (tvm.densenet121, IMAGENET, 1000),
    "densenet121_cifar": (densenet_cifar, CIFAR, 10),
    # benches/torch_airbench.py's network (the whitening weights random here: same cost).
    "airbench94": (lambda: __import__("torch_airbench").make_net(), CIFAR, 10),
}


def bench(fn, reps=5):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("models", nargs="*", help="zoo names (default: all)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    for name in a.models or MODELS:
        make, shape, _ = MODELS[name]
        model = make()
        x = torch.randn(a.batch, *shape)
        model.eval()
        with torch.no_grad():
            fwd = bench(lambda: model(x), a.reps)
        model.train()

        def step():
            model.zero_grad(set_to_none=True)
            model(x).sum().backward()

        both = bench(step, a.reps)
        for kind, secs in (("forward", fwd), ("forward+backward", both)):
            print(json.dumps({"framework": f"pytorch {torch.__version__}",
                              "threads": torch.get_num_threads(), "model": name, "pass": kind,
                              "batch": a.batch, "seconds_per_batch": round(secs, 5),
                              "images_per_s": round(a.batch / secs, 2)}), flush=True)


if __name__ == "__main__":
    main()
