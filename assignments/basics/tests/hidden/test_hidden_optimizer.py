"""Hidden tests of AdamW (against torch.optim.AdamW) and of the cosine schedule (against its formula):
no weight decay, edge betas, per-group hyperparameters, a frozen parameter, a learning rate
changed between steps; the schedule at and beyond its boundaries."""

from __future__ import annotations

import math

import pytest
import torch

from tests.hidden import producers_hidden as hidden

ALL = [{"params": ["w1", "b1", "w2", "frozen"]}]


def check_adamw(student, steps, groups, hyper, lr_factors=None, atol=3e-5):
    """Both textbook variants pass (epsilon beside √v or √v̂, decay before or after the Adam
    step): the hyperparameters keep lr²·λ·steps and the epsilon effect well below ``atol``."""
    result = student.run(hidden.adamw_trajectory_hidden, seed=7, steps=steps, groups=groups, hyper=hyper, lr_factors=lr_factors)
    expected = hidden.train_adamw_hidden(torch.optim.AdamW, 7, steps, groups, hyper, lr_factors)
    initial, _, _ = hidden.adamw_problem(7)
    assert not torch.equal(expected["w1"], initial["w1"])
    for name, weights in expected.items():
        torch.testing.assert_close(result[name], weights, rtol=0, atol=atol, msg=name)


@pytest.mark.problem("adamw")
def test_adamw_without_weight_decay(student):
    check_adamw(student, 30, ALL, {"lr": 3e-3, "weight_decay": 0.0, "betas": (0.9, 0.999), "eps": 1e-8})


@pytest.mark.problem("adamw")
def test_adamw_strong_decoupled_decay(student):
    # λ = 1: decay pulls each weight by lr·θ per step. Coupled (L2) decay, decay scaled by the
    # Adam denominator or no decay land far away.
    check_adamw(student, 15, ALL, {"lr": 1e-3, "weight_decay": 1.0, "betas": (0.8, 0.9), "eps": 1e-8})


@pytest.mark.problem("adamw")
@pytest.mark.parametrize("betas", [(0.0, 0.0), (0.0, 0.99), (0.95, 0.5)], ids=["zero-zero", "beta1-zero", "low-beta2"])
def test_adamw_edge_betas(student, betas):
    check_adamw(student, 12, ALL, {"lr": 5e-3, "weight_decay": 0.02, "betas": betas, "eps": 1e-8})


@pytest.mark.problem("adamw")
def test_adamw_frozen_parameter_is_left_alone(student):
    # "frozen" never reaches the loss: its gradient stays None, so no step and no decay.
    result = student.run(
        hidden.adamw_trajectory_hidden, seed=7, steps=5, groups=ALL,
        hyper={"lr": 0.1, "weight_decay": 0.5, "betas": (0.9, 0.95), "eps": 1e-8},
    )  # fmt: skip
    initial, _, _ = hidden.adamw_problem(7)
    assert torch.equal(result["frozen"], initial["frozen"])


@pytest.mark.problem("adamw")
def test_adamw_per_group_hyperparameters(student):
    # Every hyperparameter is read from the parameter's own group, not from the defaults.
    groups = [
        {"params": ["w1"]},
        {"params": ["b1"], "lr": 5e-4, "weight_decay": 0.0, "betas": (0.5, 0.6)},
        {"params": ["w2"], "lr": 4e-3, "weight_decay": 0.05, "eps": 1e-6},
    ]
    check_adamw(student, 20, groups, {"lr": 1e-3, "weight_decay": 0.1, "betas": (0.9, 0.95), "eps": 1e-8})


@pytest.mark.problem("adamw")
def test_adamw_learning_rate_set_between_steps(student):
    # A training loop writes each step's learning rate into param_groups; the step must use it.
    factors = [min(1.0, (t + 1) / 5) * (0.5 + 0.5 * math.cos(math.pi * t / 40)) for t in range(40)]
    check_adamw(student, 40, ALL, {"lr": 5e-3, "weight_decay": 0.02, "betas": (0.9, 0.98), "eps": 1e-8}, factors)


@pytest.mark.problem("adamw")
def test_adamw_many_steps(student):
    # 200 steps: the bias corrections must use each parameter's own step count throughout.
    check_adamw(student, 200, ALL, {"lr": 2e-3, "weight_decay": 0.01, "betas": (0.9, 0.999), "eps": 1e-8}, atol=1e-4)


# ----------------------------------------------------------------------- schedule


def cosine(it: int, max_lr: float, min_lr: float, warmup: int, cycle: int) -> float:
    if it < warmup:
        return max_lr * it / warmup
    if it > cycle:
        return min_lr
    return min_lr + (max_lr - min_lr) * (1 + math.cos(math.pi * (it - warmup) / (cycle - warmup))) / 2


def schedule(student, its, *args):
    return [
        student.run_get_lr_cosine_schedule(
            it=it, max_learning_rate=args[0], min_learning_rate=args[1], warmup_iters=args[2], cosine_cycle_iters=args[3]
        )
        for it in its
    ]


@pytest.mark.problem("lr_schedule")
def test_schedule_boundaries(student):
    args = (6e-4, 6e-5, 1000, 10_000)
    its = [0, 1, 999, 1000, 1001, 5500, 9999, 10_000, 10_001, 123_456]
    got = schedule(student, its, *args)
    assert got == pytest.approx([cosine(it, *args) for it in its], rel=1e-9, abs=1e-15)
    assert got[0] == 0 and got[3] == pytest.approx(6e-4) and got[7] == pytest.approx(6e-5) and got[-1] == pytest.approx(6e-5)


@pytest.mark.problem("lr_schedule")
def test_schedule_min_zero_and_midpoint(student):
    args = (2.0, 0.0, 4, 24)
    its = list(range(30))
    got = schedule(student, its, *args)
    assert got == pytest.approx([cosine(it, *args) for it in its], abs=1e-12)
    assert got[14] == pytest.approx(1.0)  # halfway through the decay: the mean of max and min


@pytest.mark.problem("lr_schedule")
def test_schedule_constant_when_min_equals_max(student):
    got = schedule(student, [3, 5, 8, 11, 50], 1e-3, 1e-3, 3, 11)
    assert got == pytest.approx([1e-3] * 5, rel=1e-12)


@pytest.mark.problem("lr_schedule")
def test_schedule_warmup_one_step(student):
    args = (1.0, 0.25, 1, 9)
    got = schedule(student, range(12), *args)
    assert got == pytest.approx([cosine(it, *args) for it in range(12)], abs=1e-12)
