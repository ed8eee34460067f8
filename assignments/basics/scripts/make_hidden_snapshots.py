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

import io
import json
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import regex
import torch
from torch import Tensor

HERE = Path(__file__).resolve().parent
UNIT = HERE.parent
SNAPSHOTS = UNIT / "tests" / "hidden" / "snapshots"
sys.path.insert(0, str(UNIT.parents[1] / "reference"))
sys.path.insert(0, str(UNIT))

from basics.bpe import train_bpe
from basics.model import TransformerBlock, TransformerLM
from functional import block, language_model, seeded_weights
from tests.hidden import inputs_hidden as inputs

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


# ----------------------------------------------------------------------- writing


def write_npz(name: str, arrays: dict[str, np.ndarray]) -> None:
    """An ``.npz`` that ``np.load`` reads, with fixed timestamps so reruns are byte-identical."""
    path = SNAPSHOTS / name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.save(buffer, arrays[key], allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(2027, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buffer.getvalue())
    print(f"wrote {name} ({path.stat().st_size:,} bytes)")


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
    write_npz("model_block_hidden.npz", snapshot_arrays(cfg, weights, arrays))

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
    write_npz("model_lm_hidden.npz", snapshot_arrays(cfg, weights, arrays))


def snapshot_arrays(config: dict, weights: dict[str, Tensor], arrays: dict[str, Tensor]) -> dict[str, np.ndarray]:
    out = {"config": np.array(json.dumps(config, sort_keys=True))}
    out.update({f"weight/{key}": value.numpy() for key, value in weights.items()})
    out.update({key: value.numpy() for key, value in arrays.items()})
    return out


# ----------------------------------------------------------------------- BPE


def naive_train_bpe(text: str, vocab_size: int, special_tokens: list[str]) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """BPE training at its plainest: before each merge, count every pair of every word again."""
    documents = [text]
    for special in sorted(special_tokens, key=len, reverse=True):
        documents = [piece for document in documents for piece in document.split(special)]
    pretokens = Counter(match for document in documents for match in regex.findall(GPT2_PATTERN, document))
    words = {tuple(bytes([b]) for b in pretoken.encode("utf-8")): n for pretoken, n in pretokens.items()}
    tokens = [special.encode("utf-8") for special in special_tokens] + [bytes([b]) for b in range(256)]
    learned: list[tuple[bytes, bytes]] = []
    while len(tokens) < vocab_size:
        counts: Counter[tuple[bytes, bytes]] = Counter()
        for word, n in words.items():
            for i in range(len(word) - 1):
                counts[word[i], word[i + 1]] += n
        if not counts:
            break
        best = max(counts, key=lambda pair: (counts[pair], pair))
        learned.append(best)
        tokens.append(best[0] + best[1])
        new_words: Counter[tuple[bytes, ...]] = Counter()
        for word, n in words.items():
            out: list[bytes] = []
            i = 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(best[0] + best[1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            new_words[tuple(out)] += n
        words = dict(new_words)
    return dict(enumerate(tokens)), learned


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
