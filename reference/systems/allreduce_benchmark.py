"""Time all-reduce: how long averaging a tensor across ranks takes, by tensor size and number of ranks.

    python -m lmc_systems.allreduce_benchmark                       # NCCL on the GPUs there are
    python -m lmc_systems.allreduce_benchmark --world-size 2 --sizes-mb 1 10 100 1000
    python -m lmc_systems.allreduce_benchmark --backend gloo        # gloo on the CPU

Each configuration starts ``world_size`` processes (one per GPU with NCCL, CPU processes with
gloo), all-reduces a float32 tensor a few untimed times (the first calls set up connections and
buffers), then times ``--iters`` calls, each between two barriers (and ``cuda.synchronize``: the
call only queues the work). A call is as slow as its slowest rank, so each iteration counts the
maximum over ranks; the table shows the median of those.

Bandwidth, two ways: *algorithmic* = size / time; *bus* = algorithmic · 2(n−1)/n, the bytes each
rank sends and receives in a ring all-reduce, comparable across world sizes and to the link's
rated bandwidth. Without a GPU it runs gloo on the CPU, with a notice: those numbers measure this
machine's memory and loopback network, not a GPU interconnect.

This file imports nothing from the course's packages, so it also runs as a plain script.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

CPU_NOTICE = (
    "note: no CUDA GPU, so this runs gloo on the CPU: the times measure this machine's memory and "
    "loopback network, they are not GPU numbers."
)


@dataclass(frozen=True)
class Result:
    backend: str
    world_size: int
    size_mb: float
    seconds: float  # median over iterations of the slowest rank's time

    @property
    def algorithmic_gb_s(self) -> float:
        return self.size_mb * 2**20 / self.seconds / 1e9

    @property
    def bus_gb_s(self) -> float:
        return self.algorithmic_gb_s * 2 * (self.world_size - 1) / self.world_size


def time_all_reduce(rank: int, world_size: int, backend: str, size_mb: float, warmup: int, iters: int) -> list[float]:
    """Seconds of each timed all-reduce on this rank (the group is already set up)."""
    device = torch.device("cuda", rank) if backend == "nccl" else torch.device("cpu")
    tensor = torch.randn(int(size_mb * 2**20) // 4, device=device)  # float32: 4 bytes per element
    seconds = []
    for i in range(warmup + iters):
        dist.barrier()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        dist.all_reduce(tensor)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            seconds.append(time.perf_counter() - start)
    return seconds


def _rank_main(
    rank: int, world_size: int, backend: str, store: str, sizes_mb: list[float], warmup: int, iters: int, out: str
) -> None:
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(
        backend, init_method=f"file://{store}", rank=rank, world_size=world_size, timeout=timedelta(minutes=5)
    )
    try:
        rows = []
        for size_mb in sizes_mb:
            mine = torch.tensor(time_all_reduce(rank, world_size, backend, size_mb, warmup, iters), dtype=torch.float64)
            slowest = mine.to("cuda" if backend == "nccl" else "cpu")
            dist.all_reduce(slowest, op=dist.ReduceOp.MAX)  # per iteration: the slowest rank's time
            rows.append((size_mb, statistics.median(slowest.tolist())))
        if rank == 0:
            torch.save(rows, out)
    finally:
        dist.destroy_process_group()


def run(backend: str, world_size: int, sizes_mb: list[float], warmup: int, iters: int) -> list[Result]:
    """One row per size, measured on ``world_size`` fresh processes."""
    with tempfile.TemporaryDirectory(prefix="allreduce-") as folder:
        out = os.path.join(folder, "rows.pt")
        args = (world_size, backend, os.path.join(folder, "store"), sizes_mb, warmup, iters, out)
        mp.spawn(_rank_main, args=args, nprocs=world_size, join=True)
        return [Result(backend, world_size, size_mb, seconds) for size_mb, seconds in torch.load(out)]


def markdown_table(results: list[Result]) -> str:
    lines = [
        "| backend | ranks | size | time (ms) | algorithmic GB/s | bus GB/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.world_size} | {r.size_mb:g} MB | {r.seconds * 1e3:.3f} | "
            f"{r.algorithmic_gb_s:.2f} | {r.bus_gb_s:.2f} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["nccl", "gloo"], help="Default: nccl with 2 or more GPUs, else gloo.")
    parser.add_argument(
        "--world-size", type=int, nargs="+", help="Default: 2, 4, 6 (those the GPUs allow); 2 and 4 on the CPU."
    )
    parser.add_argument("--sizes-mb", type=float, nargs="+", help="Default: 1 10 100 1000 (1 to 100 on the CPU).")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iters", type=int, default=20)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[Result]:
    args = parse_args(argv)
    gpus = torch.cuda.device_count()
    backend = args.backend or ("nccl" if gpus >= 2 else "gloo")
    if backend == "gloo" and gpus == 0:
        print(CPU_NOTICE)
    if backend == "gloo":
        world_sizes = args.world_size or [2, 4]
        sizes_mb = args.sizes_mb or [1, 10, 100]
    else:
        world_sizes = args.world_size or [n for n in (2, 4, 6) if n <= gpus]
        sizes_mb = args.sizes_mb or [1, 10, 100, 1000]
        if max(world_sizes, default=0) > gpus or not world_sizes:
            raise SystemExit(f"NCCL needs one GPU per rank: {gpus} GPU(s) here, asked for {world_sizes or 2} ranks.")
    results = []
    for world_size in world_sizes:
        results += run(backend, world_size, sizes_mb, args.warmup, args.iters)
    print(markdown_table(results))
    return results


if __name__ == "__main__":
    main()
