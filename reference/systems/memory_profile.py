"""Where the GPU memory of the basics Transformer goes: peak memory, and allocator snapshots.

    python -m lmc_systems.memory_profile --size 2.7B --context-length 128 256 512
    python -m lmc_systems.memory_profile --size 2.7B --context-length 512 --bf16 --snapshot-dir snapshots

For each context length it runs one forward pass alone (inference, no autograd) and one full
training step (forward, backward, AdamW step), and reports the peak memory each reached. Peaks
are what limit the batch and model that fit: parameters and optimizer state sit in memory all
along, activations pile up during the forward pass and are freed during the backward one.

With ``--snapshot-dir`` it also records every allocation and free of PyTorch's CUDA caching
allocator, with the Python stack that made it (``torch.cuda.memory._record_memory_history``), and
writes one snapshot per run (``_dump_snapshot``). Drag a snapshot into https://pytorch.org/memory_viz
to see memory over time, coloured by the line of code that allocated each block.

It needs a CUDA GPU: the allocator it inspects is the GPU's. On the CPU it says so and stops.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ._basics import basics
from .benchmark import SIZES, build_model, random_batch

MIB = 2**20
NEEDS_GPU = "memory_profile needs a CUDA GPU: it reads the GPU's memory allocator, and this machine has none."


@dataclass(frozen=True)
class Peak:
    size: str
    context_length: int
    mode: str  # "forward" or "train"
    bf16: bool
    peak_mib: float


def run_once(
    mode: str, size: str, context_length: int, batch_size: int, bf16: bool, device: torch.device
) -> None:
    """Build a fresh model and optimizer, then run one forward pass or one training step."""
    torch.manual_seed(0)
    model = build_model(SIZES[size], context_length, device)
    optimizer = basics.AdamW(model.parameters(), lr=1e-4)
    inputs, targets = random_batch(batch_size, context_length, device)
    grad = torch.enable_grad() if mode == "train" else torch.no_grad()
    with grad, torch.autocast(device.type, torch.bfloat16, enabled=bf16):
        loss = basics.cross_entropy(model(inputs), targets)
    if mode == "train":
        loss.backward()
        optimizer.step()  # the first step creates AdamW's state: two fp32 tensors per parameter
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize(device)


def profile(
    mode: str, size: str, context_length: int, batch_size: int, bf16: bool, device: torch.device,
    snapshot: Path | None,
) -> Peak:
    """Peak memory of one run, from a clean allocator; with ``snapshot``, its allocation history too."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    if snapshot is not None:
        torch.cuda.memory._record_memory_history(max_entries=1_000_000)
    try:
        run_once(mode, size, context_length, batch_size, bf16, device)
        if snapshot is not None:
            torch.cuda.memory._dump_snapshot(str(snapshot))
    finally:
        if snapshot is not None:
            torch.cuda.memory._record_memory_history(enabled=None)  # stop recording
    return Peak(size, context_length, mode, bf16, torch.cuda.max_memory_allocated(device) / MIB)


def markdown_table(peaks: list[Peak]) -> str:
    lines = ["| size | context | mode | bf16 | peak MiB |", "|---|---|---|---|---|"]
    for p in peaks:
        lines.append(f"| {p.size} | {p.context_length} | {p.mode} | {'yes' if p.bf16 else 'no'} | {p.peak_mib:,.0f} |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lmc_systems.memory_profile", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="small")
    parser.add_argument("--context-length", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--mode", choices=["forward", "train", "both"], default="both")
    parser.add_argument("--bf16", action="store_true", help="Run the forward pass under bf16 autocast.")
    parser.add_argument("--snapshot-dir", type=Path, help="Write an allocator snapshot of each run here.")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[Peak]:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print(NEEDS_GPU)
        return []
    device = torch.device("cuda")
    if args.snapshot_dir:
        args.snapshot_dir.mkdir(parents=True, exist_ok=True)
    modes = ["forward", "train"] if args.mode == "both" else [args.mode]
    peaks = []
    for context_length in args.context_length:
        for mode in modes:
            name = f"{args.size}-ctx{context_length}-{mode}{'-bf16' if args.bf16 else ''}.pickle"
            snapshot = args.snapshot_dir / name if args.snapshot_dir else None
            peaks.append(profile(mode, args.size, context_length, args.batch_size, args.bf16, device, snapshot))
            if snapshot is not None:
                print(f"wrote {snapshot}")
    print(f"peak memory on {torch.cuda.get_device_name(device)}, batch {args.batch_size}:")
    print(markdown_table(peaks))
    return peaks


if __name__ == "__main__":
    main()
