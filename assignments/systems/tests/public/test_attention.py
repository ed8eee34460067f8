"""FlashAttention-2 in PyTorch and in Triton, checked against attention computed here in float64.

The expected values come from the formula itself: S = Q Kᵀ / √d (causal: S[i, j] = −1e6 where key
j > query i), O = softmax(S) V, L = logsumexp(S) per row, and the gradients by autograd through it.
Your code runs through ``tests/producers_attention.py``, on the GPU when there is one. Without a GPU,
Triton runs its CPU interpreter (slow, so shapes stay small), and float16 stands in for bfloat16
there: the interpreter cannot multiply bfloat16 tiles.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from tests import producers_attention as producers

FLASH_PYTORCH = pytest.mark.problem("flash_pytorch")
FLASH_TRITON = pytest.mark.problem("flash_triton")
BOTH = pytest.mark.parametrize(
    "impl", [pytest.param("pytorch", marks=FLASH_PYTORCH), pytest.param("triton", marks=FLASH_TRITON)]
)
CAUSAL = pytest.mark.parametrize("is_causal", [False, True], ids=["full", "causal"])


def attention_inputs(
    batch: int, seq_q: int, seq_k: int, d: int, seed: int, dtype: torch.dtype = torch.float32, scale: float = 1.0
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Q (batch, seq_q, d), K, V (batch, seq_k, d) and an output gradient dO like Q."""
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, seq_q, d, generator=generator) * scale
    k = torch.randn(batch, seq_k, d, generator=generator) * scale
    v = torch.randn(batch, seq_k, d, generator=generator)
    d_out = torch.randn(batch, seq_q, d, generator=generator)
    return q.to(dtype), k.to(dtype), v.to(dtype), d_out.to(dtype)


def reference_attention(q: Tensor, k: Tensor, v: Tensor, is_causal: bool) -> tuple[Tensor, Tensor]:
    """(O, L) in float64; differentiable."""
    q, k, v = q.double(), k.double(), v.double()
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (batch, seq_q, seq_k)
    if is_causal:
        query = torch.arange(q.shape[-2])[:, None]
        key = torch.arange(k.shape[-2])[None, :]
        scores = torch.where(query >= key, scores, -1e6)
    return torch.softmax(scores, dim=-1) @ v, torch.logsumexp(scores, dim=-1)


def reference_gradients(q: Tensor, k: Tensor, v: Tensor, d_out: Tensor, is_causal: bool) -> list[Tensor]:
    """[dQ, dK, dV] of sum(O ∘ dO), in float64."""
    leaves = [t.detach().double().requires_grad_() for t in (q, k, v)]
    out, _ = reference_attention(*leaves, is_causal)
    out.backward(d_out.double())
    return [t.grad for t in leaves]


def tolerance(impl: str, dtype: torch.dtype) -> float:
    """Used as both atol and rtol.

    float32 PyTorch differs from float64 only in rounding and summation order. Triton's ``tl.dot``
    multiplies float32 tiles in TF32 (10-bit mantissa) on a GPU unless told otherwise, so float32
    Triton gets 1e-2. 16-bit inputs round P and dS to 16 bits before the products, as a kernel
    must to use the tensor cores (bfloat16: 8-bit mantissa).
    """
    if dtype == torch.float32:
        return 1e-4 if impl == "pytorch" else 1e-2
    return 5e-3 if dtype == torch.float16 else 3e-2


def assert_close(actual: Tensor | None, expected: Tensor, tol: float, what: str) -> None:
    assert actual is not None, f"{what}: no gradient was computed"
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
    torch.testing.assert_close(actual.double(), expected, atol=tol, rtol=tol, msg=lambda m: f"{what}: {m}")


def saved_logsumexp(saved: list[Tensor], batch: int, seq_q: int) -> Tensor:
    """The one saved tensor of shape (batch, seq_q): the logsumexp L."""
    candidates = [t for t in saved if tuple(t.shape) == (batch, seq_q)]
    assert len(candidates) == 1, (
        f"expected exactly one saved tensor of shape (batch, seq_q) = {(batch, seq_q)}, the logsumexp L, "
        f"found {len(candidates)} among {[tuple(t.shape) for t in saved]}: save it with ctx.save_for_backward"
    )
    return candidates[0]


def check_forward(student, impl: str, q: Tensor, k: Tensor, v: Tensor, is_causal: bool) -> None:
    result = student.run(producers.attention_forward, impl=impl, q=q, k=k, v=v, is_causal=is_causal)
    out, lse = reference_attention(q, k, v, is_causal)
    tol = tolerance(impl, q.dtype)
    assert_close(result["out"], out, tol, "O")
    assert_close(saved_logsumexp(result["saved"], q.shape[0], q.shape[1]), lse, tol, "L")


def check_backward(student, impl: str, q: Tensor, k: Tensor, v: Tensor, d_out: Tensor, is_causal: bool) -> None:
    result = student.run(producers.attention_backward, impl=impl, q=q, k=k, v=v, grad_out=d_out, is_causal=is_causal)
    tol = tolerance(impl, q.dtype)
    for name, expected in zip(("dq", "dk", "dv"), reference_gradients(q, k, v, d_out, is_causal)):
        assert_close(result[name], expected, tol, name)


@BOTH
@CAUSAL
def test_flash_forward(student, impl, is_causal):
    q, k, v, _ = attention_inputs(4, 128, 128, 64, seed=0)
    check_forward(student, impl, q, k, v, is_causal)


@BOTH
@CAUSAL
def test_flash_backward(student, impl, is_causal):
    q, k, v, d_out = attention_inputs(4, 128, 128, 64, seed=1)
    check_backward(student, impl, q, k, v, d_out, is_causal)


@BOTH
@CAUSAL
@pytest.mark.parametrize("seq", [1, 17, 100])
def test_flash_sequence_lengths_off_the_tile_grid(student, impl, is_causal, seq):
    # Lengths that are not multiples of any tile size: the last tile is partial.
    q, k, v, d_out = attention_inputs(2, seq, seq, 32, seed=seq)
    check_forward(student, impl, q, k, v, is_causal)
    check_backward(student, impl, q, k, v, d_out, is_causal)


@BOTH
@pytest.mark.parametrize(("seq_q", "seq_k"), [(37, 100), (100, 37)])
def test_flash_more_keys_than_queries_and_fewer(student, impl, seq_q, seq_k):
    q, k, v, d_out = attention_inputs(2, seq_q, seq_k, 32, seed=seq_q)
    check_forward(student, impl, q, k, v, is_causal=False)
    check_backward(student, impl, q, k, v, d_out, is_causal=False)


@BOTH
@CAUSAL
def test_flash_low_precision(student, impl, is_causal):
    # bfloat16 in, bfloat16 out; products accumulate in float32. float16 for Triton on the CPU.
    low = torch.float16 if impl == "triton" and not student.run(producers.has_gpu) else torch.bfloat16
    q, k, v, d_out = attention_inputs(2, 96, 96, 64, seed=2, dtype=low)
    check_forward(student, impl, q, k, v, is_causal)
    check_backward(student, impl, q, k, v, d_out, is_causal)
