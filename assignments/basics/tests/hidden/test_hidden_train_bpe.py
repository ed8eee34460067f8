"""Hidden tests of BPE training: other corpora, several special tokens or none, no merges at all,
ties on random corpora.

Large corpora are checked against snapshots of the reference (``snapshots/bpe_*_hidden.json``,
checked against a naive trainer by ``scripts/make_hidden_snapshots.py``); small ones against the
naive trainer below, run here.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import regex

from tests import producers
from tests.hidden import inputs_hidden as inputs

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
GPT2_PATTERN = regex.compile(r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
ENDOFTEXT = "<|endoftext|>"

Vocab = dict[int, bytes]
Merges = list[tuple[bytes, bytes]]


@cache
def snapshot(name: str) -> dict[str, Any]:
    data = json.loads((SNAPSHOTS / name).read_text(encoding="utf-8"))
    return {
        "vocab_size": data["vocab_size"],
        "special_tokens": data["special_tokens"],
        "merges": [(bytes.fromhex(a), bytes.fromhex(b)) for a, b in data["merges"]],
        "vocab": {int(i): bytes.fromhex(token) for i, token in data["vocab"].items()},
    }


def naive_train_bpe(text: str, vocab_size: int, special_tokens: list[str]) -> tuple[Vocab, Merges]:
    """Recount every pair of every pre-token before each merge; ties to the greater pair of bytes."""
    documents = regex.split("|".join(regex.escape(s) for s in sorted(special_tokens, key=len, reverse=True)), text) if special_tokens else [text]
    pretokens = Counter(match for document in documents for match in GPT2_PATTERN.findall(document))
    words = {tuple(bytes([b]) for b in pretoken.encode("utf-8")): n for pretoken, n in pretokens.items()}
    tokens = [s.encode("utf-8") for s in special_tokens] + [bytes([b]) for b in range(256)]
    merges: Merges = []
    while len(tokens) < vocab_size:
        counts: Counter[tuple[bytes, bytes]] = Counter()
        for word, n in words.items():
            for pair in pairwise(word):
                counts[pair] += n
        if not counts:
            break
        best = max(counts, key=lambda pair: (counts[pair], pair))
        merges.append(best)
        tokens.append(best[0] + best[1])
        merged: Counter[tuple[bytes, ...]] = Counter()
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
            merged[tuple(out)] += n
        words = dict(merged)
    return dict(enumerate(tokens)), merges


def random_corpus(seed: int, special_tokens: list[str], documents: int) -> str:
    """Short documents of random words over a small alphabet with multi-byte letters: many ties."""
    rng = random.Random(seed)
    letters = ["a", "b", "e", "é", "ß", "日", "本", "z", "'", "s", "t"]
    separators = [" ", " ", " ", "\n", "  ", "\r\n", ", ", ". ", "\t", "1", "42"]
    docs = []
    for _ in range(documents):
        words = ["".join(rng.choice(letters) for _ in range(rng.randint(1, 5))) for _ in range(rng.randint(0, 30))]
        docs.append("".join(word + rng.choice(separators) for word in words))
    text = docs[0]
    for doc in docs[1:]:
        text += (rng.choice(special_tokens) if special_tokens else "") + doc
    return text


def train_on_text(student: Any, text: str, vocab_size: int, special_tokens: list[str]) -> tuple[Vocab, Merges]:
    vocab, merges = student.run(producers.train_bpe_on_text, text, vocab_size, special_tokens)
    return vocab, [tuple(pair) for pair in merges]


# ----------------------------------------------------------------------- snapshots


@pytest.mark.problem("train_bpe")
def test_several_special_tokens_merges(student: Any) -> None:
    """Special tokens "<|doc|>", "[SEP]" (regex metacharacters), "<|endoftext|>" and an absent "<|pad|>"."""
    expected = snapshot("bpe_hidden.json")
    _, merges = train_on_text(student, inputs.bpe_corpus(), expected["vocab_size"], expected["special_tokens"])
    assert len(merges) == len(expected["merges"])
    for i, (got, want) in enumerate(zip(merges, expected["merges"])):
        assert got == want, f"merge {i} differs: got {got}, expected {want}"


@pytest.mark.problem("train_bpe")
def test_several_special_tokens_vocab(student: Any) -> None:
    expected = snapshot("bpe_hidden.json")
    vocab, _ = train_on_text(student, inputs.bpe_corpus(), expected["vocab_size"], expected["special_tokens"])
    specials = [s.encode() for s in expected["special_tokens"]]
    assert [vocab[i] for i in range(len(specials))] == specials, "special tokens take ids 0.. in the order given"
    assert len(vocab) == expected["vocab_size"]
    assert vocab == expected["vocab"]
    for token in vocab.values():
        if token not in specials:
            assert b"[SEP]" not in token and b"<|doc|>" not in token and b"<|" not in token


@pytest.mark.problem("train_bpe")
def test_no_special_tokens(student: Any) -> None:
    """Without special tokens "<|endoftext|>" is ordinary text, and its pieces get merged."""
    expected = snapshot("bpe_plain_hidden.json")
    vocab, merges = student.run_train_bpe(input_path=str(inputs.CORPUS), vocab_size=expected["vocab_size"], special_tokens=[])
    assert [tuple(pair) for pair in merges] == expected["merges"]
    assert [vocab[b] for b in range(256)] == [bytes([b]) for b in range(256)], "with no special tokens byte b has id b"
    assert vocab == expected["vocab"]


# ----------------------------------------------------------------------- edge cases


@pytest.mark.problem("train_bpe")
@pytest.mark.parametrize("special_tokens", [[], [ENDOFTEXT, "<|pad|>"]], ids=["bytes-only", "bytes-and-specials"])
def test_vocab_of_exactly_bytes_and_specials_has_no_merges(student: Any, special_tokens: list[str]) -> None:
    size = 256 + len(special_tokens)
    vocab, merges = student.run_train_bpe(input_path=str(inputs.CORPUS), vocab_size=size, special_tokens=special_tokens)
    assert list(merges) == []
    expected = [s.encode() for s in special_tokens] + [bytes([b]) for b in range(256)]
    assert vocab == dict(enumerate(expected))


@pytest.mark.problem("train_bpe")
def test_corpus_of_special_tokens_only(student: Any) -> None:
    """Nothing but special tokens (and one that is a prefix of another): nothing to merge."""
    vocab, merges = train_on_text(student, "<s></s><s><s></s>" * 30, 400, ["<s>", "</s>"])
    assert merges == []
    assert vocab == dict(enumerate([b"<s>", b"</s>", *(bytes([b]) for b in range(256))]))


@pytest.mark.problem("train_bpe")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_corpora_match_naive_training(student: Any, seed: int) -> None:
    """Random words over letters of one, two and three UTF-8 bytes: ties everywhere, broken by
    the greater pair of byte strings; merges may join pieces of one character."""
    specials = ["<s>", "</s>", "|||"][: seed]
    text = random_corpus(seed, specials, documents=40)
    vocab_size = 256 + len(specials) + 60
    vocab, merges = train_on_text(student, text, vocab_size, specials)
    expected_vocab, expected_merges = naive_train_bpe(text, vocab_size, specials)
    for i, (got, want) in enumerate(zip(merges, expected_merges)):
        assert got == want, f"merge {i} differs: got {got}, expected {want}"
    assert len(merges) == len(expected_merges)
    assert vocab == expected_vocab


@pytest.mark.problem("train_bpe")
def test_training_stops_when_nothing_is_left_to_merge(student: Any) -> None:
    # Pre-tokens "hi" x2, " hi" x2, "ho": three merges, then every pre-token is one token.
    vocab, merges = train_on_text(student, "hi hi hi<s>ho<s>hi", 10_000, ["<s>"])
    assert merges == [(b"h", b"i"), (b" ", b"hi"), (b"h", b"o")]
    assert len(vocab) == 1 + 256 + 3 and vocab[257] == b"hi" and vocab[259] == b"ho"


@pytest.mark.problem("train_bpe")
def test_too_small_vocab_for_several_special_tokens(student: Any) -> None:
    outcome = student.run(producers.train_bpe_error, str(inputs.CORPUS), 258, [ENDOFTEXT, "<|a|>", "<|b|>"])
    assert outcome["error"] is not None, "256 bytes and 3 special tokens do not fit in 258 ids"
    assert "ValueError" in outcome["error"], f"expected a ValueError, got {outcome['error'][0]}"
