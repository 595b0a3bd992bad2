#!/usr/bin/env python3
"""torchvision's DataLoader doing what examples/loader_throughput.rs does, for comparison.

python3 benches/torchvision_loader.py IMAGEFOLDER_DIR [IMAGES]   (a directory: torchvision's
ImageFolder cannot read a .tar.gz). Prints one JSON line per (preset, workers).
"""
import json
import sys
import time

import torch
from torchvision import datasets, transforms as T

root = sys.argv[1]
images = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
presets = {
    ("Cifar", 32): T.Compose([T.Resize((32, 32)), T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(),
                             T.ToTensor(), T.Normalize(mean, std)]),
    # PIL images: torchvision's policies run on them before ToTensor, as in its references.
    ("Cifar+RandAugment(2,9)", 32): T.Compose([T.Resize((32, 32)), T.RandomCrop(32, padding=4),
                                              T.RandomHorizontalFlip(), T.RandAugment(2, 9),
                                              T.ToTensor(), T.Normalize(mean, std)]),
    ("Cifar+TrivialAugmentWide", 32): T.Compose([T.Resize((32, 32)), T.RandomCrop(32, padding=4),
                                                T.RandomHorizontalFlip(), T.TrivialAugmentWide(),
                                                T.ToTensor(), T.Normalize(mean, std)]),
    ("Imagenet", 224): T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(),
                                  T.ColorJitter(0.4, 0.4, 0.4), T.ToTensor(), T.Normalize(mean, std)]),
}
for (name, size), tf in presets.items():
    n = images if size == 32 else images // 5
    for workers in (1, 2):
        ds = datasets.ImageFolder(root, transform=tf)
        dl = torch.utils.data.DataLoader(ds, batch_size=128, shuffle=True, num_workers=workers,
                                         generator=torch.Generator().manual_seed(0))
        start = time.perf_counter()
        seen = 0
        for x, y in dl:
            seen += y.shape[0]
            if seen >= n:
                break
        secs = time.perf_counter() - start
        print(json.dumps({"loader": "torchvision", "preset": name, "size": size, "workers": workers,
                          "batch": 128, "images": seen, "seconds": round(secs, 3),
                          "images_per_s": round(seen / secs)}), flush=True)
