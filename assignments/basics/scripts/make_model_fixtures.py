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
from torch import Tensor

HERE = Path(__file__).resolve().parent
UNIT = HERE.parent
FIXTURES = UNIT / "fixtures"  # inputs: shipped, and visible inside the sandbox
SNAPSHOTS = UNIT / "tests" / "public" / "snapshots"  # expected values: trusted side only
sys.path.insert(0, str(UNIT.parents[1] / "reference"))

from basics.model import TransformerBlock, TransformerLM
from functional import block, language_model, seeded_weights

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

    weights = seeded_weights(TransformerBlock(**BLOCK), seed=1, gain_spread=0.2)
    x = torch.randn(2, 12, BLOCK["d_model"], generator=generator)
    out = run_reference(TransformerBlock(**BLOCK), weights, x)
    torch.testing.assert_close(out, block(x, weights, "", BLOCK["num_heads"], BLOCK["theta"]), rtol=1e-4, atol=1e-5)
    save("model_transformer_block.npz", BLOCK, weights, x, out)

    weights = seeded_weights(TransformerLM(**LM), seed=2, gain_spread=0.2)
    ids = torch.randint(LM["vocab_size"], (2, 10), generator=generator)  # shorter than the context
    logits = run_reference(TransformerLM(**LM), weights, ids)
    torch.testing.assert_close(logits, language_model(ids, weights, LM), rtol=1e-4, atol=1e-5)
    save("model_transformer_lm.npz", LM, weights, ids, logits)


if __name__ == "__main__":
    main()
