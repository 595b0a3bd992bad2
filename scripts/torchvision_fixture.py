#!/usr/bin/env python3
"""Makes the PyTorch fixtures of Ember's weight-import tests (crates/ember-train/tests/fixtures/torchvision).

    python3 scripts/torchvision_fixture.py            # the committed fixture (~250 KB)
    python3 scripts/torchvision_fixture.py --full DIR # full-size torchvision models, random init (~1 GB)

Small models in torchvision's layout (torchvision's own classes and blocks, narrower) are saved
with `torch.save(model.state_dict())`, and their outputs on a fixed input beside them: the test
loads each .pth into the matching Ember model and compares outputs. `keys.json` lists the key
names and shapes of the full-size torchvision models, so that the key tables are checked against
every model torchvision ships, without the weights. `--full` writes those models' weights and
outputs too (random init: no download), for `cargo test -- --ignored torchvision_full_size`.
"""
import argparse
import json
import math
import os

import torch
import torch.nn as nn
import torchvision.models as tvm
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.models.densenet import DenseNet
from torchvision.models.vgg import VGG, make_layers, cfgs


class NarrowResNet(ResNet):
    """torchvision's ResNet with `base` channels in the stem and first stage instead of 64."""

    def __init__(self, block, layers, base, num_classes, groups=1, width_per_group=64):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = base
        self.dilation = 1
        self.groups = groups
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, base, layers[0])
        self.layer2 = self._make_layer(block, 2 * base, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * base, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * base, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * base * block.expansion, num_classes)


def narrow_vgg(num_classes):
    """VGG-11-BN with 1/32 of the channels and 16 hidden units, torchvision's layout."""
    cfg = [v if v == "M" else v // 32 for v in cfgs["A"]]
    m = VGG(make_layers(cfg, batch_norm=True), num_classes=num_classes, init_weights=True)
    c = cfg[-2]
    m.classifier = nn.Sequential(
        nn.Linear(c * 7 * 7, 16), nn.ReLU(True), nn.Dropout(),
        nn.Linear(16, 16), nn.ReLU(True), nn.Dropout(), nn.Linear(16, num_classes))
    return m


def randomise_bn(model, gen):
    """Non-trivial batch-norm statistics, so that a wrong mapping shows in the outputs."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


def fixed_input(n, c, h, w):
    """The same formula as the Rust test: x[n,c,y,x] = sin(0.37 (n 7 + c 3) + 0.11 y + 0.07 x)."""
    t = torch.empty(n, c, h, w)
    for a in range(n):
        for b in range(c):
            for y in range(h):
                for x in range(w):
                    t[a, b, y, x] = math.sin(0.37 * (a * 7 + b * 3) + 0.11 * y + 0.07 * x)
    return t


def save(model, name, out, size, outputs):
    gen = torch.Generator().manual_seed(len(name))
    with torch.no_grad():
        randomise_bn(model, gen)
        model.eval()
        y = model(fixed_input(2, 3, size, size))
        if isinstance(y, tuple):  # GoogLeNet in training mode returns aux outputs
            y = y[0]
    torch.save(model.state_dict(), os.path.join(out, f"{name}.pth"))
    outputs[name] = {"input": [2, 3, size, size], "output": y.flatten().tolist()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/ember-train/tests/fixtures/torchvision")
    ap.add_argument("--full", metavar="DIR", help="write full-size models and outputs here")
    args = ap.parse_args()
    torch.manual_seed(0)

    if args.full:
        os.makedirs(args.full, exist_ok=True)
        outputs = {}
        for name, make in FULL.items():
            save(make(), name, args.full, 224, outputs)
            print(name)
        with open(os.path.join(args.full, "outputs.json"), "w") as f:
            json.dump(outputs, f)
        return

    os.makedirs(args.out, exist_ok=True)
    outputs = {}
    save(NarrowResNet(BasicBlock, [1, 1, 1, 1], 2, 5), "resnet_narrow", args.out, 32, outputs)
    save(NarrowResNet(Bottleneck, [1, 1, 1, 1], 4, 5, groups=2, width_per_group=32),
         "resnext_narrow", args.out, 32, outputs)
    save(narrow_vgg(5), "vgg11_bn_narrow", args.out, 32, outputs)
    save(DenseNet(growth_rate=4, block_config=(2, 2), num_init_features=8, bn_size=2,
                  num_classes=5), "densenet_narrow", args.out, 32, outputs)
    with open(os.path.join(args.out, "outputs.json"), "w") as f:
        json.dump(outputs, f)

    keys = {}
    for name, make in FULL.items():
        sd = make().state_dict()
        keys[name] = {k: list(v.shape) for k, v in sd.items()}
    with open(os.path.join(args.out, "keys.json"), "w") as f:
        json.dump(keys, f, separators=(",", ":"))


FULL = {
    "resnet18": lambda: tvm.resnet18(),
    "resnet50": lambda: tvm.resnet50(),
    "resnext50_32x4d": lambda: tvm.resnext50_32x4d(),
    "vgg11": lambda: tvm.vgg11(),
    "vgg16_bn": lambda: tvm.vgg16_bn(),
    "alexnet": lambda: tvm.alexnet(),
    "densenet121": lambda: tvm.densenet121(),
    # The ImageNet file keeps the auxiliary heads; transform_input is off so that the same
    # input reaches both (torchvision's pretrained GoogLeNet turns it on).
    "googlenet": lambda: tvm.googlenet(aux_logits=True, init_weights=True, transform_input=False),
}

if __name__ == "__main__":
    main()
