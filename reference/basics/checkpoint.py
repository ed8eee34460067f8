"""Save and restore a training run: model weights, optimizer state and the iteration."""

from __future__ import annotations

import os
from typing import IO

import torch
from torch import nn

PathOrFile = str | os.PathLike[str] | IO[bytes]


def save_checkpoint(model: nn.Module, optimizer: torch.optim.Optimizer, iteration: int, out: PathOrFile) -> None:
    """Write everything needed to resume training to ``out`` (a path or a binary file object).

    Adam's moment estimates are part of the state: resuming without them restarts the
    optimizer cold, and the loss jumps.
    """
    # BEGIN SOLUTION problem=checkpointing
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "iteration": iteration}
    torch.save(state, out)
    # END SOLUTION


def load_checkpoint(src: PathOrFile, model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Restore ``model`` and ``optimizer`` in place from ``src``; returns the saved iteration."""
    # BEGIN SOLUTION problem=checkpointing
    # weights_only: tensors and plain containers only, so loading cannot run arbitrary code.
    # Loading onto the CPU first works wherever the run resumes; load_state_dict copies each
    # tensor onto the device of the parameter it fills.
    state = torch.load(src, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["iteration"])
    # END SOLUTION
