#!/usr/bin/env python3
"""Makes the fixture of Ember's RandAugment/TrivialAugment op tests
(crates/ember-data/tests/fixtures/autoaugment.json) with torchvision's own kernels.

    python3 scripts/torchvision_autoaugment_fixture.py [--archive ../shared/data/cifar10/cifar10-train-jpg.tar.gz]

A 16x20 crop of a CIFAR-10 training image (uint8, CHW) goes through
`torchvision.transforms.autoaugment._apply_op` (the function RandAugment and TrivialAugmentWide
call, nearest interpolation, no fill) for every op at a few magnitudes of both sign; the input,
each op, magnitude and output are written as hex strings. The Rust test applies
`AugmentOp::apply` to the same input and compares.
"""
import argparse
import io
import json
import tarfile

import torch
import torchvision
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.autoaugment import _apply_op

CASES = [
    ("Identity", 0.0),
    ("ShearX", 0.3), ("ShearX", -0.17), ("ShearY", 0.21), ("ShearY", -0.99),
    ("TranslateX", 4.53), ("TranslateX", -7.0), ("TranslateY", 3.0), ("TranslateY", -2.9),
    ("Rotate", 30.0), ("Rotate", -13.5), ("Rotate", 135.0),
    ("Brightness", 0.6), ("Brightness", -0.45),
    ("Color", 0.9), ("Color", -0.6),
    ("Contrast", 0.63), ("Contrast", -0.9),
    ("Sharpness", 0.9), ("Sharpness", -0.8),
    ("Posterize", 4.0), ("Posterize", 2.0), ("Posterize", 8.0),
    ("Solarize", 128.0), ("Solarize", 25.5),
    ("AutoContrast", 0.0),
    ("Equalize", 0.0),
]

SNAKE = {
    "ShearX": "shear_x", "ShearY": "shear_y", "TranslateX": "translate_x",
    "TranslateY": "translate_y", "AutoContrast": "auto_contrast",
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--archive", default="../shared/data/cifar10/cifar10-train-jpg.tar.gz")
    p.add_argument("--out", default="crates/ember-data/tests/fixtures/autoaugment.json")
    a = p.parse_args()
    with tarfile.open(a.archive) as tar:
        member = sorted(m.name for m in tar.getmembers() if m.name.endswith(".jpg"))[0]
        img = Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB")
    x = torch.from_numpy(__import__("numpy").asarray(img).copy()).permute(2, 0, 1)
    x = x[:, 6:22, 4:24].contiguous()  # 3 x 16 x 20
    cases = []
    for op, m in CASES:
        y = _apply_op(x, op, m, interpolation=InterpolationMode.NEAREST, fill=None)
        cases.append({
            "op": SNAKE.get(op, op.lower()),
            "magnitude": m,
            "output": bytes(y.flatten().tolist()).hex(),
        })
    fixture = {
        "made_by": f"scripts/torchvision_autoaugment_fixture.py, torch {torch.__version__}, "
                   f"torchvision {torchvision.__version__}, from {member}",
        "shape": list(x.shape),
        "input": bytes(x.flatten().tolist()).hex(),
        "cases": cases,
    }
    with open(a.out, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(f"wrote {a.out}: {len(cases)} cases on {member}")


if __name__ == "__main__":
    main()
