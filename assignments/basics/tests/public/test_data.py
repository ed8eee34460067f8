"""get_batch: shapes and types, next-token targets, uniform window starts, clear errors."""

from __future__ import annotations

import pytest
import torch

from tests import producers

SIZE, BATCH, CONTEXT = 100, 32, 7


@pytest.mark.problem("get_batch")
@pytest.mark.parametrize("memmap", [False, True], ids=["array", "memmap"])
def test_get_batch_windows(student, memmap):
    out = student.run(
        producers.get_batch_samples, seed=0, dataset_size=SIZE, batch_size=BATCH, context_length=CONTEXT,
        num_batches=4, memmap=memmap,
    )  # fmt: skip
    x, y = out["x"], out["y"]
    assert x.shape == y.shape == (4, BATCH, CONTEXT)
    assert out["x_dtype"] == out["y_dtype"] == "torch.int64"
    assert out["device"] == "cpu"
    # The dataset is 0, 1, 2, ...: a window is consecutive and its targets are the next tokens.
    torch.testing.assert_close(x, x[..., :1] + torch.arange(CONTEXT))
    torch.testing.assert_close(y, x + 1)
    assert x.min() >= 0 and y.max() <= SIZE - 1


@pytest.mark.problem("get_batch")
def test_get_batch_starts_are_uniform(student):
    out = student.run(
        producers.get_batch_samples, seed=0, dataset_size=SIZE, batch_size=BATCH, context_length=CONTEXT,
        num_batches=100, memmap=False,
    )  # fmt: skip
    starts = out["x"][..., 0].flatten()
    counts = torch.bincount(starts, minlength=SIZE - CONTEXT).double()
    assert counts.numel() == SIZE - CONTEXT, "a window starts too late to have a target for its last token"
    assert (counts > 0).all(), "some valid start positions are never drawn"
    # The chi-square statistic of uniform counts has mean df and sd sqrt(2 df); allow 6 sd.
    expected, df = starts.numel() / counts.numel(), counts.numel() - 1
    assert ((counts - expected) ** 2 / expected).sum() < df + 6 * (2 * df) ** 0.5


@pytest.mark.problem("get_batch")
def test_get_batch_smallest_dataset(student):
    out = student.run(producers.get_batch_outcome, dataset_size=CONTEXT + 1, context_length=CONTEXT, device="cpu")
    assert out["error"] is None, f"{CONTEXT + 1} tokens hold exactly one window, but get_batch raised: {out.get('message')}"
    assert out["shape"] == [2, CONTEXT]


@pytest.mark.problem("get_batch")
def test_get_batch_rejects_a_dataset_shorter_than_a_window(student):
    out = student.run(producers.get_batch_outcome, dataset_size=CONTEXT, context_length=CONTEXT, device="cpu")
    assert out["error"] is not None and "ValueError" in out["error"], f"expected a ValueError, got {out}"


@pytest.mark.problem("get_batch")
@pytest.mark.parametrize("device", ["cuda:99", "not-a-device"])
def test_get_batch_rejects_an_invalid_device(student, device):
    assert student.run(producers.get_batch_outcome, dataset_size=SIZE, context_length=CONTEXT, device="cpu")["error"] is None
    out = student.run(producers.get_batch_outcome, dataset_size=SIZE, context_length=CONTEXT, device=device)
    assert out["error"] is not None, f"get_batch accepted the device {device!r}"
    assert {"RuntimeError", "AssertionError", "ValueError"} & set(out["error"]), f"unexpected error {out}"
