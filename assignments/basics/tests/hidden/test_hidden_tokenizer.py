"""Hidden tests of the tokenizer: other texts, a trained vocabulary with scattered ids, special
tokens absent from the text or added by the tokenizer, empty inputs, and ``encode_iterable``
over many tiny chunks that cut special tokens, whitespace runs and character sequences.

Expected ids come from the plain BPE encoder below (split on special tokens, longest first;
GPT-2 pre-tokens; within each, merge the lowest-ranked adjacent pair until none is a merge),
which gives GPT-2's ids exactly on GPT-2's vocabulary.
"""

from __future__ import annotations

import json
import random
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import regex

from tests import producers
from tests.hidden import inputs_hidden as inputs

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
FIXTURES = inputs.FIXTURES
GPT2_PATTERN = regex.compile(r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
ENDOFTEXT = "<|endoftext|>"

Vocab = dict[int, bytes]
Merges = list[tuple[bytes, bytes]]


@cache
def gpt2() -> tuple[Vocab, Merges]:
    """GPT-2's vocabulary and merges as bytes (the files spell each byte as one printable character)."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    unprintable = [b for b in range(256) if b not in printable]
    char_to_byte = {chr(b): b for b in printable} | {chr(256 + n): b for n, b in enumerate(unprintable)}

    def as_bytes(word: str) -> bytes:
        return bytes(char_to_byte[c] for c in word)

    encoder = json.loads((FIXTURES / "gpt2_vocab.json").read_text(encoding="utf-8"))
    rows = (FIXTURES / "gpt2_merges.txt").read_text(encoding="utf-8").splitlines()[1:]
    merges = [(as_bytes(a), as_bytes(b)) for a, b in (row.split() for row in rows if row)]
    return {i: as_bytes(word) for word, i in encoder.items()}, merges


@cache
def trained_scattered() -> tuple[Vocab, Merges]:
    """The hidden BPE snapshot's vocabulary with its ids shuffled and spread out (3·k + 5):
    nothing may assume that ids follow bytes, merges or any order."""
    data = json.loads((SNAPSHOTS / "bpe_hidden.json").read_text(encoding="utf-8"))
    tokens = [bytes.fromhex(data["vocab"][str(i)]) for i in range(len(data["vocab"]))]
    order = list(range(len(tokens)))
    random.Random(5).shuffle(order)
    vocab = {3 * k + 5: tokens[i] for k, i in enumerate(order)}
    return vocab, [(bytes.fromhex(a), bytes.fromhex(b)) for a, b in data["merges"]]


class PlainEncoder:
    """BPE encoding at its plainest, for expected ids."""

    def __init__(self, vocab: Vocab, merges: Merges, special_tokens: list[str]) -> None:
        self.id_of = {token: i for i, token in vocab.items()}
        self.rank = {pair: r for r, pair in enumerate(merges)}
        by_length = sorted(special_tokens, key=len, reverse=True)
        self.split = regex.compile("(" + "|".join(map(regex.escape, by_length)) + ")") if special_tokens else None
        self.cache: dict[str, list[int]] = {}

    def encode(self, text: str) -> list[int]:
        parts = self.split.split(text) if self.split else [text]
        ids: list[int] = []
        for i, part in enumerate(parts):
            if i % 2:
                ids.append(self.id_of[part.encode("utf-8")])
            else:
                for pretoken in GPT2_PATTERN.findall(part):
                    if pretoken not in self.cache:
                        self.cache[pretoken] = [self.id_of[t] for t in self.merge(pretoken.encode("utf-8"))]
                    ids.extend(self.cache[pretoken])
        return ids

    def merge(self, data: bytes) -> list[bytes]:
        tokens = [bytes([b]) for b in data]
        while len(tokens) > 1:
            pairs = set(pairwise(tokens))
            best = min(pairs, key=lambda pair: self.rank.get(pair, float("inf")))
            if best not in self.rank:
                break
            out: list[bytes] = []
            i = 0
            while i < len(tokens):
                if i + 1 < len(tokens) and (tokens[i], tokens[i + 1]) == best:
                    out.append(tokens[i] + tokens[i + 1])
                    i += 2
                else:
                    out.append(tokens[i])
                    i += 1
            tokens = out
        return tokens


GPT2_TEXTS = [
    "Mr. O'Neil's cat — isn't it? — won't stop: 'yes', \"no\", it’s (curly) fine.",
    "    indented\n\t\ttabs\n\n\n\nend   \n  ",
    "1234567890 12.5% $100,000.00 2^32 = 4294967296; 007 ٠١٢",
    "ALL CAPS and lower and MiXeD-CaSe_snake_case camelCaseWord",
    "Ελληνικά, עברית, ไทย, 한국어, Tiếng Việt, हिन्दी",
    "trailing space ",
    " leading space",
    "a\u200db zero\u200bwidth, \ufeffBOM, soft\u00adhyphen",
    "'s 't 'll 've 're 'd 'm 'S 'LL",
    "\r\n\r\nwindows\r\nlines\r\n",
    "3141592653589793238462643383279502884197",
    "🏳️‍🌈 🧑🏽‍🚀 👍🏿👍 🫠",
    "x" * 70 + " " + "ab" * 40,
    "<|endoftext|> is just text here <|endoftext|",
]


# ----------------------------------------------------------------------- GPT-2 ids


@pytest.mark.problem("tokenizer")
def test_gpt2_ids_of_other_texts(student: Any) -> None:
    vocab, merges = gpt2()
    got = student.run(producers.encode_texts, vocab, merges, None, GPT2_TEXTS)
    plain = PlainEncoder(vocab, merges, [])
    for text, ids in zip(GPT2_TEXTS, got):
        assert ids == plain.encode(text), f"ids differ for {text[:60]!r}"


@pytest.mark.problem("tokenizer")
def test_special_tokens_absent_from_the_text_change_nothing(student: Any) -> None:
    vocab, merges = gpt2()
    specials = [ENDOFTEXT, "<|im_start|>", "<|im_end|>"]
    texts = GPT2_TEXTS[:-1]  # the last one holds "<|endoftext|>"
    got = student.run(producers.encode_texts, vocab, merges, specials, texts)
    plain = PlainEncoder(vocab, merges, [])
    for text, ids in zip(texts, got):
        assert ids == plain.encode(text), f"ids differ for {text[:60]!r}"


@pytest.mark.problem("tokenizer")
def test_gpt2_special_token_next_to_text(student: Any) -> None:
    vocab, merges = gpt2()
    texts = [f"{ENDOFTEXT}{ENDOFTEXT}", f" {ENDOFTEXT} ", f"word{ENDOFTEXT}'s", f"\n\n{ENDOFTEXT}\n\n", f"<{ENDOFTEXT}>"]
    got = student.run(producers.encode_texts, vocab, merges, [ENDOFTEXT], texts)
    plain = PlainEncoder(vocab, merges, [ENDOFTEXT])
    for text, ids in zip(texts, got):
        assert ids == plain.encode(text), f"ids differ for {text!r}"


# ----------------------------------------------------------------------- a trained vocabulary


TRAINED_SPECIALS = ["<|doc|>", "[SEP]", ENDOFTEXT]
TRAINED_TEXTS = [
    "Shall I compare thee to a summer's day?<|doc|>Thou art more lovely and more temperate.",
    "[SEP][SEP]<|doc|>[SEP]",
    "inside<|doc|>words and [SEP]brackets [SEP ] and [sep] are not special",
    "MACBETH. So foul and fair a day I have not seen.\n[SEP]\nBANQUO. How far is't called to Forres?",
    "Кошка спит. 今日は晴れ。 القمر جميل 🙂👩‍💻 — café ½",
    "\n\n\n   \t\t  <|endoftext|>\n",
]


@pytest.mark.problem("tokenizer")
def test_trained_vocab_with_scattered_ids(student: Any) -> None:
    vocab, merges = trained_scattered()
    results = student.run(producers.encode_and_decode, vocab, merges, TRAINED_SPECIALS, TRAINED_TEXTS)
    plain = PlainEncoder(vocab, merges, TRAINED_SPECIALS)
    for text, result in zip(TRAINED_TEXTS, results):
        assert result["ids"] == plain.encode(text), f"ids differ for {text[:60]!r}"
        assert result["decoded"] == text


@pytest.mark.problem("tokenizer")
def test_special_tokens_decode_to_themselves(student: Any) -> None:
    vocab, merges = trained_scattered()
    id_of = {token: i for i, token in vocab.items()}
    special_ids = [[id_of[s.encode()]] for s in TRAINED_SPECIALS]
    got = student.run(producers.decode_ids, vocab, merges, TRAINED_SPECIALS, [*special_ids, [i for ids in special_ids for i in ids]])
    assert got == [*TRAINED_SPECIALS, "".join(TRAINED_SPECIALS)]


@pytest.mark.problem("tokenizer")
def test_added_special_tokens_get_new_distinct_ids(student: Any) -> None:
    """Ids run 5, 8, 11, ...: "one past the count" would collide with an existing id."""
    vocab, merges = trained_scattered()
    specials = ["<|doc|>", "<|user|>", "<|assistant|>", "<|user|><|assistant|>"]
    segments = ["<|user|>", "Thou art", "<|assistant|>", "more lovely", "<|user|><|assistant|>", "<|doc|>", "!"]
    text = "".join(segments)
    (result,) = student.run(producers.encode_and_decode, vocab, merges, specials, [text])
    plain = PlainEncoder(vocab, merges, [])
    expected_pieces = []
    for segment in segments:
        expected_pieces += [segment] if segment in specials else [vocab[i].decode() for i in plain.encode(segment)]
    assert result["pieces"] == expected_pieces
    assert result["decoded"] == text
    ids = dict(zip(result["pieces"], result["ids"]))
    added = {ids["<|user|>"], ids["<|assistant|>"], ids["<|user|><|assistant|>"]}
    assert len(added) == 3
    assert not added & vocab.keys(), "an added special token reused an existing id"
    assert ids["<|doc|>"] == {t: i for i, t in vocab.items()}[b"<|doc|>"]


@pytest.mark.problem("tokenizer")
def test_empty_inputs(student: Any) -> None:
    for vocab, merges, specials in [(*gpt2(), None), (*gpt2(), [ENDOFTEXT]), (*trained_scattered(), TRAINED_SPECIALS)]:
        assert student.run(producers.encode_texts, vocab, merges, specials, [""]) == [[]]
        assert student.run(producers.decode_ids, vocab, merges, specials, [[]]) == [""]
        out = student.run(producers.encode_iterable_and_whole, vocab, merges, specials, [])
        assert out == {"iterable": [], "whole": []}
        out = student.run(producers.encode_iterable_and_whole, vocab, merges, specials, ["", "", ""])
        assert out == {"iterable": [], "whole": []}


# ----------------------------------------------------------------------- streaming


STREAM_TEXT = (
    "It was the best of times,   it was the worst of times.\r\n\r\n"
    "<|endoftext|><|endoftext|><|endoftext|> They'll say we've won; I'd agree.\n"
    "    def f(x):\n        return x  # café, naïve, e\u0301, 👩‍👩‍👧‍👦, 🇫🇷🇩🇪\n\n\n"
    "Numbers 1234567 and 3.14 — ½ — 日本語のテキスト。 <|endoftext|>\t\t\n"
    "<|endoftext|>x<|endoftext|> <|endof text|> <|endoftext| > "
)


def tiny_chunks(text: str, seed: int) -> list[str]:
    """``text`` cut at random into chunks of 0 to 3 characters."""
    rng = random.Random(seed)
    chunks, i = [], 0
    while i < len(text):
        size = rng.randint(0, 3)
        chunks.append(text[i : i + size])
        i += size
    return chunks


@pytest.mark.problem("tokenizer")
@pytest.mark.parametrize("seed", [0, 1])
def test_encode_iterable_over_tiny_chunks(student: Any, seed: int) -> None:
    """Hundreds of chunks of 0-3 characters cut every special token, contraction, whitespace
    run and emoji sequence somewhere; the stream ends inside something that looks like a special token."""
    vocab, merges = gpt2()
    text = STREAM_TEXT * 3 + "<|endof"
    chunks = tiny_chunks(text, seed)
    assert "".join(chunks) == text
    result = student.run(producers.encode_iterable_and_whole, vocab, merges, [ENDOFTEXT], chunks)
    expected = PlainEncoder(vocab, merges, [ENDOFTEXT]).encode(text)
    assert result["whole"] == expected
    assert result["iterable"] == expected


@pytest.mark.problem("tokenizer")
def test_encode_iterable_one_character_at_a_time_with_overlapping_specials(student: Any) -> None:
    """Specials "[SEP]" and "[SEP][SEP]", both in the vocabulary; streamed one character at a time."""
    vocab, merges = trained_scattered()
    vocab = {**vocab, 9_999: b"[SEP][SEP]"}
    specials = ["[SEP]", "[SEP][SEP]", "<|doc|>"]
    text = "a[SEP][SEP][SEP]b [SEP] [SEP[SEP]][SEP]<|doc|>[SEP][SEP]<|doc|> end [SEP][SEP" + STREAM_TEXT
    result = student.run(producers.encode_iterable_and_whole, vocab, merges, specials, list(text))
    expected = PlainEncoder(vocab, merges, specials).encode(text)
    assert expected.count(9_999) == 2
    assert result["whole"] == expected
    assert result["iterable"] == expected


@pytest.mark.problem("tokenizer")
@pytest.mark.parametrize("which", ["trained", "gpt2"])
def test_encode_iterable_boundaries_after_large_chunks(student: Any, which: str) -> None:
    """Each tricky boundary ends a chunk of ~68,000 characters, then the rest comes one
    character at a time: an implementation that gathers text into a buffer meets each boundary
    at the end of its buffer, one that encodes chunk by chunk meets it too. The stream ends
    inside a would-be special token."""
    vocab, merges = trained_scattered() if which == "trained" else gpt2()
    vocab = {**vocab, 99_999: b"[SEP][SEP]", 99_998: b"[SEP]", 99_997: b"<|doc|>"}
    specials = ["[SEP]", "[SEP][SEP]", "<|doc|>"]
    boundaries = [("[SEP", "]"), ("[SEP]", "[SEP] x"), ("[SEP][SE", "P]"), ("<|do", "c|>"), (" they'", "ll"),
                  (" you'r", "e"), ("we'v", "e"), (" Mac", "beth"), ("\n\n ", " x"), ("日本", "語"), ("cafe", "\u0301"),
                  ("👩\u200d", "💻"), ("12", "34"), ("<|doc|", ">"), ("[SEP]", "[SEP")]  # fmt: skip
    filler = "Shall I compare thee to a summer's day? " * 1700
    chunks = [piece for left, right in boundaries for piece in (filler + left, *right)]
    text = "".join(chunks)
    result = student.run(producers.encode_iterable_and_whole, vocab, merges, specials, chunks)
    expected = PlainEncoder(vocab, merges, specials).encode(text)
    assert result["whole"] == expected
    assert result["iterable"] == expected


@pytest.mark.problem("tokenizer")
def test_encode_iterable_never_cuts_a_longer_special_in_two(student: Any) -> None:
    """A whole "EE" straddles the point where a large buffer is flushed: cutting there would
    encode its first half as "E". The stream must give what encoding the whole text gives."""
    vocab, merges = gpt2()
    e = "<|endoftext|>"
    vocab = {**vocab, 99_999: (e + e).encode()}
    filler = "Shall I compare thee to a summer's day? " * 1700  # one large chunk: the buffer flushes at its end
    chunks = [filler + e + e + "<", "|endoftext|>", " and" + e + e + e]
    result = student.run(producers.encode_iterable_and_whole, vocab, merges, [e, e + e], chunks)
    expected = PlainEncoder(vocab, merges, [e, e + e]).encode("".join(chunks))
    assert result["whole"] == expected
    assert result["iterable"] == expected


@pytest.mark.problem("tokenizer")
def test_encode_iterable_over_a_file_with_a_trained_vocab(student: Any) -> None:
    vocab, merges = trained_scattered()
    result = student.run(producers.encode_file_iterable_and_whole, vocab, merges, TRAINED_SPECIALS, str(inputs.CORPUS))
    expected = PlainEncoder(vocab, merges, TRAINED_SPECIALS).encode(inputs.CORPUS.read_bytes().decode("utf-8"))
    assert result["whole"] == expected
    assert result["iterable"] == expected
