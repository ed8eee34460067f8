"""Inputs of the hidden tests that both the tests and ``scripts/make_hidden_snapshots.py`` build.

Inputs only, never an expected value: the corpora the hidden BPE tests train on and the model
configurations of the hidden block and language-model snapshots.
"""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CORPUS = FIXTURES / "tok_corpus.txt"
ENDOFTEXT = "<|endoftext|>"

# ---- BPE ----

#: Three special tokens, one with regex metacharacters; "<|pad|>" never occurs in the corpus.
BPE_SPECIALS = ["<|doc|>", "[SEP]", ENDOFTEXT, "<|pad|>"]
BPE_VOCAB_SIZE = 700
#: Training on the whole fixture corpus with no special tokens at all: "<|endoftext|>" is
#: ordinary text there, and its pieces merge (merges 171-183 of 194).
PLAIN_VOCAB_SIZE = 450


def bpe_corpus() -> str:
    """A corpus unlike the public one, cut from the fixture corpus.

    Sonnets 1-60, the start of *Macbeth* (with its blank lines turned into ``[SEP]`` lines) and
    the multilingual document, separated alternately by ``<|doc|>`` and ``<|endoftext|>``.
    """
    documents = CORPUS.read_bytes().decode("utf-8").split(ENDOFTEXT)
    macbeth = documents[157][:30_000].replace("\n\n", "\n[SEP]\n")
    parts = [*documents[:60], macbeth, documents[158]]
    text = parts[0]
    for i, part in enumerate(parts[1:]):
        text += ("<|doc|>" if i % 2 == 0 else ENDOFTEXT) + part
    return text


# ---- model snapshots ----

BLOCK = {"d_model": 24, "num_heads": 3, "d_ff": 50, "max_seq_len": 11, "theta": 500.0}
LM = {
    "vocab_size": 37,
    "context_length": 12,
    "d_model": 20,
    "num_layers": 3,
    "num_heads": 2,
    "d_ff": 36,
    "rope_theta": 1000.0,
}
