"""Regenerate the snapshots of the hidden tests from the reference implementation.

    python assignments/basics/scripts/make_hidden_snapshots.py

Writes to ``tests/hidden/snapshots/`` (trusted side only, never in a handout):

- ``model_block_hidden.npz``, ``model_lm_hidden.npz``: a JSON ``config``, the weights under
  ``weight/<state-dict key>``, inputs and the reference's outputs, each output checked against
  an independent functional computation (``F.linear``, ``F.rms_norm``, ``F.silu``,
  ``F.scaled_dot_product_attention``, complex-number RoPE) before it is written;
- ``bpe_hidden.json``: what the reference trainer learns from ``inputs_hidden.bpe_corpus()``
  (several special tokens); ``bpe_plain_hidden.json``: from the fixture corpus with no special
  tokens. Both checked merge for merge against a naive trainer that recounts every pair.

Everything is seeded and written deterministically (fixed zip timestamps, sorted JSON), so a
rerun reproduces the files byte for byte.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lmcourse.grader.snapshots import write_npz

HERE = Path(__file__).resolve().parent
UNIT = HERE.parent
SNAPSHOTS = UNIT / "tests" / "hidden" / "snapshots"
sys.path.insert(0, str(UNIT.parents[1] / "reference"))
sys.path.insert(0, str(UNIT))

from basics.bpe import train_bpe
from basics.model import TransformerBlock, TransformerLM
from functional import block, language_model, seeded_weights
from naive_bpe import naive_train_bpe
from tests.hidden import inputs_hidden as inputs

# ----------------------------------------------------------------------- writing


def write_json(name: str, data: dict) -> None:
    path = SNAPSHOTS / name
    path.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {name} ({path.stat().st_size:,} bytes)")


# ----------------------------------------------------------------------- model


def checked(module: torch.nn.Module, inputs_: Tensor, expected: Tensor) -> Tensor:
    out = module(inputs_)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    return out


@torch.no_grad()
def write_model_snapshots() -> None:
    generator = torch.Generator().manual_seed(2027)
    cfg = inputs.BLOCK
    module = TransformerBlock(**cfg)
    weights = seeded_weights(module, seed=11, gain_spread=0.3)
    module.load_state_dict(weights)
    x = 1.5 * torch.randn(3, cfg["max_seq_len"], cfg["d_model"], generator=generator)
    x_one = torch.randn(2, 1, cfg["d_model"], generator=generator)
    arrays = {
        "input": x,
        "output": checked(module, x, block(x, weights, "", cfg["num_heads"], cfg["theta"])),
        "input_one": x_one,
        "output_one": checked(module, x_one, block(x_one, weights, "", cfg["num_heads"], cfg["theta"])),
    }
    write_npz(SNAPSHOTS / "model_block_hidden.npz", snapshot_arrays(cfg, weights, arrays))

    cfg = inputs.LM
    lm = TransformerLM(**cfg)
    weights = seeded_weights(lm, seed=12, gain_spread=0.3)
    lm.load_state_dict(weights)
    ids = torch.randint(cfg["vocab_size"], (3, cfg["context_length"]), generator=generator)
    ids[0, 0], ids[2, -1] = 0, cfg["vocab_size"] - 1
    ids_short = torch.randint(cfg["vocab_size"], (1, 5), generator=generator)
    arrays = {
        "ids": ids,
        "logits": checked(lm, ids, language_model(ids, weights, cfg)),
        "ids_short": ids_short,
        "logits_short": checked(lm, ids_short, language_model(ids_short, weights, cfg)),
    }
    write_npz(SNAPSHOTS / "model_lm_hidden.npz", snapshot_arrays(cfg, weights, arrays))


def snapshot_arrays(config: dict, weights: dict[str, Tensor], arrays: dict[str, Tensor]) -> dict[str, np.ndarray]:
    out = {"config": np.array(json.dumps(config, sort_keys=True))}
    out.update({f"weight/{key}": value.numpy() for key, value in weights.items()})
    out.update({key: value.numpy() for key, value in arrays.items()})
    return out


# ----------------------------------------------------------------------- BPE


def bpe_snapshot(text: str, vocab_size: int, special_tokens: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "corpus.txt"
        path.write_text(text, encoding="utf-8")
        vocab, merges = train_bpe(path, vocab_size, special_tokens)
    naive_vocab, naive_merges = naive_train_bpe(text, vocab_size, special_tokens)
    if merges != naive_merges or vocab != naive_vocab:
        raise SystemExit("the reference trainer disagrees with the naive trainer; snapshots not written")
    return {
        "vocab_size": vocab_size,
        "special_tokens": special_tokens,
        "merges": [[left.hex(), right.hex()] for left, right in merges],
        "vocab": {str(i): token.hex() for i, token in vocab.items()},
    }


def write_bpe_snapshots() -> None:
    write_json("bpe_hidden.json", bpe_snapshot(inputs.bpe_corpus(), inputs.BPE_VOCAB_SIZE, inputs.BPE_SPECIALS))
    corpus = inputs.CORPUS.read_bytes().decode("utf-8")
    write_json("bpe_plain_hidden.json", bpe_snapshot(corpus, inputs.PLAIN_VOCAB_SIZE, []))


def main() -> None:
    SNAPSHOTS.mkdir(exist_ok=True)
    torch.use_deterministic_algorithms(True)
    write_model_snapshots()
    write_bpe_snapshots()


if __name__ == "__main__":
    main()
