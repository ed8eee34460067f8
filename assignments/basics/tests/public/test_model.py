"""The Transformer's parts, each checked against PyTorch built-ins or a direct formula; the
whole block and language model against snapshots of the reference (``fixtures/model_*.npz``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


def randn(*shape: int, seed: int, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def rope_formula(x: Tensor, positions: Tensor, theta: float) -> Tensor:
    """Pair (x[2i], x[2i+1]) as the complex number x[2i] + i·x[2i+1] and turn it by pos·θ^(-2i/d)."""
    d = x.shape[-1]
    angles = positions[..., None].double() * theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    pairs = torch.view_as_complex(x.double().unflatten(-1, (-1, 2)).contiguous())
    return torch.view_as_real(pairs * torch.polar(torch.ones_like(angles), angles)).flatten(-2).to(x.dtype)


def causal_mha(x: Tensor, w: list[Tensor], num_heads: int, rope: tuple[Tensor, float] | None = None) -> Tensor:
    """Causal attention with F.scaled_dot_product_attention; ``rope`` = (positions (..., seq), theta)."""
    q, k, v = (F.linear(x, weight).unflatten(-1, (num_heads, -1)).transpose(-3, -2) for weight in w[:3])
    if rope is not None:
        positions, theta = rope
        q, k = rope_formula(q, positions.unsqueeze(-2), theta), rope_formula(k, positions.unsqueeze(-2), theta)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return F.linear(out.transpose(-3, -2).flatten(-2), w[3])


def load_snapshot(name: str) -> tuple[dict, dict[str, Tensor], Tensor, Tensor]:
    with np.load(SNAPSHOTS / name, allow_pickle=False) as npz:
        config = json.loads(str(npz["config"]))
        weights = {key.removeprefix("weight/"): torch.from_numpy(npz[key]) for key in npz.files if key.startswith("weight/")}
        return config, weights, torch.from_numpy(npz["input"]), torch.from_numpy(npz["output"])


# ----------------------------------------------------------------------- layers


@pytest.mark.problem("linear")
def test_linear(student):
    weights, x = randn(7, 5, seed=0), randn(2, 3, 5, seed=1)
    out = student.run_linear(d_in=5, d_out=7, weights=weights, in_features=x)
    torch.testing.assert_close(out, F.linear(x, weights))


@pytest.mark.problem("embedding")
def test_embedding(student):
    weights = randn(11, 6, seed=0)
    token_ids = torch.tensor([[0, 3, 10], [3, 3, 7]])
    out = student.run_embedding(vocab_size=11, d_model=6, weights=weights, token_ids=token_ids)
    torch.testing.assert_close(out, F.embedding(token_ids, weights))


@pytest.mark.problem("rmsnorm")
def test_rmsnorm(student):
    weights, x = randn(8, seed=0), randn(2, 5, 8, seed=1)
    out = student.run_rmsnorm(d_model=8, eps=1e-5, weights=weights, in_features=x)
    torch.testing.assert_close(out, F.rms_norm(x, (8,), weights, eps=1e-5))


@pytest.mark.problem("rmsnorm")
def test_rmsnorm_upcasts_half_precision(student):
    # Squares of fp16 values near 300 overflow (max 65504): the norm must be computed in fp32.
    weights, x = randn(8, seed=0), 300 * randn(4, 8, seed=1)
    out = student.run_rmsnorm(d_model=8, eps=1e-5, weights=weights, in_features=x.half())
    assert out.dtype == torch.float16
    torch.testing.assert_close(out, F.rms_norm(x, (8,), weights, eps=1e-5).half())


@pytest.mark.problem("swiglu")
def test_swiglu(student):
    w1, w2, w3 = randn(12, 6, seed=0), randn(6, 12, seed=1), randn(12, 6, seed=2)
    x = randn(2, 4, 6, seed=3)
    out = student.run_swiglu(d_model=6, d_ff=12, w1_weight=w1, w2_weight=w2, w3_weight=w3, in_features=x)
    expected = F.linear(F.silu(F.linear(x, w1)) * F.linear(x, w3), w2)
    torch.testing.assert_close(out, expected)


@pytest.mark.problem("rope")
def test_rope(student):
    x = randn(2, 9, 8, seed=0)
    positions = torch.arange(9)
    out = student.run_rope(d_k=8, theta=10000.0, max_seq_len=16, in_query_or_key=x, token_positions=positions)
    torch.testing.assert_close(out, rope_formula(x, positions, 10000.0))


@pytest.mark.problem("rope")
def test_rope_arbitrary_positions(student):
    # Per-sequence positions, out of order and with gaps, and a small theta so every pair turns visibly.
    x = randn(2, 5, 6, seed=1)
    positions = torch.tensor([[4, 0, 17, 3, 30], [1, 2, 3, 31, 9]])
    out = student.run_rope(d_k=6, theta=100.0, max_seq_len=32, in_query_or_key=x, token_positions=positions)
    torch.testing.assert_close(out, rope_formula(x, positions, 100.0))


# ----------------------------------------------------------------------- attention


@pytest.mark.problem("softmax")
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax(student, dim):
    x = randn(3, 4, 5, seed=0)
    torch.testing.assert_close(student.run_softmax(in_features=x, dim=dim), torch.softmax(x, dim=dim))


@pytest.mark.problem("softmax")
def test_softmax_is_stable(student):
    x = 10 * randn(4, 6, seed=0)
    out = student.run_softmax(in_features=x + 1000.0, dim=-1)
    torch.testing.assert_close(out, torch.softmax(x, dim=-1))
    masked = x.masked_fill(torch.eye(4, 6, dtype=torch.bool), float("-inf"))
    torch.testing.assert_close(student.run_softmax(in_features=masked, dim=-1), torch.softmax(masked, dim=-1))


@pytest.mark.problem("scaled_dot_product_attention")
def test_scaled_dot_product_attention(student):
    q, k, v = randn(2, 3, 5, 8, seed=0), randn(2, 3, 7, 8, seed=1), randn(2, 3, 7, 4, seed=2)
    mask = randn(2, 3, 5, 7, seed=3) > 0
    mask[..., 0] = True  # every query may attend somewhere
    out = student.run_scaled_dot_product_attention(Q=q, K=k, V=v, mask=mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


@pytest.mark.problem("scaled_dot_product_attention")
def test_scaled_dot_product_attention_without_mask(student):
    q, k, v = randn(4, 6, 16, seed=0), randn(4, 3, 16, seed=1), randn(4, 3, 16, seed=2)
    out = student.run_scaled_dot_product_attention(Q=q, K=k, V=v, mask=None)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))


@pytest.mark.problem("multihead_self_attention")
def test_multihead_self_attention(student):
    w = [randn(16, 16, seed=i) / 4 for i in range(4)]
    x = randn(2, 9, 16, seed=4)
    out = student.run_multihead_self_attention(
        d_model=16, num_heads=4, q_proj_weight=w[0], k_proj_weight=w[1], v_proj_weight=w[2], o_proj_weight=w[3], in_features=x
    )
    torch.testing.assert_close(out, causal_mha(x, w, num_heads=4))


@pytest.mark.problem("multihead_self_attention")
def test_multihead_self_attention_with_rope(student):
    w = [randn(16, 16, seed=i) / 4 for i in range(4)]
    x = randn(2, 9, 16, seed=4)
    out = student.run_multihead_self_attention_with_rope(
        d_model=16, num_heads=2, max_seq_len=12, theta=1000.0, q_proj_weight=w[0], k_proj_weight=w[1],
        v_proj_weight=w[2], o_proj_weight=w[3], in_features=x, token_positions=None,
    )  # fmt: skip
    torch.testing.assert_close(out, causal_mha(x, w, num_heads=2, rope=(torch.arange(9), 1000.0)))


@pytest.mark.problem("multihead_self_attention")
def test_multihead_self_attention_with_rope_positions(student):
    w = [randn(16, 16, seed=i) / 4 for i in range(4)]
    x = randn(2, 6, 16, seed=4)
    positions = torch.stack([torch.arange(6) + 3, torch.arange(6) + 10])  # (batch, seq)
    out = student.run_multihead_self_attention_with_rope(
        d_model=16, num_heads=4, max_seq_len=16, theta=100.0, q_proj_weight=w[0], k_proj_weight=w[1],
        v_proj_weight=w[2], o_proj_weight=w[3], in_features=x, token_positions=positions,
    )  # fmt: skip
    torch.testing.assert_close(out, causal_mha(x, w, num_heads=4, rope=(positions, 100.0)))


# ----------------------------------------------------------------------- block and model


@pytest.mark.problem("transformer_block")
def test_transformer_block(student):
    config, weights, x, expected = load_snapshot("model_transformer_block.npz")
    out = student.run_transformer_block(**config, weights=weights, in_features=x)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.problem("transformer_lm")
def test_transformer_lm(student):
    config, weights, ids, expected = load_snapshot("model_transformer_lm.npz")
    assert ids.shape[-1] < config["context_length"]  # the input is shorter than the context
    logits = student.run_transformer_lm(**config, weights=weights, in_indices=ids)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.problem("transformer_lm")
def test_transformer_lm_is_causal(student):
    config, weights, ids, _ = load_snapshot("model_transformer_lm.npz")
    changed = ids.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % config["vocab_size"]
    logits = student.run_transformer_lm(**config, weights=weights, in_indices=ids)
    logits_changed = student.run_transformer_lm(**config, weights=weights, in_indices=changed)
    torch.testing.assert_close(logits_changed[:, :6], logits[:, :6])  # the past never sees the future
    assert not torch.allclose(logits_changed[:, 6:], logits[:, 6:])
