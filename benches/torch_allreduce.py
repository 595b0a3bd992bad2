"""PyTorch's all-reduce at the gradient sizes of Ember's networks: the counterpart of
`examples/mpi_allreduce.rs` (Open MPI through Ember), for `docs/benchmarks.md`.

Two processes on this machine with `torch.distributed` and its CPU backend, gloo (what
PyTorch's DistributedDataParallel uses on CPUs), over loopback TCP; the gradients in 25 MiB
buckets, as DDP's `bucket_cap_mb` default and Ember cut them. Prints one JSON line per size.

    python3 benches/torch_allreduce.py [--ranks 2]
"""

import argparse
import json
import os
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

# Parameters of lenet5_modern (MNIST), airbench94's network and resnet18 for CIFAR: the same
# sizes as examples/mpi_allreduce.rs.
SIZES = [("lenet5_modern", 61_706), ("airbench94", 1_972_792), ("resnet18_cifar", 11_173_962)]
BUCKET_VALUES = 25 * 1024 * 1024 // 4


def run(rank: int, ranks: int, port: int) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=ranks)
    for name, params in SIZES:
        buckets = [
            torch.ones(min(BUCKET_VALUES, params - start))
            for start in range(0, params, BUCKET_VALUES)
        ]
        reps = 200 if params < 1_000_000 else 20
        for b in buckets:  # warm-up: connections and buffers
            dist.all_reduce(b)
        started = time.perf_counter()
        for _ in range(reps):
            for b in buckets:
                dist.all_reduce(b)
        secs = (time.perf_counter() - started) / reps
        if rank == 0:
            busbw = 2 * (ranks - 1) / ranks * params * 4 / secs
            print(json.dumps({
                "bench": "torch_allreduce", "backend": "gloo", "model": name, "params": params,
                "ranks": ranks, "ms": round(secs * 1e3, 3),
                "busbw_gbit_s": round(busbw * 8 / 1e9, 2), "torch": torch.__version__,
            }), flush=True)
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--port", type=int, default=29517)
    args = parser.parse_args()
    mp.spawn(run, args=(args.ranks, args.port), nprocs=args.ranks, join=True)


if __name__ == "__main__":
    main()
