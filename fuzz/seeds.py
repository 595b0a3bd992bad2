#!/usr/bin/env python3
"""Writes the seed inputs of each fuzz target into fuzz/corpus/<target>/seed-*: small valid
files of each format (libFuzzer mutates from them). Run from the repository root:
    python3 fuzz/seeds.py [RUN_DIR]
RUN_DIR: a finished `ember train` run of lenet5_modern, for run.json and weights seeds."""
import gzip, io, json, os, struct, sys, tarfile, zlib

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def idx(dims, payload):
    return struct.pack(">BBBB", 0, 0, 8, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + payload


def png(w, h, grey, value):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    colour = 0 if grey else 2
    px = bytes([value]) if grey else bytes([value, 255 - value, value // 2])
    raw = b"".join(b"\0" + px * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


images = idx([3, 4, 5], bytes(range(60)))
labels = idx([3], bytes([1, 7, 9]))
put("idx", "images", images)
put("idx", "labels", labels)
put("idx", "images-gz", gzip.compress(images))
put("idx", "zero-size-images", idx([4, 0, 28], b""))  # MNIST must reject, not index past

record = bytes([7]) + bytes(i % 251 for i in range(3072))
put("cifar", "cifar10", b"\0" + record * 2)
put("cifar", "cifar100", b"\1" + bytes([3, 42]) + bytes(3072))

put("image", "rgb-png", png(4, 3, False, 200))
put("image", "grey-png", png(5, 2, True, 9))
jpg = os.path.join(os.path.dirname(root), "..", "docs", "img", "samples", "cifar10-horse-0003.jpg")
if os.path.exists(jpg):
    put("image", "jpeg", open(jpg, "rb").read())

buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w:gz") as tar:
    for path, data in [("data/train/ant/0.png", png(4, 3, False, 10)),
                       ("data/train/cat/0.png", png(4, 3, False, 240)),
                       ("data/train/cat/1.png", png(4, 3, True, 90))]:
        info = tarfile.TarInfo(path)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
put("archive", "folder", buf.getvalue())

docs = os.path.join(os.path.dirname(root), "..", "docs", "runs")
for dirpath, _, files in os.walk(docs):
    for f in files:
        p = os.path.join(dirpath, f)
        if f.endswith(".toml") and f != "best.toml":
            put("config", os.path.basename(dirpath) + "-" + f, open(p, "rb").read())
        if f == "trials.json":
            put("trials", os.path.basename(dirpath), open(p, "rb").read())
        if f == "best.toml":
            put("config", os.path.basename(dirpath) + "-best.toml", open(p, "rb").read())
space = os.path.join(os.path.dirname(root), "..", "examples", "search", "lenet_mnist.toml")
put("space", "lenet_mnist", open(space, "rb").read())
put("space", "int-choice", b'[base]\nmodel = "lenet5_modern"\ndataset = "mnist"\n'
    b'[space.epochs]\ntype = "int"\nlow = 1\nhigh = 9\nsteps = 4\n'
    b'[space.optimizer]\ntype = "choice"\nvalues = ["sgd", "adam"]\n')

header = json.dumps({"fc3.bias": {"dtype": "F32", "shape": [10], "data_offsets": [0, 40]}}).encode()
put("weights", "safetensors", b"\1" + struct.pack("<Q", len(header)) + header + bytes(40))
if len(sys.argv) > 1:
    run = sys.argv[1]
    put("run_json", "lenet", open(os.path.join(run, "run.json"), "rb").read())
    # The head of a burnpack (its header and index): whole files are slow to fuzz.
    put("weights", "bpk-head", b"\0" + open(os.path.join(run, "final.bpk"), "rb").read()[:4096])
    put("weights", "optim-bpk", b"\0" + open(os.path.join(run, "checkpoint", "optim-1.bpk"), "rb").read())
