"""Hidden tests of get_batch: other token dtypes and values, tiny batches and contexts, the
whole range of window starts drawn uniformly (chi-square with fixed seeds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests import producers
from tests.hidden import producers_hidden as hidden

OFFSET = 40_000  # token values above 32,767: an int16 anywhere on the way would wrap


def tokens(size: int, dtype: str) -> np.ndarray:
    """OFFSET, OFFSET+1, ...: every window's first token names its start."""
    return (np.arange(size) + OFFSET).astype(dtype)


def sample(student, size, dtype, batch, context, num_batches, memmap, seed=3):
    out = student.run(
        hidden.get_batch_hidden, seed=seed, tokens=tokens(size, dtype), batch_size=batch, context_length=context,
        num_batches=num_batches, memmap=memmap,
    )  # fmt: skip
    assert out["dtypes"] == ["torch.int64"] and out["devices"] == ["cpu"]
    return out["x"], out["y"]


@pytest.mark.problem("get_batch")
@pytest.mark.parametrize(
    "dtype,memmap", [("uint16", True), ("int32", True), ("int64", False), ("uint32", False)],
    ids=["uint16-memmap", "int32-memmap", "int64-array", "uint32-array"],
)  # fmt: skip
def test_windows_of_other_token_dtypes(student, dtype, memmap):
    size, batch, context = 60, 9, 5
    x, y = sample(student, size, dtype, batch, context, 3, memmap)
    assert x.shape == y.shape == (3, batch, context)
    starts = x[..., :1] - OFFSET
    torch.testing.assert_close(x, starts + OFFSET + torch.arange(context))
    torch.testing.assert_close(y, x + 1)
    assert starts.min() >= 0 and starts.max() <= size - context - 1


@pytest.mark.problem("get_batch")
def test_batch_and_context_of_one(student):
    x, y = sample(student, 5, "uint16", 1, 1, 200, False)
    assert x.shape == (200, 1, 1)
    torch.testing.assert_close(y, x + 1)
    assert set((x.flatten() - OFFSET).tolist()) == {0, 1, 2, 3}  # every start of the four, none past them


@pytest.mark.problem("get_batch")
def test_context_of_all_but_one_token(student):
    # n = context + 1: the only window is the whole dataset, every time.
    x, y = sample(student, 33, "int64", 4, 32, 2, False)
    torch.testing.assert_close(x, (torch.arange(32) + OFFSET).expand(2, 4, 32))
    torch.testing.assert_close(y, (torch.arange(1, 33) + OFFSET).expand(2, 4, 32))


@pytest.mark.problem("get_batch")
@pytest.mark.parametrize("seed", [11, 12])
def test_starts_cover_the_range_uniformly(student, seed):
    size, context, batch, num_batches = 45, 13, 64, 40
    x, _ = sample(student, size, "uint16", batch, context, num_batches, False, seed=seed)
    starts = (x[..., 0] - OFFSET).flatten()
    counts = torch.bincount(starts, minlength=size - context).double()
    assert counts.numel() == size - context, "a window starts too late to have a target for its last token"
    assert counts[0] > 0 and counts[-1] > 0, "the first and last valid starts must both be drawn"
    assert (counts > 0).all()
    expected, df = starts.numel() / counts.numel(), counts.numel() - 1
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < df + 6 * (2 * df) ** 0.5, f"chi-square {chi2:.1f} with {df} degrees of freedom"


@pytest.mark.problem("get_batch")
def test_batch_rows_are_drawn_independently(student):
    # Not one start per batch, nor consecutive ones: distinct starts within most batches.
    x, _ = sample(student, 1000, "uint16", 16, 8, 20, False)
    starts = x[..., 0] - OFFSET
    distinct = [len(set(row.tolist())) for row in starts]
    assert sum(d >= 12 for d in distinct) >= 18, distinct
    steps = (starts[:, 1:] - starts[:, :-1]).flatten()
    assert (steps == 1).float().mean() < 0.2


@pytest.mark.problem("get_batch")
def test_context_longer_than_dataset_is_rejected(student):
    out = student.run(producers.get_batch_outcome, dataset_size=4, context_length=10, device="cpu")
    assert out["error"] is not None and "ValueError" in out["error"], f"expected a ValueError, got {out}"
