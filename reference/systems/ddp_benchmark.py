"""Time a training step of the basics Transformer under data parallelism, synchronised seven ways.

    python -m lmc_systems.ddp_benchmark                                   # 2 GPUs (NCCL), else the CPU (gloo)
    python -m lmc_systems.ddp_benchmark --size xl --bucket-mb 1 10 100 1000
    python -m lmc_systems.ddp_benchmark --size tiny --world-size 2        # what runs without a GPU

Variants, each on ``world_size`` processes training the same model on their own batches:

- ``naive``: after backward, one blocking all-reduce per parameter;
- ``flat``: after backward, every gradient copied into one flat tensor, one all-reduce;
- ``individual``: :class:`DDPIndividualParameters`, each gradient's all-reduce started by a hook
  during backward;
- ``bucketed B MB``: :class:`DDPBucketed`, one all-reduce per bucket of at most B MB;
- ``fsdp`` and ``fsdp bf16``: :class:`FSDP` (weights sharded, gathered per layer; gradients
  reduce-scattered), in fp32 and with bf16 compute;
- ``individual + sharded AdamW``: the overlapped DDP with :class:`ShardedOptimizer` (ZeRO-1):
  each rank steps half the parameters, then broadcasts them.

For each: the median step time (forward, backward, gradient synchronisation, AdamW step) and the
*exposed communication*: the time from the end of backward until the gradients are averaged, the
part of the communication not hidden behind backward. Each step counts the slowest rank. A
variant whose class still raises ``NotImplementedError`` is listed as not implemented.

Without two GPUs it runs a small model with gloo on the CPU, with a notice: those numbers show
how the variants compare on this machine, not on GPUs.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from .benchmark import SIZES, build_model, random_batch, synchronize
from .ddp import DDPBucketed, DDPIndividualParameters
from .fsdp import FSDP
from .sharded_optimizer import ShardedOptimizer

CPU_NOTICE = (
    "note: fewer than 2 CUDA GPUs, so this runs gloo on the CPU: the times compare the variants on "
    "this machine, they are not GPU numbers."
)


@dataclass(frozen=True)
class Variant:
    """How one variant wraps the model, prepares a step and synchronises gradients after backward."""

    name: str
    wrap: Callable[[nn.Module], nn.Module]
    start_step: Callable[[nn.Module], None]
    synchronize_gradients: Callable[[nn.Module], None]
    optimizer: Callable[[nn.Module], torch.optim.Optimizer] = lambda m: torch.optim.AdamW(m.parameters(), lr=1e-4)


@dataclass(frozen=True)
class Result:
    variant: str
    step_s: float | None  # median; None: not implemented
    exposed_s: float | None


def all_reduce_each(model: nn.Module) -> None:
    """Naive: average every gradient with its own blocking all-reduce, after backward."""
    for param in model.parameters():
        if param.grad is not None:
            dist.all_reduce(param.grad)
            param.grad.div_(dist.get_world_size())


def all_reduce_flat(model: nn.Module) -> None:
    """One all-reduce of every gradient, flattened into one tensor, after backward."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat.div_(dist.get_world_size())
    for grad, mean in zip(grads, _unflatten_dense_tensors(flat, grads)):
        grad.copy_(mean)


def variants(bucket_sizes_mb: Sequence[float]) -> list[Variant]:
    def nothing(model: nn.Module) -> None:
        pass

    def finish(model: nn.Module) -> None:
        model.finish_gradient_synchronization()

    return [
        Variant("naive", lambda m: m, nothing, all_reduce_each),
        Variant("flat", lambda m: m, nothing, all_reduce_flat),
        Variant("individual", DDPIndividualParameters, nothing, finish),
        *(
            Variant(f"bucketed {mb:g} MB", lambda m, mb=mb: DDPBucketed(m, mb), lambda m: m.start_step(), finish)
            for mb in bucket_sizes_mb
        ),
        Variant("fsdp", FSDP, nothing, finish),
        Variant("fsdp bf16", lambda m: FSDP(m, torch.bfloat16), nothing, finish),
        Variant(
            "individual + sharded AdamW", DDPIndividualParameters, nothing, finish,
            lambda m: ShardedOptimizer(m.parameters(), torch.optim.AdamW, lr=1e-4),
        ),
    ]


def time_variant(
    variant: Variant, args: argparse.Namespace, device: torch.device
) -> tuple[list[float], list[float]] | None:
    """Per timed step: (step seconds, exposed communication seconds) on this rank; None if not implemented."""
    torch.manual_seed(0)  # every rank builds the same model
    try:
        model = variant.wrap(build_model(SIZES[args.size], args.context_length, device))
    except NotImplementedError:
        return None
    optimizer = variant.optimizer(model)
    steps, exposed = [], []
    for i in range(args.warmup + args.steps):
        x, y = random_batch(args.batch_size, args.context_length, device)
        synchronize(device)
        start = time.perf_counter()
        variant.start_step(model)
        loss = nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        synchronize(device)
        backward_done = time.perf_counter()
        variant.synchronize_gradients(model)
        synchronize(device)
        synced = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        synchronize(device)
        if i >= args.warmup:
            steps.append(time.perf_counter() - start)
            exposed.append(synced - backward_done)
    return steps, exposed


def slowest_median(seconds: list[float], device: torch.device) -> float:
    """Median over steps of the slowest rank's time (a collective: every rank calls it)."""
    times = torch.tensor(seconds, dtype=torch.float64, device=device)
    dist.all_reduce(times, op=dist.ReduceOp.MAX)
    return statistics.median(times.tolist())


def _rank_main(rank: int, args: argparse.Namespace, backend: str, store: str, out: str) -> None:
    device = torch.device("cuda", rank) if backend == "nccl" else torch.device("cpu")
    if backend == "nccl":
        torch.cuda.set_device(device)
    else:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // args.world_size))  # ranks share the cores
    dist.init_process_group(
        backend, init_method=f"file://{store}", rank=rank, world_size=args.world_size, timeout=timedelta(minutes=10)
    )
    try:
        results = []
        for variant in variants(args.bucket_mb):
            timed = time_variant(variant, args, device)
            if timed is None:
                results.append(Result(variant.name, None, None))
            else:
                results.append(Result(variant.name, slowest_median(timed[0], device), slowest_median(timed[1], device)))
            gc.collect()  # gradient hooks keep a wrapped model in a reference cycle: free it before the next
        if rank == 0:
            torch.save([(r.variant, r.step_s, r.exposed_s) for r in results], out)
    finally:
        dist.destroy_process_group()


def markdown_table(results: list[Result]) -> str:
    lines = ["| variant | step (ms) | exposed communication (ms) | share of the step |", "|---|---:|---:|---:|"]
    for r in results:
        if r.step_s is None or r.exposed_s is None:
            lines.append(f"| {r.variant} | not implemented | | |")
        else:
            lines.append(
                f"| {r.variant} | {r.step_s * 1e3:.1f} | {r.exposed_s * 1e3:.1f} | {r.exposed_s / r.step_s:.0%} |"
            )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), help="Model size. Default: xl on GPUs, tiny on the CPU.")
    parser.add_argument("--context-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=4, help="Sequences per rank and step.")
    parser.add_argument("--world-size", type=int, default=2)
    parser.add_argument(
        "--bucket-mb", type=float, nargs="+", help="Bucket sizes. Default: 1 10 100 1000 on GPUs, 0.1 0.5 2 on the CPU."
    )
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[Result]:
    args = parse_args(argv)
    on_gpus = torch.cuda.device_count() >= args.world_size
    if not on_gpus:
        print(CPU_NOTICE)
    args.size = args.size or ("xl" if on_gpus else "tiny")
    args.bucket_mb = args.bucket_mb or ([1, 10, 100, 1000] if on_gpus else [0.1, 0.5, 2])
    with tempfile.TemporaryDirectory(prefix="ddp-benchmark-") as folder:
        out = os.path.join(folder, "results.pt")
        backend = "nccl" if on_gpus else "gloo"
        mp.spawn(
            _rank_main, args=(args, backend, os.path.join(folder, "store"), out), nprocs=args.world_size, join=True
        )
        results = [Result(*row) for row in torch.load(out)]
    where = f"{args.world_size} × {torch.cuda.get_device_name(0)}" if on_gpus else f"{args.world_size} CPU processes"
    print(f"model {args.size}, context {args.context_length}, batch {args.batch_size} per rank, {where} ({backend})")
    print(markdown_table(results))
    return results


if __name__ == "__main__":
    main()
