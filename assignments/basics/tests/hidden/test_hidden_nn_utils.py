"""Hidden tests of cross-entropy and gradient clipping: extreme logits, other shapes and dtypes,
gradients below the limit, parameters without gradients, parameters given as a generator."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.hidden import producers_hidden as hidden


def randn(*shape: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


# ----------------------------------------------------------------------- cross-entropy


@pytest.mark.problem("cross_entropy")
def test_cross_entropy_huge_logits_of_both_signs(student):
    # Rows far above and far below zero: exp() overflows on one side, underflows on the other.
    logits = 50 * randn(8, 30, seed=200)
    logits[:4] += 5e4
    logits[4:] -= 5e4
    targets = torch.tensor([0, 29, 3, 3, 17, 8, 29, 0])
    loss = student.run_cross_entropy(inputs=logits, targets=targets)
    assert loss.shape == () and torch.isfinite(loss)
    torch.testing.assert_close(loss, F.cross_entropy(logits, targets))


@pytest.mark.problem("cross_entropy")
def test_cross_entropy_confident_predictions(student):
    # A right answer with a 1e4 margin costs ~0; a wrong one costs ~1e4, never inf.
    logits = torch.zeros(2, 5)
    logits[0, 2] = 1e4
    logits[1, 4] = 1e4
    right = student.run_cross_entropy(inputs=logits, targets=torch.tensor([2, 4]))
    wrong = student.run_cross_entropy(inputs=logits, targets=torch.tensor([0, 1]))
    torch.testing.assert_close(right, torch.tensor(0.0))
    torch.testing.assert_close(wrong, torch.tensor(1e4))


@pytest.mark.problem("cross_entropy")
def test_cross_entropy_single_example_large_vocab(student):
    logits, targets = randn(1, 5000, seed=201), torch.tensor([4999])
    torch.testing.assert_close(student.run_cross_entropy(inputs=logits, targets=targets), F.cross_entropy(logits, targets))


@pytest.mark.problem("cross_entropy")
def test_cross_entropy_one_class_is_free(student):
    loss = student.run_cross_entropy(inputs=randn(6, 1, seed=202) * 100, targets=torch.zeros(6, dtype=torch.long))
    torch.testing.assert_close(loss, torch.tensor(0.0))


@pytest.mark.problem("cross_entropy")
def test_cross_entropy_float64(student):
    logits, targets = 3 * randn(16, 11, seed=203, dtype=torch.float64), torch.arange(16) % 11
    loss = student.run_cross_entropy(inputs=logits, targets=targets)
    torch.testing.assert_close(loss.double(), F.cross_entropy(logits, targets))


@pytest.mark.problem("cross_entropy")
def test_cross_entropy_is_a_mean(student):
    # Duplicating the batch leaves the loss unchanged; a sum would double it.
    logits, targets = randn(5, 7, seed=204), torch.tensor([6, 0, 1, 2, 3])
    single = student.run_cross_entropy(inputs=logits, targets=targets)
    double = student.run_cross_entropy(inputs=torch.cat([logits, logits]), targets=torch.cat([targets, targets]))
    torch.testing.assert_close(double, single)
    torch.testing.assert_close(single, F.cross_entropy(logits, targets))


# ----------------------------------------------------------------------- gradient clipping


SHAPES = [[3, 4], [7], [2, 2, 2], [1], [5, 1]]


def expected_clipping(seed: int, shapes, without_grad, scale: float, max_l2_norm: float):
    params = hidden.hidden_clipping_problem(seed, shapes, without_grad, scale)
    torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], max_l2_norm)
    return params


def check_clipping(student, seed, shapes, without_grad, scale, max_l2_norm, as_generator):
    result = student.run(
        hidden.clipped_gradients_hidden, seed=seed, shapes=shapes, without_grad=without_grad, scale=scale,
        max_l2_norm=max_l2_norm, as_generator=as_generator,
    )  # fmt: skip
    expected = expected_clipping(seed, shapes, without_grad, scale, max_l2_norm)
    assert len(result["grads"]) == len(expected)
    for i, (got, param) in enumerate(zip(result["grads"], expected)):
        if param.grad is None:
            assert got is None, f"parameter {i} had no gradient and must keep none"
        else:
            torch.testing.assert_close(got, param.grad, msg=f"gradient {i}")
    for got, param in zip(result["values"], expected):
        torch.testing.assert_close(got, param.detach())  # clipping touches gradients only
    return result


@pytest.mark.problem("gradient_clipping")
def test_clipping_parameters_given_as_a_generator(student):
    # model.parameters() is a generator: it can be walked once only.
    check_clipping(student, seed=300, shapes=SHAPES, without_grad=[], scale=4.0, max_l2_norm=0.5, as_generator=True)


@pytest.mark.problem("gradient_clipping")
def test_clipping_skips_parameters_without_grad(student):
    # The first and the last parameters have no gradient; the norm is over the others only.
    check_clipping(student, seed=301, shapes=SHAPES, without_grad=[0, 4], scale=2.0, max_l2_norm=1.0, as_generator=False)


@pytest.mark.problem("gradient_clipping")
def test_clipping_below_the_limit_is_a_no_op(student):
    # Norm about 0.3 against a limit of 1: nothing changes, not even by the 1e-6 of eps.
    result = check_clipping(student, seed=302, shapes=SHAPES, without_grad=[2], scale=0.05, max_l2_norm=1.0, as_generator=False)
    params = hidden.hidden_clipping_problem(302, SHAPES, [2], 0.05)
    for got, param in zip(result["grads"], params):
        if param.grad is not None:
            assert torch.equal(got, param.grad)


@pytest.mark.problem("gradient_clipping")
def test_clipping_one_huge_gradient(student):
    check_clipping(student, seed=303, shapes=[[1000]], without_grad=[], scale=1e3, max_l2_norm=1e-3, as_generator=False)


@pytest.mark.problem("gradient_clipping")
def test_clipping_with_no_gradients_at_all(student):
    result = student.run(
        hidden.clipped_gradients_hidden, seed=304, shapes=SHAPES, without_grad=list(range(len(SHAPES))), scale=1.0,
        max_l2_norm=1.0, as_generator=True,
    )  # fmt: skip
    assert result["grads"] == [None] * len(SHAPES)
