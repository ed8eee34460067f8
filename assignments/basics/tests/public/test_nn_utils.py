"""SiLU, cross-entropy and gradient clipping against their PyTorch built-ins."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests import producers


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.problem("silu")
def test_silu(student):
    x = 4 * randn(3, 7, seed=0)
    torch.testing.assert_close(student.run_silu(in_features=x), F.silu(x))


@pytest.mark.problem("cross_entropy")
def test_cross_entropy(student):
    logits, targets = randn(8, 5, seed=0), torch.tensor([0, 4, 1, 1, 3, 2, 0, 4])
    loss = student.run_cross_entropy(inputs=logits, targets=targets)
    assert loss.shape == ()
    torch.testing.assert_close(loss, F.cross_entropy(logits, targets))


@pytest.mark.problem("cross_entropy")
def test_cross_entropy_is_stable_for_huge_logits(student):
    # exp(1e4) overflows even in float64: the log-sum-exp must be shifted by the maximum.
    logits, targets = 1000 * randn(6, 10, seed=1) + 1e4, torch.tensor([1, 9, 3, 0, 5, 5])
    loss = student.run_cross_entropy(inputs=logits, targets=targets)
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, F.cross_entropy(logits, targets))


@pytest.mark.problem("gradient_clipping")
@pytest.mark.parametrize("max_l2_norm", [1e-2, 1.0])
def test_gradient_clipping_scales_to_the_max_norm(student, max_l2_norm):
    result = student.run(producers.clipped_gradients, seed=0, max_l2_norm=max_l2_norm)
    params = producers.clipping_problem(seed=0)
    torch.nn.utils.clip_grad_norm_(params, max_l2_norm)
    expected = [p.grad for p in params if p.grad is not None]
    assert len(result["grads"]) == len(expected)
    for got, want in zip(result["grads"], expected):
        torch.testing.assert_close(got, want)
    assert result["missing_grad_still_none"]


@pytest.mark.problem("gradient_clipping")
def test_gradient_clipping_leaves_small_gradients_alone(student):
    params = producers.clipping_problem(seed=0)
    norm = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in params if p.grad is not None]))
    result = student.run(producers.clipped_gradients, seed=0, max_l2_norm=float(norm) * 2)
    for got, want in zip(result["grads"], [p.grad for p in params if p.grad is not None]):
        torch.testing.assert_close(got, want)
