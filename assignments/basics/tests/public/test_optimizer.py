"""AdamW against torch.optim.AdamW, and the cosine learning-rate schedule against its formula."""

from __future__ import annotations

import math

import pytest
import torch

from tests import producers

HYPER = {"lr": 1e-3, "weight_decay": 0.1, "betas": (0.9, 0.95), "eps": 1e-8}


@pytest.mark.problem("adamw")
def test_adamw_is_an_optimizer(student):
    result = student.run(producers.adamw_trajectory, seed=0, steps=1, **HYPER)
    assert result["is_optimizer"], "get_adamw_cls must return a subclass of torch.optim.Optimizer"


@pytest.mark.problem("adamw")
@pytest.mark.parametrize("groups", [False, True], ids=["one-group", "param-groups"])
def test_adamw_matches_pytorch(student, groups):
    result = student.run(producers.adamw_trajectory, seed=0, steps=20, groups=groups, **HYPER)
    expected = producers.train_with_optimizer(torch.optim.AdamW, seed=0, steps=20, groups=groups, **HYPER)
    # Both textbook variants pass: epsilon beside √v or √v̂, decay from θ before or after the
    # Adam step (they differ by ~8e-6 here). Coupled L2 decay, no decay or no bias correction
    # move the weights by more than 1e-3.
    for name, weights in expected.items():
        torch.testing.assert_close(result["weights"][name], weights, rtol=0, atol=3e-5, msg=name)


def cosine_schedule(it: int, max_lr: float, min_lr: float, warmup: int, cycle: int) -> float:
    if it < warmup:
        return max_lr * it / warmup
    if it > cycle:
        return min_lr
    return min_lr + (max_lr - min_lr) * (1 + math.cos(math.pi * (it - warmup) / (cycle - warmup))) / 2


@pytest.mark.problem("lr_schedule")
@pytest.mark.parametrize("warmup", [7, 0])
def test_cosine_schedule(student, warmup):
    got = [
        student.run_get_lr_cosine_schedule(
            it=it, max_learning_rate=1.0, min_learning_rate=0.1, warmup_iters=warmup, cosine_cycle_iters=21
        )
        for it in range(25)
    ]
    assert got == pytest.approx([cosine_schedule(it, 1.0, 0.1, warmup, 21) for it in range(25)], abs=1e-12)
