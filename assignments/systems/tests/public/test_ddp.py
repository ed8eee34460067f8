"""DDP on two gloo ranks against single-process training on the whole batch.

Each rank trains on its own rows of every batch, starting from a model initialised with its own
seed: after a few SGD steps both ranks must hold the weights of one process trained on all the
rows from rank 0's initial weights. The producers also log every ``all_reduce`` call, so the tests
can check that gradients leave during backward, asynchronously, and in buckets of the right size.
These tests start processes: they take a few seconds each.
"""

from __future__ import annotations

import math

import pytest

from tests import producers_distributed as pd

pytestmark = pytest.mark.serial

#: Trainable parameters of the toy model, and their total size in bytes (fp32).
TOY_TRAINABLE = 8
TOY_BYTES = 4 * (11 * 9 + 15 * 9 + 15 + 15 + 15 + 15 * 15 + 15 * 15 + 7 * 15)


def check_matches_single_process(ranks: list[dict], kind: str, seed: int, steps: int) -> None:
    expected = pd.train_single_process(kind, seed, steps)
    initial = pd.initial_weights(kind, seed)
    assert max((expected[n] - initial[n]).abs().max().item() for n in expected) > 1e-2, (
        "the steps must move the weights"
    )
    for rank, result in enumerate(ranks):
        pd.assert_weights_close(result["weights"], expected, f"rank {rank}")


@pytest.mark.problem("ddp_individual")
def test_ddp_individual_parameters_matches_single_process(student):
    ranks = student.run(pd.ddp_training, "individual", "toy", seed=0, steps=3)
    for rank, result in enumerate(ranks):
        assert result["module_is_wrapped"], f"rank {rank}: the wrapper must expose the wrapped model as `.module`"
        assert result["extra_parameters"] == 0, f"rank {rank}: the wrapper must add no parameters of its own"
    check_matches_single_process(ranks, "toy", seed=0, steps=3)


@pytest.mark.problem("ddp_individual")
def test_ddp_individual_parameters_overlaps_backward(student):
    ranks = student.run(pd.ddp_training, "individual", "toy", seed=1, steps=2)
    for rank, result in enumerate(ranks):
        assert result["calls_per_step"] == [TOY_TRAINABLE, 2 * TOY_TRAINABLE], (
            f"rank {rank}: expected one all_reduce per trainable parameter and step (none for the frozen one), "
            f"got {result['calls_per_step']} after each step"
        )
        assert all(call["async"] for call in result["calls"]), (
            f"rank {rank}: all_reduce must be called with async_op=True"
        )
        assert any(call["during_backward"] for call in result["calls"]), (
            f"rank {rank}: every all_reduce started after backward had finished; start each one from a hook "
            "as soon as its gradient is ready"
        )


@pytest.mark.problem("ddp_individual")
def test_get_ddp_trains_the_transformer(student):
    ranks = student.run(pd.ddp_training, "ddp", "lm", seed=2, steps=2)
    check_matches_single_process(ranks, "lm", seed=2, steps=2)


@pytest.mark.problem("ddp_bucketed")
@pytest.mark.parametrize("bucket_size_mb", [0.001, 1000.0], ids=["small-buckets", "one-bucket"])
def test_ddp_bucketed_matches_single_process(student, bucket_size_mb):
    ranks = student.run(pd.ddp_training, "bucketed", "toy", seed=3, steps=3, bucket_size_mb=bucket_size_mb)
    for rank, result in enumerate(ranks):
        assert result["module_is_wrapped"], f"rank {rank}: the wrapper must expose the wrapped model as `.module`"
        assert result["extra_parameters"] == 0, f"rank {rank}: the wrapper must add no parameters of its own"
    check_matches_single_process(ranks, "toy", seed=3, steps=3)


@pytest.mark.problem("ddp_bucketed")
def test_ddp_bucketed_respects_the_bucket_size(student):
    bucket_bytes = 0.001 * 2**20  # 1048 bytes: no toy parameter is larger (the largest has 900)
    ranks = student.run(pd.ddp_training, "bucketed", "toy", seed=4, steps=2, bucket_size_mb=0.001)
    for rank, result in enumerate(ranks):
        first_step = result["calls"][: result["calls_per_step"][0]]
        sizes = [call["bytes"] for call in first_step]
        assert sum(sizes) == TOY_BYTES, f"rank {rank}: each gradient must be all-reduced exactly once per step"
        assert max(sizes) <= bucket_bytes, f"rank {rank}: a bucket of {max(sizes)} bytes exceeds {bucket_bytes:g}"
        assert math.ceil(TOY_BYTES / bucket_bytes) <= len(sizes) < TOY_TRAINABLE, (
            f"rank {rank}: {len(sizes)} all-reduces for {TOY_BYTES} bytes in buckets of {bucket_bytes:g}: "
            "gradients must share buckets up to the size limit"
        )
        assert result["calls_per_step"][1] == 2 * len(sizes), f"rank {rank}: the second step must send the same buckets"
        assert all(call["async"] for call in result["calls"]), (
            f"rank {rank}: all_reduce must be called with async_op=True"
        )
        assert any(call["during_backward"] for call in result["calls"]), (
            f"rank {rank}: every bucket left after backward had finished; send each as soon as it is full"
        )


@pytest.mark.problem("ddp_bucketed")
def test_ddp_bucketed_one_bucket_holds_everything(student):
    ranks = student.run(pd.ddp_training, "bucketed", "toy", seed=5, steps=2, bucket_size_mb=1000.0)
    for rank, result in enumerate(ranks):
        assert result["calls_per_step"] == [1, 2], (
            f"rank {rank}: a bucket larger than the model means one all_reduce per step"
        )
        assert result["calls"][0]["bytes"] == TOY_BYTES, f"rank {rank}: the one bucket must hold every gradient"
