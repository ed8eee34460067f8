"""Time the basics Transformer: forward pass, backward pass and optimizer step.

    python -m lmc_systems.benchmark --size small --context-length 256
    python -m lmc_systems.benchmark --size small --size medium --mode train --bf16
    python -m lmc_systems.benchmark --size large --compile both          # eager vs torch.compile
    nsys profile -t cuda,nvtx -o run python -m lmc_systems.benchmark --size xl --steps 5

Timing GPU code correctly takes three habits, each used below:

1. **Warm up first.** The first steps allocate memory, load and select kernels (cuBLAS tries
   algorithms) and, under ``torch.compile``, compile the model. Untimed warm-up steps keep that
   one-off cost out of the measurement.
2. **Synchronize before reading the clock.** A CUDA call returns as soon as its kernel is *queued*;
   the GPU runs it later. ``torch.cuda.synchronize()`` waits until every queued kernel has finished,
   so the host clock measures the work, not the queueing. Each phase is synchronized on both ends,
   which is why the phases can be timed separately.
3. **Repeat and report the spread.** One step says little; the mean and standard deviation over
   ``--steps`` steps say how much to trust the mean.

NVTX ranges name each step and phase in an Nsight Systems timeline (``nsys profile -t cuda,nvtx``):
the kernels of the backward pass show up under "backward". Without a GPU the script runs a tiny
model on the CPU, only to show that it works: those numbers say nothing about GPU speed.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import timeit
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ._basics import basics

VOCAB_SIZE = 10_000
ROPE_THETA = 10_000.0
MODES = {"forward": ("forward",), "forward-backward": ("forward", "backward"), "train": ("forward", "backward", "optimizer")}
CPU_NOTICE = "note: no CUDA GPU, so this runs on the CPU: the times below check the script, they are not GPU numbers."


@dataclass(frozen=True)
class ModelSize:
    d_model: int
    d_ff: int
    num_layers: int
    num_heads: int


# The model sizes of the assignment (CS336 assignment 2, table 1), and a tiny one for the CPU.
SIZES = {
    "tiny": ModelSize(d_model=64, d_ff=256, num_layers=2, num_heads=4),
    "small": ModelSize(d_model=768, d_ff=3072, num_layers=12, num_heads=12),
    "medium": ModelSize(d_model=1024, d_ff=4096, num_layers=24, num_heads=16),
    "large": ModelSize(d_model=1280, d_ff=5120, num_layers=36, num_heads=20),
    "xl": ModelSize(d_model=1600, d_ff=6400, num_layers=48, num_heads=25),
    "2.7B": ModelSize(d_model=2560, d_ff=10240, num_layers=32, num_heads=32),
}


@dataclass(frozen=True)
class Run:
    """One row of the results: a model size, how it ran, and the seconds of each phase per step."""

    size: str
    context_length: int
    compiled: bool
    bf16: bool
    seconds: dict[str, list[float]]  # phase -> one duration per timed step


def build_model(size: ModelSize, context_length: int, device: torch.device) -> nn.Module:
    """The basics TransformerLM at ``size``, with fp32 weights on ``device``."""
    return basics.TransformerLM(
        vocab_size=VOCAB_SIZE,
        context_length=context_length,
        d_model=size.d_model,
        num_layers=size.num_layers,
        num_heads=size.num_heads,
        d_ff=size.d_ff,
        rope_theta=ROPE_THETA,
        device=device,
    )


def random_batch(batch_size: int, context_length: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Token ids and next-token targets, both (batch_size, context_length): speed does not depend on the data."""
    tokens = torch.randint(VOCAB_SIZE, (batch_size, context_length + 1), device=device)
    return tokens[:, :-1], tokens[:, 1:]


def synchronize(device: torch.device) -> None:
    """Wait for every kernel queued on ``device``; the CPU runs each call to the end anyway."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def nvtx_range(name: str, device: torch.device) -> contextlib.AbstractContextManager[None]:
    """A named range in an Nsight Systems timeline (nothing on the CPU)."""
    return torch.cuda.nvtx.range(name) if device.type == "cuda" else contextlib.nullcontext()


@contextlib.contextmanager
def timed(name: str, device: torch.device, seconds: dict[str, float]) -> Iterator[None]:
    """Time the block as phase ``name``: synchronized before the clock starts and before it stops."""
    synchronize(device)
    start = timeit.default_timer()
    with nvtx_range(name, device):
        yield
        synchronize(device)
    seconds[name] = timeit.default_timer() - start


def make_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, batch: tuple[Tensor, Tensor], phases: Sequence[str], bf16: bool
) -> Callable[[], dict[str, float]]:
    """A function that runs one step of ``phases`` and returns the seconds each took."""
    inputs, targets = batch
    device = inputs.device
    # Forward alone is inference: without autograd nothing is kept for a backward pass.
    grad = torch.enable_grad if "backward" in phases else torch.no_grad

    def step() -> dict[str, float]:
        seconds: dict[str, float] = {}
        with timed("forward", device, seconds), grad(), torch.autocast(device.type, torch.bfloat16, enabled=bf16):
            loss = basics.cross_entropy(model(inputs), targets)
        if "backward" in phases:
            with timed("backward", device, seconds):
                loss.backward()
        if "optimizer" in phases:
            with timed("optimizer", device, seconds):
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        return seconds

    return step


def benchmark(
    size_name: str,
    *,
    context_length: int,
    batch_size: int,
    mode: str,
    bf16: bool,
    compiled: bool,
    warmup: int,
    steps: int,
    device: torch.device,
) -> Run:
    """Warm up, then time ``steps`` steps of ``mode`` for one model size."""
    torch.manual_seed(0)
    model = build_model(SIZES[size_name], context_length, device)
    optimizer = basics.AdamW(model.parameters(), lr=1e-4)
    if compiled:
        model = torch.compile(model)  # type: ignore[assignment]
    step = make_step(model, optimizer, random_batch(batch_size, context_length, device), MODES[mode], bf16)
    for _ in range(warmup):
        step()
    seconds: dict[str, list[float]] = {phase: [] for phase in MODES[mode]}
    for i in range(steps):
        with nvtx_range(f"step {i}", device):
            for phase, duration in step().items():
                seconds[phase].append(duration)
    return Run(size_name, context_length, compiled, bf16, seconds)


def markdown_table(runs: list[Run]) -> str:
    """Mean ± standard deviation of each phase, in milliseconds, as a Markdown table."""
    phases = list(dict.fromkeys(phase for run in runs for phase in run.seconds))
    header = ["size", "context", "compiled", "bf16", *(f"{p} ms" for p in phases), "step ms"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        cells = [run.size, str(run.context_length), "yes" if run.compiled else "no", "yes" if run.bf16 else "no"]
        cells += [_mean_std(run.seconds[p]) if p in run.seconds else "" for p in phases]
        cells.append(_mean_std([sum(step) for step in zip(*run.seconds.values(), strict=True)]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _mean_std(seconds: list[float]) -> str:
    ms = [s * 1e3 for s in seconds]
    spread = statistics.stdev(ms) if len(ms) > 1 else 0.0
    return f"{statistics.mean(ms):.2f} ± {spread:.2f}"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lmc_systems.benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--size", action="append", choices=list(SIZES),
                        help="Model size (repeatable). Default: small on a GPU, tiny on the CPU.")
    parser.add_argument("--context-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--mode", choices=list(MODES), default="forward-backward",
                        help="What one step runs: forward, forward-backward, or train (adds the AdamW step).")
    parser.add_argument("--bf16", action="store_true", help="Run the forward pass under bf16 autocast.")
    parser.add_argument("--compile", choices=["off", "on", "both"], default="off",
                        help="torch.compile the model; 'both' times eager and compiled, one row each.")
    parser.add_argument("--warmup", type=int, default=5, help="Untimed steps first.")
    parser.add_argument("--steps", type=int, default=10, help="Timed steps.")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[Run]:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cpu":
        print(CPU_NOTICE)
    sizes = args.size or (["small"] if device.type == "cuda" else ["tiny"])
    compiled = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    runs = [
        benchmark(size, context_length=args.context_length, batch_size=args.batch_size, mode=args.mode,
                  bf16=args.bf16, compiled=c, warmup=args.warmup, steps=args.steps, device=device)
        for size in sizes
        for c in compiled
    ]
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{args.mode}, batch {args.batch_size}, {args.warmup} warm-up and {args.steps} timed steps on {where}:")
    print(markdown_table(runs))
    return runs


if __name__ == "__main__":
    main()
