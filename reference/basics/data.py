"""Training batches from one long array of token ids.

Token files are flat ``uint16`` arrays (vocabularies up to 65,536 tokens) opened with
``np.memmap``: the operating system pages in only the windows a batch touches, so the
corpus never has to fit in memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor


def load_tokens(path: str | Path) -> np.memmap:
    """Memory-map a file of ``uint16`` token ids, read-only."""
    return np.memmap(path, dtype=np.uint16, mode="r")


def get_batch(
    dataset: npt.NDArray[np.integer],
    batch_size: int,
    context_length: int,
    device: str | torch.device,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Sample ``batch_size`` windows of ``context_length + 1`` consecutive tokens.

    dataset: (n,) token ids, e.g. a memmap. Returns ``(x, y)``, each (batch_size,
    context_length) int64 on ``device``: the inputs and the next-token targets, ``y = x``
    shifted left by one. Window starts are uniform over the ``n - context_length`` valid
    positions, drawn from ``generator`` (torch's global generator when None).
    """
    # BEGIN SOLUTION problem=get_batch
    device = torch.device(device)  # fails early on a malformed device name
    num_starts = len(dataset) - context_length
    if num_starts < 1:
        raise ValueError(
            f"dataset has {len(dataset)} tokens; a window of context_length={context_length} "
            f"needs at least {context_length + 1}"
        )
    starts = torch.randint(num_starts, (batch_size, 1), generator=generator)  # (batch, 1)
    indices = starts + torch.arange(context_length + 1)  # (batch, context+1)
    # Fancy indexing reads only these positions from the memmap; int64 because that is
    # what embedding lookups and cross-entropy targets take.
    windows = torch.from_numpy(dataset[indices.numpy()].astype(np.int64))
    if device.type == "cuda":
        # Pinned host memory lets the copy overlap with GPU work already queued.
        windows = windows.pin_memory().to(device, non_blocking=True)
    else:
        windows = windows.to(device)
    return windows[:, :-1], windows[:, 1:]
    # END SOLUTION
