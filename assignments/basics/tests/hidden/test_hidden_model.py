"""Hidden tests of the Transformer's parts: other shapes, batch ranks, dtypes, seeds and edge cases.

Each part is checked against PyTorch built-ins or a direct formula computed here; the block
and the language model against snapshots of the reference with configurations unlike the
public ones (``snapshots/model_*_hidden.npz``, made by ``scripts/make_hidden_snapshots.py``).
"""

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


def rope_reference(x: Tensor, positions: Tensor, theta: float) -> Tensor:
    """Turn each pair (x[2i], x[2i+1]), as a complex number, by pos·θ^(-2i/d), in float64."""
    d = x.shape[-1]
    angles = positions[..., None].double() * theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    pairs = torch.view_as_complex(x.double().unflatten(-1, (-1, 2)).contiguous())
    return torch.view_as_real(pairs * torch.polar(torch.ones_like(angles), angles)).flatten(-2).to(x.dtype)


def mha_reference(x: Tensor, w: list[Tensor], num_heads: int, rope: tuple[Tensor, float] | None = None) -> Tensor:
    """Causal multi-head attention through F.scaled_dot_product_attention."""
    q, k, v = (F.linear(x, weight).unflatten(-1, (num_heads, -1)).transpose(-3, -2) for weight in w[:3])
    if rope is not None:
        positions, theta = rope
        q, k = rope_reference(q, positions.unsqueeze(-2), theta), rope_reference(k, positions.unsqueeze(-2), theta)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return F.linear(out.transpose(-3, -2).flatten(-2), w[3])


def load_snapshot(name: str) -> tuple[dict, dict[str, Tensor], dict[str, Tensor]]:
    """(config, weights, arrays): arrays holds every other entry (inputs and expected outputs)."""
    with np.load(SNAPSHOTS / name, allow_pickle=False) as npz:
        config = json.loads(str(npz["config"]))
        weights = {k.removeprefix("weight/"): torch.from_numpy(npz[k]) for k in npz.files if k.startswith("weight/")}
        arrays = {k: torch.from_numpy(npz[k]) for k in npz.files if k != "config" and not k.startswith("weight/")}
    return config, weights, arrays


# ----------------------------------------------------------------------- layers


@pytest.mark.problem("linear")
@pytest.mark.parametrize("shape", [(7,), (2, 3, 1, 4, 7), (0, 7)], ids=["no-batch", "4-batch-dims", "empty"])
def test_linear_batch_ranks(student, shape):
    weights, x = randn(3, 7, seed=10), randn(*shape, seed=11)
    out = student.run_linear(d_in=7, d_out=3, weights=weights, in_features=x)
    torch.testing.assert_close(out, F.linear(x, weights))


@pytest.mark.problem("linear")
def test_linear_single_output_and_orientation(student):
    # d_out=1 and a non-square weight: using W instead of Wᵀ cannot even run.
    weights, x = randn(1, 9, seed=12), randn(5, 9, seed=13)
    out = student.run_linear(d_in=9, d_out=1, weights=weights, in_features=x)
    assert out.shape == (5, 1)
    torch.testing.assert_close(out, x @ weights.T)


@pytest.mark.problem("embedding")
@pytest.mark.parametrize("shape", [(6,), (2, 2, 3)], ids=["1d", "3d"])
def test_embedding_index_ranks(student, shape):
    weights = randn(13, 5, seed=20)
    ids = torch.randint(13, shape, generator=torch.Generator().manual_seed(21))
    ids.view(-1)[0], ids.view(-1)[-1] = 0, 12  # the first and last rows of the table
    out = student.run_embedding(vocab_size=13, d_model=5, weights=weights, token_ids=ids)
    torch.testing.assert_close(out, F.embedding(ids, weights))


@pytest.mark.problem("embedding")
def test_embedding_repeated_ids(student):
    weights = randn(4, 3, seed=22)
    ids = torch.tensor([[3, 3, 3, 0], [1, 1, 2, 3]])
    out = student.run_embedding(vocab_size=4, d_model=3, weights=weights, token_ids=ids)
    torch.testing.assert_close(out, weights[ids])


@pytest.mark.problem("rmsnorm")
def test_rmsnorm_large_eps(student):
    # eps belongs inside the square root: with eps=0.5 putting it elsewhere changes every value.
    weights, x = randn(6, seed=30), randn(3, 2, 4, 6, seed=31)
    out = student.run_rmsnorm(d_model=6, eps=0.5, weights=weights, in_features=x)
    torch.testing.assert_close(out, F.rms_norm(x, (6,), weights, eps=0.5))


@pytest.mark.problem("rmsnorm")
def test_rmsnorm_zero_rows_and_single_feature(student):
    x = randn(4, 1, seed=32)
    x[1] = 0.0
    weights = torch.tensor([1.7])
    out = student.run_rmsnorm(d_model=1, eps=1e-5, weights=weights, in_features=x)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, F.rms_norm(x, (1,), weights, eps=1e-5))


@pytest.mark.problem("rmsnorm")
def test_rmsnorm_tiny_half_precision_values(student):
    # Squares of fp16 values near 3e-4 underflow to (sub)normals: the mean must be taken in fp32.
    weights, x = randn(16, seed=33), 3e-4 * randn(2, 3, 16, seed=34)
    out = student.run_rmsnorm(d_model=16, eps=1e-10, weights=weights, in_features=x.half())
    assert out.dtype == torch.float16
    expected = F.rms_norm(x.half().float(), (16,), weights, eps=1e-10).half()
    torch.testing.assert_close(out, expected)


@pytest.mark.problem("rmsnorm")
def test_rmsnorm_keeps_bfloat16(student):
    weights, x = randn(32, seed=35), 50 * randn(5, 32, seed=36)
    out = student.run_rmsnorm(d_model=32, eps=1e-5, weights=weights, in_features=x.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, F.rms_norm(x.bfloat16().float(), (32,), weights, eps=1e-5).bfloat16())


@pytest.mark.problem("silu")
def test_silu_extreme_values_and_float64(student):
    x = torch.tensor([-1e4, -100.0, -20.0, -1e-8, 0.0, 1e-8, 3.0, 100.0, 1e4], dtype=torch.float64)
    out = student.run_silu(in_features=x)
    assert out.dtype == torch.float64 and torch.isfinite(out).all()
    torch.testing.assert_close(out, F.silu(x))


@pytest.mark.problem("silu")
def test_silu_shapes(student):
    for x in (randn(2, 1, 3, 5, seed=40), torch.empty(0, 4), torch.tensor(-0.75)):
        out = student.run_silu(in_features=x)
        assert out.shape == x.shape
        torch.testing.assert_close(out, F.silu(x))


@pytest.mark.problem("swiglu")
@pytest.mark.parametrize("shape", [(5,), (2, 2, 3, 5)], ids=["no-batch", "3-batch-dims"])
def test_swiglu_odd_sizes(student, shape):
    # d_ff = 7: nothing may assume a multiple of 64 or 8/3·d_model.
    w1, w2, w3 = randn(7, 5, seed=50), randn(5, 7, seed=51), randn(7, 5, seed=52)
    x = 2 * randn(*shape, seed=53)
    out = student.run_swiglu(d_model=5, d_ff=7, w1_weight=w1, w2_weight=w2, w3_weight=w3, in_features=x)
    torch.testing.assert_close(out, F.linear(F.silu(F.linear(x, w1)) * F.linear(x, w3), w2))


@pytest.mark.problem("swiglu")
def test_swiglu_gate_is_w1(student):
    # Swapping w1 and w3 changes the result: SiLU gates W1 x, not W3 x.
    w1, w2, w3 = randn(8, 4, seed=54), randn(4, 8, seed=55), randn(8, 4, seed=56)
    x = randn(3, 4, seed=57)
    out = student.run_swiglu(d_model=4, d_ff=8, w1_weight=w1, w2_weight=w2, w3_weight=w3, in_features=x)
    torch.testing.assert_close(out, F.linear(F.silu(x @ w1.T) * (x @ w3.T), w2))
    assert not torch.allclose(out, F.linear(F.silu(x @ w3.T) * (x @ w1.T), w2))


@pytest.mark.problem("rope")
def test_rope_five_pairs_batched_positions(student):
    # d_k=10 (an odd number of pairs), three leading dims, positions given per sequence.
    x = randn(2, 3, 7, 10, seed=60)
    positions = torch.randint(0, 40, (2, 3, 7), generator=torch.Generator().manual_seed(61))
    out = student.run_rope(d_k=10, theta=10000.0, max_seq_len=40, in_query_or_key=x, token_positions=positions)
    torch.testing.assert_close(out, rope_reference(x, positions, 10000.0))


@pytest.mark.problem("rope")
def test_rope_positions_broadcast_over_batch(student):
    # One row of positions for every sequence of the batch, the last at max_seq_len - 1.
    x = randn(4, 5, 8, seed=62)
    positions = torch.tensor([19, 0, 7, 7, 3])
    out = student.run_rope(d_k=8, theta=50.0, max_seq_len=20, in_query_or_key=x, token_positions=positions)
    torch.testing.assert_close(out, rope_reference(x, positions, 50.0))


@pytest.mark.problem("rope")
def test_rope_single_pair(student):
    x = randn(6, 2, seed=63)
    positions = torch.arange(6)
    out = student.run_rope(d_k=2, theta=10000.0, max_seq_len=6, in_query_or_key=x, token_positions=positions)
    angle = positions.double()
    expected = torch.stack(
        (x[:, 0] * angle.cos() - x[:, 1] * angle.sin(), x[:, 0] * angle.sin() + x[:, 1] * angle.cos()), dim=-1
    ).float()
    torch.testing.assert_close(out, expected)


@pytest.mark.problem("rope")
def test_rope_far_positions(student):
    # Positions up to 4095 with the default theta; fp32 angles are fine within this tolerance.
    x = randn(3, 16, seed=64)
    positions = torch.tensor([4095, 1000, 2])
    out = student.run_rope(d_k=16, theta=10000.0, max_seq_len=4096, in_query_or_key=x, token_positions=positions)
    torch.testing.assert_close(out, rope_reference(x, positions, 10000.0), rtol=0, atol=5e-3)


@pytest.mark.problem("rope")
def test_rope_position_zero_is_identity_and_norms_are_kept(student):
    x = randn(2, 9, 12, seed=65)
    positions = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8])
    out = student.run_rope(d_k=12, theta=10000.0, max_seq_len=9, in_query_or_key=x, token_positions=positions)
    torch.testing.assert_close(out[:, 0], x[:, 0])
    pair_norms = out.unflatten(-1, (-1, 2)).norm(dim=-1)  # a rotation keeps each pair's length
    torch.testing.assert_close(pair_norms, x.unflatten(-1, (-1, 2)).norm(dim=-1))


# ----------------------------------------------------------------------- attention


@pytest.mark.problem("softmax")
def test_softmax_float64_and_negative_dims(student):
    x = randn(2, 3, 4, 5, seed=70, dtype=torch.float64)
    for dim in (-2, -4, 2):
        out = student.run_softmax(in_features=x, dim=dim)
        assert out.dtype == torch.float64
        torch.testing.assert_close(out, torch.softmax(x, dim=dim))


@pytest.mark.problem("softmax")
def test_softmax_size_one_dim_and_extremes(student):
    x = randn(3, 1, seed=71) * 1e4
    torch.testing.assert_close(student.run_softmax(in_features=x, dim=1), torch.ones(3, 1))
    huge = torch.tensor([[1e30, 0.0, -1e30], [-5e4, -5e4 - 1.0, float("-inf")], [3e38, 3e38, -3e38]])
    out = student.run_softmax(in_features=huge, dim=-1)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.softmax(huge, dim=-1))


@pytest.mark.problem("scaled_dot_product_attention")
def test_attention_all_true_mask_equals_no_mask(student):
    q, k, v = randn(3, 4, 6, seed=80), randn(3, 9, 6, seed=81), randn(3, 9, 2, seed=82)
    mask = torch.ones(3, 4, 9, dtype=torch.bool)
    out = student.run_scaled_dot_product_attention(Q=q, K=k, V=v, mask=mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))


@pytest.mark.problem("scaled_dot_product_attention")
def test_attention_partial_mask_with_three_batch_dims(student):
    # Key 4 holds huge values and only the last query may see it: any weight leaking through
    # the mask shows at once. Key 2 is visible to every query, so no row is fully masked.
    q, k, v = randn(2, 1, 2, 5, 4, seed=83), randn(2, 1, 2, 6, 4, seed=84), randn(2, 1, 2, 6, 3, seed=85)
    mask = randn(2, 1, 2, 5, 6, seed=86) > 0.3
    mask[..., 2] = True
    mask[..., :4, 4], mask[..., 4, 4] = False, True
    v[..., 4, :] = 1e4
    out = student.run_scaled_dot_product_attention(Q=q, K=k, V=v, mask=mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


@pytest.mark.problem("scaled_dot_product_attention")
def test_attention_single_query_and_key_without_batch(student):
    q, k, v = randn(1, 8, seed=87), randn(1, 8, seed=88), randn(1, 5, seed=89)
    out = student.run_scaled_dot_product_attention(Q=q, K=k, V=v, mask=None)
    torch.testing.assert_close(out, v)  # one key takes all the weight


@pytest.mark.problem("scaled_dot_product_attention")
def test_attention_large_scores_are_stable(student):
    # Scores in the thousands: exp() without the max shift overflows.
    q, k, v = 40 * randn(2, 7, 16, seed=90), 40 * randn(2, 5, 16, seed=91), randn(2, 5, 3, seed=92)
    mask = torch.ones(7, 5, dtype=torch.bool).tril().expand(2, 7, 5).clone()
    out = student.run_scaled_dot_product_attention(Q=q, K=k, V=v, mask=mask)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


@pytest.mark.problem("scaled_dot_product_attention")
def test_attention_scales_by_key_dimension(student):
    # d_k = 25: the scale is 1/5; d_v differs from d_k.
    q, k, v = randn(4, 3, 25, seed=93), randn(4, 8, 25, seed=94), randn(4, 8, 7, seed=95)
    out = student.run_scaled_dot_product_attention(Q=q, K=k, V=v, mask=None)
    torch.testing.assert_close(out, torch.softmax(q @ k.transpose(-1, -2) / 5.0, dim=-1) @ v)


def mha_weights(d_model: int, seed: int) -> list[Tensor]:
    return [randn(d_model, d_model, seed=seed + i) / d_model**0.5 for i in range(4)]


@pytest.mark.problem("multihead_self_attention")
@pytest.mark.parametrize("num_heads", [1, 12], ids=["one-head", "d_k-1"])
def test_mha_head_counts(student, num_heads):
    w = mha_weights(12, seed=100)
    x = randn(3, 7, 12, seed=104)
    out = student.run_multihead_self_attention(
        d_model=12, num_heads=num_heads, q_proj_weight=w[0], k_proj_weight=w[1], v_proj_weight=w[2],
        o_proj_weight=w[3], in_features=x,
    )  # fmt: skip
    torch.testing.assert_close(out, mha_reference(x, w, num_heads))


@pytest.mark.problem("multihead_self_attention")
@pytest.mark.parametrize("shape", [(5, 12), (2, 3, 4, 12), (2, 1, 12)], ids=["no-batch", "2-batch-dims", "seq-1"])
def test_mha_batch_ranks(student, shape):
    w = mha_weights(12, seed=110)
    x = randn(*shape, seed=114)
    out = student.run_multihead_self_attention(
        d_model=12, num_heads=3, q_proj_weight=w[0], k_proj_weight=w[1], v_proj_weight=w[2], o_proj_weight=w[3],
        in_features=x,
    )  # fmt: skip
    torch.testing.assert_close(out, mha_reference(x, w, 3))


@pytest.mark.problem("multihead_self_attention")
def test_mha_is_causal(student):
    w = mha_weights(8, seed=120)
    x = randn(2, 10, 8, seed=124)
    changed = x.clone()
    changed[:, 7:] += 5.0
    kwargs = {"d_model": 8, "num_heads": 2, "q_proj_weight": w[0], "k_proj_weight": w[1], "v_proj_weight": w[2],
              "o_proj_weight": w[3]}  # fmt: skip
    out, out_changed = (student.run_multihead_self_attention(**kwargs, in_features=t) for t in (x, changed))
    torch.testing.assert_close(out_changed[:, :7], out[:, :7])
    assert not torch.allclose(out_changed[:, 7:], out[:, 7:])


@pytest.mark.problem("multihead_self_attention")
def test_mha_rope_batched_positions(student):
    # d_k = 6 (three pairs), two leading dims, positions with gaps and repeats.
    w = mha_weights(18, seed=130)
    x = randn(2, 2, 5, 18, seed=134)
    positions = torch.tensor([[[0, 3, 3, 9, 15], [1, 2, 3, 4, 5]], [[15, 14, 13, 12, 11], [6, 0, 6, 0, 6]]])
    out = student.run_multihead_self_attention_with_rope(
        d_model=18, num_heads=3, max_seq_len=16, theta=300.0, q_proj_weight=w[0], k_proj_weight=w[1],
        v_proj_weight=w[2], o_proj_weight=w[3], in_features=x, token_positions=positions,
    )  # fmt: skip
    torch.testing.assert_close(out, mha_reference(x, w, 3, rope=(positions, 300.0)))


@pytest.mark.problem("multihead_self_attention")
def test_mha_rope_default_positions_shorter_than_max(student):
    # seq 4 of max_seq_len 64; None means positions 0..seq-1.
    w = mha_weights(16, seed=140)
    x = randn(3, 4, 16, seed=144)
    kwargs = {"d_model": 16, "num_heads": 2, "max_seq_len": 64, "theta": 10000.0, "q_proj_weight": w[0],
              "k_proj_weight": w[1], "v_proj_weight": w[2], "o_proj_weight": w[3], "in_features": x}  # fmt: skip
    out = student.run_multihead_self_attention_with_rope(**kwargs, token_positions=None)
    torch.testing.assert_close(out, mha_reference(x, w, 2, rope=(torch.arange(4), 10000.0)))
    shifted = student.run_multihead_self_attention_with_rope(**kwargs, token_positions=torch.arange(4) + 30)
    # RoPE scores depend on relative positions only: shifting every position changes nothing.
    torch.testing.assert_close(shifted, out, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------- block and model


@pytest.mark.problem("transformer_block")
def test_transformer_block_full_length(student):
    config, weights, arrays = load_snapshot("model_block_hidden.npz")
    assert arrays["input"].shape[-2] == config["max_seq_len"]
    out = student.run_transformer_block(**config, weights=weights, in_features=arrays["input"])
    torch.testing.assert_close(out, arrays["output"], rtol=1e-4, atol=1e-5)


@pytest.mark.problem("transformer_block")
def test_transformer_block_one_token(student):
    config, weights, arrays = load_snapshot("model_block_hidden.npz")
    out = student.run_transformer_block(**config, weights=weights, in_features=arrays["input_one"])
    torch.testing.assert_close(out, arrays["output_one"], rtol=1e-4, atol=1e-5)


@pytest.mark.problem("transformer_block")
def test_transformer_block_is_causal(student):
    config, weights, arrays = load_snapshot("model_block_hidden.npz")
    x = arrays["input"]
    out = student.run_transformer_block(**config, weights=weights, in_features=x[:, :4])
    torch.testing.assert_close(out, arrays["output"][:, :4], rtol=1e-4, atol=1e-5)  # a prefix sees only itself


@pytest.mark.problem("transformer_lm")
def test_transformer_lm_full_context(student):
    config, weights, arrays = load_snapshot("model_lm_hidden.npz")
    assert arrays["ids"].shape[-1] == config["context_length"]
    logits = student.run_transformer_lm(**config, weights=weights, in_indices=arrays["ids"])
    torch.testing.assert_close(logits, arrays["logits"], rtol=1e-4, atol=1e-5)


@pytest.mark.problem("transformer_lm")
def test_transformer_lm_short_single_sequence(student):
    config, weights, arrays = load_snapshot("model_lm_hidden.npz")
    logits = student.run_transformer_lm(**config, weights=weights, in_indices=arrays["ids_short"])
    assert logits.shape == (1, 5, config["vocab_size"])
    torch.testing.assert_close(logits, arrays["logits_short"], rtol=1e-4, atol=1e-5)


@pytest.mark.problem("transformer_lm")
def test_transformer_lm_rows_are_independent(student):
    config, weights, arrays = load_snapshot("model_lm_hidden.npz")
    ids = arrays["ids"]
    row = student.run_transformer_lm(**config, weights=weights, in_indices=ids[1:2])
    torch.testing.assert_close(row, arrays["logits"][1:2], rtol=1e-4, atol=1e-5)
