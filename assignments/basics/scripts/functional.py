"""An independent, functional Transformer LM (torch.nn.functional only) for the staff scripts.

Snapshots are written by the reference *and* checked against this second implementation, so a
bug in the reference cannot silently become the expected value. Shared by
``make_model_fixtures.py`` and ``make_hidden_snapshots.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def seeded_weights(module: torch.nn.Module, seed: int, gain_spread: float) -> dict[str, Tensor]:
    """Every entry of the module's state dict: N(0, 1/fan_in) matrices, gains 1 ± ``gain_spread``."""
    generator = torch.Generator().manual_seed(seed)
    weights = {}
    for name, tensor in module.state_dict().items():
        noise = torch.randn(tensor.shape, generator=generator)
        weights[name] = 1 + gain_spread * noise if tensor.dim() == 1 else noise / tensor.shape[-1] ** 0.5
    return weights


def rope(x: Tensor, theta: float) -> Tensor:
    """Rotate adjacent pairs of x (..., seq, d) at positions 0..seq-1, in complex float64."""
    d, seq = x.shape[-1], x.shape[-2]
    angles = torch.arange(seq, dtype=torch.float64)[:, None] * theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    pairs = torch.view_as_complex(x.double().unflatten(-1, (-1, 2)).contiguous())
    return torch.view_as_real(pairs * torch.polar(torch.ones_like(angles), angles)).flatten(-2).to(x.dtype)


def block(x: Tensor, w: dict[str, Tensor], prefix: str, num_heads: int, theta: float) -> Tensor:
    """Pre-norm block: causal RoPE attention, then SwiGLU; weights under ``prefix``."""

    def heads(t: Tensor) -> Tensor:
        return t.unflatten(-1, (num_heads, -1)).transpose(-3, -2)

    h = F.rms_norm(x, x.shape[-1:], w[prefix + "ln1.weight"], eps=1e-5)
    q = rope(heads(F.linear(h, w[prefix + "attn.q_proj.weight"])), theta)
    k = rope(heads(F.linear(h, w[prefix + "attn.k_proj.weight"])), theta)
    v = heads(F.linear(h, w[prefix + "attn.v_proj.weight"]))
    attended = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(-3, -2).flatten(-2)
    x = x + F.linear(attended, w[prefix + "attn.output_proj.weight"])
    h = F.rms_norm(x, x.shape[-1:], w[prefix + "ln2.weight"], eps=1e-5)
    gated = F.silu(F.linear(h, w[prefix + "ffn.w1.weight"])) * F.linear(h, w[prefix + "ffn.w3.weight"])
    return x + F.linear(gated, w[prefix + "ffn.w2.weight"])


def language_model(ids: Tensor, w: dict[str, Tensor], cfg: dict) -> Tensor:
    """Logits (batch, seq, vocab) of token ``ids`` (batch, seq)."""
    x = F.embedding(ids, w["token_embeddings.weight"])
    for i in range(cfg["num_layers"]):
        x = block(x, w, f"layers.{i}.", cfg["num_heads"], cfg["rope_theta"])
    return F.linear(F.rms_norm(x, x.shape[-1:], w["ln_final.weight"], eps=1e-5), w["lm_head.weight"])
