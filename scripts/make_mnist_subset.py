#!/usr/bin/env python3
"""Writes data/mnist-subset/: the first 6,000 training and 1,000 test digits of real MNIST,
in the official IDX format, gzipped (mtime 0, so the bytes are reproducible).

Usage: python3 scripts/make_mnist_subset.py [MNIST_DIR] (default ../shared/data/mnist)
"""
import gzip
import struct
import sys
from pathlib import Path

SRC = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/mnist")
DST = Path(__file__).resolve().parent.parent / "data" / "mnist-subset"
KEEP = {"train": 6000, "t10k": 1000}


def read_idx(path):
    data = gzip.decompress(path.read_bytes())
    ndims = data[3]
    dims = list(struct.unpack(">" + "I" * ndims, data[4 : 4 + 4 * ndims]))
    return dims, data[4 + 4 * ndims :]


def write_idx(path, dims, body):
    header = bytes([0, 0, 8, len(dims)]) + struct.pack(">" + "I" * len(dims), *dims)
    with open(path, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as g:
            g.write(header + body)


DST.mkdir(parents=True, exist_ok=True)
for split, n in KEEP.items():
    for kind in ("images-idx3", "labels-idx1"):
        name = f"{split}-{kind}-ubyte.gz"
        dims, body = read_idx(SRC / name)
        per_item = 1
        for d in dims[1:]:
            per_item *= d
        write_idx(DST / name, [n] + dims[1:], body[: n * per_item])
        print(f"{DST / name}: {n} of {dims[0]}")
