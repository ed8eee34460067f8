"""Regenerate the model snapshots ``model_*.npz`` from the reference implementation.

    python assignments/basics/scripts/make_model_fixtures.py

Each file holds a JSON ``config``, the module's weights under ``weight/<state-dict key>``,
the ``input`` and the expected ``output``. Weights are seeded random tensors (RMSNorm gains
too, so that they matter), and every output is checked against an independent functional
computation (PyTorch's ``F.linear``, ``F.rms_norm``, ``F.silu``,
``F.scaled_dot_product_attention`` and complex-number RoPE) before it is written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

HERE = Path(__file__).resolve().parent
UNIT = HERE.parent
FIXTURES = UNIT / "fixtures"  # inputs: shipped, and visible inside the sandbox
SNAPSHOTS = UNIT / "tests" / "public" / "snapshots"  # expected values: trusted side only
sys.path.insert(0, str(UNIT.parents[1] / "reference"))

from basics.model import TransformerBlock, TransformerLM  # noqa: E402  (the reference package)

BLOCK = {"d_model": 16, "num_heads": 4, "d_ff": 40, "max_seq_len": 16, "theta": 10000.0}
LM = {
    "vocab_size": 50,
    "context_length": 16,
    "d_model": 16,
    "num_layers": 2,
    "num_heads": 4,
    "d_ff": 40,
    "rope_theta": 10000.0,
}


def seeded_weights(module: torch.nn.Module, seed: int) -> dict[str, Tensor]:
    """Random weights for every entry of the module's state dict: N(0, 1/fan_in) matrices, gains near 1."""
    generator = torch.Generator().manual_seed(seed)
    weights = {}
    for name, tensor in module.state_dict().items():
        noise = torch.randn(tensor.shape, generator=generator)
        weights[name] = 1 + 0.2 * noise if tensor.dim() == 1 else noise / tensor.shape[-1] ** 0.5
    return weights


def rope(x: Tensor, theta: float) -> Tensor:
    """Rotate adjacent pairs of x (..., seq, d) at positions 0..seq-1, in complex float64."""
    d, seq = x.shape[-1], x.shape[-2]
    angles = torch.arange(seq, dtype=torch.float64)[:, None] * theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    pairs = torch.view_as_complex(x.double().unflatten(-1, (-1, 2)).contiguous())
    return torch.view_as_real(pairs * torch.polar(torch.ones_like(angles), angles)).flatten(-2).to(x.dtype)


def block(x: Tensor, w: dict[str, Tensor], prefix: str, num_heads: int, theta: float) -> Tensor:
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
    x = F.embedding(ids, w["token_embeddings.weight"])
    for i in range(cfg["num_layers"]):
        x = block(x, w, f"layers.{i}.", cfg["num_heads"], cfg["rope_theta"])
    x = F.rms_norm(x, x.shape[-1:], w["ln_final.weight"], eps=1e-5)
    return F.linear(x, w["lm_head.weight"])


def run_reference(module: torch.nn.Module, weights: dict[str, Tensor], inputs: Tensor) -> Tensor:
    module.load_state_dict(weights)
    return module(inputs)


def save(name: str, config: dict, weights: dict[str, Tensor], inputs: Tensor, output: Tensor) -> None:
    arrays = {f"weight/{key}": value.numpy() for key, value in weights.items()}
    np.savez_compressed(
        SNAPSHOTS / name, config=np.array(json.dumps(config)), input=inputs.numpy(), output=output.numpy(), **arrays
    )
    print(f"wrote {name} ({(SNAPSHOTS / name).stat().st_size:,} bytes)")


@torch.no_grad()
def main() -> None:
    generator = torch.Generator().manual_seed(0)

    weights = seeded_weights(TransformerBlock(**BLOCK), seed=1)
    x = torch.randn(2, 12, BLOCK["d_model"], generator=generator)
    out = run_reference(TransformerBlock(**BLOCK), weights, x)
    torch.testing.assert_close(out, block(x, weights, "", BLOCK["num_heads"], BLOCK["theta"]), rtol=1e-4, atol=1e-5)
    save("model_transformer_block.npz", BLOCK, weights, x, out)

    weights = seeded_weights(TransformerLM(**LM), seed=2)
    ids = torch.randint(LM["vocab_size"], (2, 10), generator=generator)  # shorter than the context
    logits = run_reference(TransformerLM(**LM), weights, ids)
    torch.testing.assert_close(logits, language_model(ids, weights, LM), rtol=1e-4, atol=1e-5)
    save("model_transformer_lm.npz", LM, weights, ids, logits)


if __name__ == "__main__":
    main()
