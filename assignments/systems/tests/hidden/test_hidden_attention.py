"""Hidden tests of FlashAttention-2 (PyTorch and Triton): shapes, scales and layouts unlike the public ones.

Expected values come from the float64 formula of the public tests. On a GPU the long-sequence tests
run at lengths that span dozens of tiles; the CPU interpreter gets shorter ones.
"""

from __future__ import annotations

import pytest
import torch

from tests import producers_attention as producers
from tests.hidden import producers_attention_hidden as hidden
from tests.public.test_attention import (
    BOTH,
    CAUSAL,
    FLASH_TRITON,
    assert_close,
    attention_inputs,
    check_backward,
    check_forward,
    reference_attention,
    reference_gradients,
    tolerance,
)


@BOTH
@pytest.mark.parametrize(("seq_q", "seq_k"), [(1, 50), (64, 3), (33, 1)])
def test_hidden_lopsided_lengths(student, impl, seq_q, seq_k):
    q, k, v, d_out = attention_inputs(3, seq_q, seq_k, 16, seed=seq_q * 100 + seq_k)
    check_forward(student, impl, q, k, v, is_causal=False)
    check_backward(student, impl, q, k, v, d_out, is_causal=False)


@BOTH
@CAUSAL
@pytest.mark.parametrize("d", [16, 128])
def test_hidden_head_dims(student, impl, is_causal, d):
    q, k, v, d_out = attention_inputs(2, 48, 48, d, seed=d)
    check_forward(student, impl, q, k, v, is_causal)
    check_backward(student, impl, q, k, v, d_out, is_causal)


@BOTH
@CAUSAL
def test_hidden_huge_scores(student, impl, is_causal):
    # Integer-valued Q and K (exact in TF32 and bfloat16) give scores of several hundred: exp()
    # overflows unless every exponent is taken relative to the running maximum.
    q, k, v, d_out = attention_inputs(2, 70, 70, 32, seed=5)
    q, k = (torch.round(t * 10) for t in (q, k))
    check_forward(student, impl, q, k, v, is_causal)
    check_backward(student, impl, q, k, v, d_out, is_causal)


@BOTH
@pytest.mark.parametrize("dtype", ["float32", "low"])
def test_hidden_long_causal(student, impl, dtype):
    # Many tiles per row: the skipped tiles, the diagonal band and the unmasked middle all matter.
    gpu = student.run(producers.has_gpu)
    low = torch.float16 if impl == "triton" and not gpu else torch.bfloat16
    batch, seq = (2, 1500) if gpu else (1, 160 if impl == "triton" else 300)
    q, k, v, d_out = attention_inputs(batch, seq, seq, 64, seed=7, dtype=torch.float32 if dtype == "float32" else low)
    check_forward(student, impl, q, k, v, is_causal=True)
    check_backward(student, impl, q, k, v, d_out, is_causal=True)


@BOTH
@CAUSAL
def test_hidden_low_precision_odd_length(student, impl, is_causal):
    low = torch.float16 if impl == "triton" and not student.run(producers.has_gpu) else torch.bfloat16
    q, k, v, d_out = attention_inputs(3, 77, 77, 32, seed=8, dtype=low)
    check_forward(student, impl, q, k, v, is_causal)
    check_backward(student, impl, q, k, v, d_out, is_causal)


@BOTH
@CAUSAL
def test_hidden_strided_inputs_and_expanded_gradient(student, impl, is_causal):
    # Views with other strides (as after moving a head dimension), and loss = out.sum(), whose
    # gradient reaches the backward as an expanded tensor with all strides 0.
    q, k, v, _ = attention_inputs(2, 40, 40, 32, seed=9)
    result = student.run(hidden.attention_backward_strided, impl=impl, q=q, k=k, v=v, is_causal=is_causal)
    out, _ = reference_attention(q, k, v, is_causal)
    tol = tolerance(impl, q.dtype)
    assert_close(result["out"], out, tol, "O")
    grads = reference_gradients(q, k, v, torch.ones_like(q), is_causal)
    for name, expected in zip(("dq", "dk", "dv"), grads):
        assert_close(result[name], expected, tol, name)


# Operators that would mean the attention itself ran in PyTorch, not in a Triton kernel.
ATTENTION_OPERATORS = {
    "mm", "bmm", "matmul", "addmm", "baddbmm", "einsum", "exp", "exp2", "softmax", "_softmax", "logsumexp",
    "scaled_dot_product_attention", "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_attention_math",
    "_scaled_dot_product_flash_attention_for_cpu", "_flash_attention_forward", "_efficient_attention_forward",
}


@FLASH_TRITON
@CAUSAL
def test_hidden_triton_forward_runs_in_kernels(student, is_causal):
    q, k, v, _ = attention_inputs(2, 40, 40, 32, seed=10)
    names = student.run(hidden.operators_in_forward, impl="triton", q=q, k=k, v=v, is_causal=is_causal)
    used = sorted(ATTENTION_OPERATORS.intersection(names))
    assert not used, f"the Triton forward computed attention with PyTorch operators {used}, not in a kernel"
