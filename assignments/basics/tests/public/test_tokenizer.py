"""The BPE tokenizer: exact GPT-2 ids, special tokens, round trips, streaming, decoding errors.

``fixtures/gpt2_vocab.json`` and ``fixtures/gpt2_merges.txt`` are GPT-2's ``encoder.json`` and
``vocab.bpe``; ``fixtures/tok_gpt2_expected.json`` holds the ids ``tiktoken`` gives varied
texts with them (made by ``make_tokenizer_fixtures.py``, so tiktoken is not needed here).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests import producers

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
GPT2_VOCAB = FIXTURES / "gpt2_vocab.json"
GPT2_MERGES = FIXTURES / "gpt2_merges.txt"
CORPUS = FIXTURES / "tok_corpus.txt"
ENDOFTEXT = "<|endoftext|>"

Vocab = dict[int, bytes]
Merges = list[tuple[bytes, bytes]]


@cache
def gpt2() -> tuple[Vocab, Merges]:
    """GPT-2's vocabulary and merges as bytes.

    The files spell every byte as one printable character: bytes 33-126, 161-172 and 174-255
    stand for themselves, the remaining 68 bytes take the characters 256, 257, ... in order.
    """
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    unprintable = [b for b in range(256) if b not in printable]
    char_to_byte = {chr(b): b for b in printable} | {chr(256 + n): b for n, b in enumerate(unprintable)}

    def as_bytes(word: str) -> bytes:
        return bytes(char_to_byte[c] for c in word)

    encoder = json.loads(GPT2_VOCAB.read_text(encoding="utf-8"))
    rows = GPT2_MERGES.read_text(encoding="utf-8").splitlines()[1:]  # the first is "#version: 0.2"
    merges = [(as_bytes(a), as_bytes(b)) for a, b in (row.split() for row in rows if row)]
    return {token_id: as_bytes(word) for word, token_id in encoder.items()}, merges


@cache
def expected_gpt2_ids() -> dict[str, list[dict[str, Any]]]:
    return json.loads((SNAPSHOTS / "tok_gpt2_expected.json").read_text(encoding="utf-8"))


@cache
def trained() -> tuple[Vocab, Merges]:
    """The reference's vocabulary and merges on the small corpus (special token at id 0)."""
    data = json.loads((SNAPSHOTS / "tok_train_expected.json").read_text(encoding="utf-8"))
    vocab = {int(i): bytes.fromhex(token) for i, token in data["vocab"].items()}
    return vocab, [(bytes.fromhex(a), bytes.fromhex(b)) for a, b in data["merges"]]


def byte_vocab() -> Vocab:
    """The 256 single bytes, byte b at id b; with no merges every byte is its own token."""
    return {b: bytes([b]) for b in range(256)}


UNICODE_TEXTS = [
    "",
    "plain ASCII, with   spaces\tand\ttabs\n\nand blank lines\n",
    "héllo wörld — naïve café, ½ ∑ ∞ “quotes”",
    "Кошка спит. Η θάλασσα. 今日はいい天気。 我们见面。 القمر جميل. बच्चे खेल रहे हैं।",
    "emoji 🙂👩‍👩‍👧‍👦🇫🇷 ❤️ and combining e\u0301 and \u00a0nbsp\u3000",
    "control \x00\x01\x7f bytes and a lone surrogate-free \U0010ffff max code point",
    "I'll, you've, they're, DON'T, o'clock, 'tis 12345 3.14",
]


@pytest.mark.problem("tokenizer")
def test_encode_matches_gpt2_ids(student: Any) -> None:
    cases = expected_gpt2_ids()["ordinary"]
    vocab, merges = gpt2()
    got = student.run(producers.encode_texts, vocab, merges, None, [case["text"] for case in cases])
    for case, ids in zip(cases, got):
        assert ids == case["ids"], f"ids differ for {case['text'][:60]!r}"


@pytest.mark.problem("tokenizer")
def test_encode_matches_gpt2_ids_with_endoftext(student: Any) -> None:
    cases = expected_gpt2_ids()["with_endoftext"]
    vocab, merges = gpt2()
    got = student.run(producers.encode_texts, vocab, merges, [ENDOFTEXT], [case["text"] for case in cases])
    for case, ids in zip(cases, got):
        assert ids == case["ids"], f"ids differ for {case['text'][:60]!r}"


@pytest.mark.problem("tokenizer")
def test_from_files_reads_gpt2_formats(student: Any) -> None:
    cases = expected_gpt2_ids()["ordinary"] + expected_gpt2_ids()["with_endoftext"]
    texts = [case["text"] for case in cases]
    got = student.run(producers.encode_texts_from_files, str(GPT2_VOCAB), str(GPT2_MERGES), [ENDOFTEXT], texts)
    for case, ids in zip(cases, got):
        assert ids == case["ids"], f"ids differ for {case['text'][:60]!r}"


@pytest.mark.problem("tokenizer")
@pytest.mark.parametrize("which", ["gpt2", "trained", "bytes only"])
def test_round_trip(student: Any, which: str) -> None:
    vocab, merges = {"gpt2": gpt2, "trained": trained, "bytes only": lambda: (byte_vocab(), [])}[which]()
    texts = UNICODE_TEXTS + [ENDOFTEXT.join(UNICODE_TEXTS)]
    results = student.run(producers.encode_and_decode, vocab, merges, [ENDOFTEXT], texts)
    for text, result in zip(texts, results):
        assert result["decoded"] == text
    if which == "bytes only":  # no merges: one id per byte, except the special token
        assert results[2]["ids"] == list(texts[2].encode())


@pytest.mark.problem("tokenizer")
def test_merges_apply_by_rank_not_by_id(student: Any) -> None:
    """Merges (b, c), then (a, b), then (a, bc), with ids that do not follow that order.

    "abc" must merge (b, c) first, since it ranks first, and then (a, bc): one token. Merging
    (a, b) first would leave "ab" + "c". In "aaaa" with the merge (a, a), the pairs are merged
    left to right without overlap: "aa" + "aa".
    """
    vocab = {1000 + b: bytes([b]) for b in range(256)} | {7: b"ab", 8: b"bc", 5: b"abc", 9: b"aa"}
    merges = [(b"b", b"c"), (b"a", b"b"), (b"a", b"bc"), (b"a", b"a")]
    a, c = 1000 + ord("a"), 1000 + ord("c")
    got = student.run(producers.encode_texts, vocab, merges, None, ["abc", "ab", "abab", "cab", "aaaa", "aaa"])
    assert got == [[5], [7], [7, 7], [c, 7], [9, 9], [9, a]]


@pytest.mark.problem("tokenizer")
def test_overlapping_special_tokens_match_longest_first(student: Any) -> None:
    double = ENDOFTEXT + ENDOFTEXT
    vocab, merges = gpt2()
    text = f"Hello{double}world{ENDOFTEXT}!{double}{ENDOFTEXT}"
    # The shorter token is listed first: matching must still prefer the longer one.
    (result,) = student.run(producers.encode_and_decode, vocab, merges, [ENDOFTEXT, double], [text])
    assert result["pieces"] == ["Hello", double, "world", ENDOFTEXT, "!", double, ENDOFTEXT]
    assert result["decoded"] == text
    ids = result["ids"]
    assert ids[3] == ids[6] == 50256  # GPT-2's own id for <|endoftext|>
    assert ids[1] == ids[5] and ids[1] not in vocab  # the double token was added with a new id


@pytest.mark.problem("tokenizer")
def test_missing_special_tokens_are_added_to_the_vocab(student: Any) -> None:
    vocab, merges = trained()
    specials = ["<|pad|>", "<|user|>"]
    (result,) = student.run(producers.encode_and_decode, vocab, merges, specials, ["a<|user|>b<|pad|><|pad|>"])
    assert result["pieces"] == ["a", "<|user|>", "b", "<|pad|>", "<|pad|>"]
    user, pad = result["ids"][1], result["ids"][3]
    assert user != pad and user not in vocab and pad not in vocab and result["ids"][4] == pad


@pytest.mark.problem("tokenizer")
def test_special_tokens_are_matched_before_pre_tokenizing(student: Any) -> None:
    """Without special tokens, "<|endoftext|>" is ordinary text made of several tokens."""
    vocab, merges = gpt2()
    text = f"a {ENDOFTEXT} b"
    plain = student.run(producers.encode_texts, vocab, merges, None, [text])[0]
    special = student.run(producers.encode_texts, vocab, merges, [ENDOFTEXT], [text])[0]
    assert 50256 not in plain and len(plain) > 4
    assert special.count(50256) == 1 and len(special) == 4


@pytest.mark.problem("tokenizer")
def test_encode_iterable_over_a_file_matches_encode(student: Any) -> None:
    """The corpus has indented lines: encoding line by line would split "\\n  " differently."""
    vocab, merges = gpt2()
    result = student.run(producers.encode_file_iterable_and_whole, vocab, merges, [ENDOFTEXT], str(CORPUS))
    assert len(result["whole"]) > 10_000
    assert result["iterable"] == result["whole"]


@pytest.mark.problem("tokenizer")
@pytest.mark.parametrize("chunk_size", ["small", "large"])
def test_encode_iterable_handles_tokens_split_across_chunks(student: Any, chunk_size: str) -> None:
    """Chunk boundaries fall inside a word, a contraction, a whitespace run, a number and
    (overlapping) special tokens; the ids must be those of the whole text.

    "large" puts ~70,000 characters of filler before each boundary, so that an implementation
    gathering text into a buffer still meets each boundary at the end of its buffer.
    """
    vocab, merges = gpt2()
    boundaries = [("Hello wor", "ld"), ("<|endof", "text|>"), ("I'l", "l go"), ("we'v", "e"), (" ", "  now"),
                  ("12", "34\n"), ("\n", "  x"), ("<|endoftext|", ">"), ("<|endoftext|>", "<|endoftext|>"),
                  ("<|endoftext|><|endo", "ftext|>"), ("é", "é"), ("<", "|end"), ("of", "")]
    filler = "It was the best of times, it was the worst of times. " * 1300 if chunk_size == "large" else ""
    chunks = [chunk for left, right in boundaries for chunk in (filler + left, right)]
    specials = [ENDOFTEXT, ENDOFTEXT + ENDOFTEXT]
    result = student.run(producers.encode_iterable_and_whole, vocab, merges, specials, chunks)
    assert result["iterable"] == result["whole"]


@pytest.mark.problem("tokenizer")
def test_encode_iterable_streams(student: Any) -> None:
    """The first ids must come out long before the input ends: memory must not grow with it."""
    vocab, merges = gpt2()
    line, num_lines = "The quick brown fox jumps over the lazy dog.\n", 100_000  # 4.5 MB
    pulled = student.run(producers.lines_read_before_first_id, vocab, merges, [ENDOFTEXT], line, num_lines)
    assert pulled < num_lines // 10, f"encode_iterable read {pulled:,} of {num_lines:,} lines before its first id"


@pytest.mark.problem("tokenizer")
def test_decode_replaces_invalid_utf8(student: Any) -> None:
    vocab, merges = trained()  # bytes at ids 1..256 (id 0 is <|endoftext|>)
    byte_id = {vocab[i][0]: i for i in range(1, 257)}
    e_acute = "é".encode()  # two bytes: c3 a9
    id_lists = [
        [byte_id[0xFF]],  # never valid in UTF-8
        [byte_id[e_acute[0]]],  # a character cut short
        [byte_id[ord("a")], byte_id[e_acute[0]], byte_id[ord("b")]],
        [byte_id[e_acute[0]], byte_id[e_acute[1]]],  # both halves: valid again
        [],
    ]
    got = student.run(producers.decode_ids, vocab, merges, [ENDOFTEXT], id_lists)
    assert got == ["\ufffd", "\ufffd", "a\ufffdb", "é", ""]


@pytest.mark.problem("tokenizer")
def test_decode_unknown_ids_gives_replacement_characters(student: Any) -> None:
    vocab, merges = gpt2()
    hi, bang = 17250, 0  # "Hi", "!"
    got = student.run(producers.decode_ids, vocab, merges, None, [[hi, 10**6, bang], [len(vocab) + 5]])
    assert got == ["Hi\ufffd!", "\ufffd"]
