"""The codec between the grader and its sandboxed worker: packed containers, hostile frames, the memo.

Large containers travel packed (one pass in C instead of a Python call per item); these tests
hold the packed forms to the same contract as the item-by-item ones: the value comes back with
the same types, and a frame a hostile worker made up is refused or fails only its own decode.
"""

from __future__ import annotations

import json
import math
import socket
import threading
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pytest
import torch

from lmcourse.grader.grading.worker import wire
from lmcourse.grader.grading.worker.wire import BytesMemo, WireError

#: A vocabulary and merges shaped like GPT-2's (the tokenizer tests send both with every call).
VOCAB = {i: bytes([i % 256]) * (1 + i % 7) for i in range(5000)}
MERGES = [(bytes([i % 256]), bytes([(7 * i) % 256]) * 2) for i in range(5000)]


def through_json(value: Any, memo: BytesMemo | None = None) -> Any:
    """``value`` encoded, sent as JSON text and blobs, and decoded again."""
    blobs: list[bytes] = []
    tree = json.loads(json.dumps(wire.encode(value, blobs), allow_nan=False))
    return wire.decode(tree, blobs, memo)


def same(a: Any, b: Any) -> bool:
    """Equal, and of the very same types all the way down (1 is not 1.0 is not True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(k, j) and same(a[k], b[j]) for k, j in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


VALUES: dict[str, Any] = {
    "ints": list(range(-50, 50)),
    "ints past 2**53": [2**53, -(2**53), 2**60, 1, 2, 3, 4, 5],
    "floats with nan and inf": [0.5, math.nan, math.inf, -math.inf, 1e300, -0.0, 2.0, 3.0],
    "ints, floats and bools mixed": [1, 1.0, True, 0, 0.0, False, 2, 2.5, None],
    "strings and None": ["a", None, "", "é", "\x00", "b", "c", "d"],
    "bytes": [bytes([i]) * i for i in range(40)],
    "bytes with a bytearray": [b"a", b"b", bytearray(b"c"), b"d", b"e", b"f", b"g", b"h"],
    "tuple of bytes": tuple(b"xy" for _ in range(9)),
    "pairs of bytes": MERGES,
    "pairs of ints": [(i, -i) for i in range(20)],
    "1-tuples": [(i,) for i in range(20)],
    "rows of unequal width": [(1, 2), (3,), (4, 5), (6, 7), (8, 9), (1, 2), (3, 4), (5, 6)],
    "empty tuples": [()] * 10,
    "nested rows": [((1, 2), (b"a",))] * 10,
    "vocab": VOCAB,
    "dict of lists": {str(i): [i, i + 1] for i in range(20)},
    "dict with tuple keys": {(i, i + 1): i for i in range(20)},
    "small dict": {"a": 1, 2: b"b"},
    "list of lists": [[i] * i for i in range(12)],
    "paths": [PurePosixPath(f"/x/{i}") for i in range(9)],
    "bools": [True, False] * 5,
}


@pytest.mark.parametrize("name", VALUES)
def test_values_come_back_with_their_types(name: str) -> None:
    value = VALUES[name]
    back = through_json(value)
    if isinstance(value, list) and any(type(v) is bytearray for v in value):
        value = [bytes(v) for v in value]  # bytearrays come back as bytes, as they always did
    if name == "paths":
        value = [type(back[0])(v) for v in value]  # a path comes back as this platform's Path
    assert same(back, value)


def test_tensors_and_arrays_inside_packed_containers() -> None:
    value: dict[Any, Any] = {i: torch.arange(i, dtype=torch.float32) for i in range(10)} | {"a": np.arange(5)}
    back = through_json(value)
    assert list(back) == list(value)
    assert all(torch.equal(back[i], value[i]) for i in range(10))
    assert np.array_equal(back["a"], value["a"])


def test_large_containers_travel_as_a_few_blobs() -> None:
    # The point of packing: a vocabulary is one blob of bytes and one of lengths, not 5000 blobs.
    blobs: list[bytes] = []
    tree = wire.encode([VOCAB, MERGES], blobs)
    assert len(blobs) == 6  # vocab values, merges' two columns: data and lengths each
    assert "__bytes__" not in json.dumps(tree)


def test_a_student_who_changes_an_input_never_changes_the_next_call() -> None:
    memo = BytesMemo(64 << 20)
    tokens = list(VOCAB.values())
    first = through_json([VOCAB, MERGES, tokens], memo)
    assert memo.used > 0
    first[0][1] = b"changed"
    first[1][0] = (b"changed", b"too")
    first[2][0] = b"changed"
    first[2].append(b"more")
    second = through_json([VOCAB, MERGES, tokens], memo)  # decoded from the memo this time
    assert same(second, [VOCAB, MERGES, tokens])


def test_the_memo_stays_within_its_budget() -> None:
    memo = BytesMemo(200_000)
    lists = [[bytes([k]) * 10] * 2000 for k in range(5)]  # ~116 KB of budget each
    for items in lists:
        assert same(through_json(items, memo), items)
        assert memo.used <= memo.budget
    assert same(through_json(lists[0], memo), lists[0])  # evicted long ago: decoded afresh
    huge = [b"x" * 1000] * 300  # more than the whole budget: decoded, never kept
    before = memo.used
    assert same(through_json(huge, memo), huge)
    assert memo.used == before


HOSTILE = {
    "lengths that overrun the data": ({"__bytelist__": [0, 1]}, [b"abc", (10).to_bytes(4, "little")], "do not match"),
    "lengths that leave data over": ({"__bytelist__": [0, 1]}, [b"abcdef", (2).to_bytes(4, "little")], "do not match"),
    "a torn length": ({"__bytelist__": [0, 1]}, [b"abc", b"\x03\x00\x00"], "torn"),
    "a missing blob": ({"__bytelist__": [0, 7]}, [b"abc"], "missing blob"),
    "a bytelist that is no pair": ({"__bytelist__": 0}, [b""], "malformed"),
    "columns of different lengths": ({"__rows__": [[1, 2], [3]]}, [], "different lengths"),
    "rows without columns": ({"__rows__": []}, [], "malformed"),
    "a column that is no list": ({"__rows__": [{"__int__": "5"}, [1]]}, [], "not a list"),
    "rows of one column": ({"__rows__": [[1, 2, 3]]}, [], "fewer than two"),
    "a table of three columns": ({"__table__": [[1], [2], [3]]}, [], "malformed"),
    "a table of unequal columns": ({"__table__": [[1, 2], [3]]}, [], "different lengths"),
    "a tuple that is no list": ({"__tuple__": {"__int__": "5"}}, [], "not a list"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_made_up_packed_values_are_refused(name: str) -> None:
    tree, blobs, words = HOSTILE[name]
    with pytest.raises(WireError, match=words):
        wire.decode(tree, blobs)
    with pytest.raises(WireError, match=words):
        wire.decode(tree, blobs, BytesMemo(1 << 20))


def test_an_unhashable_key_in_a_packed_dict_fails_its_decode_only() -> None:
    with pytest.raises(TypeError, match="unhashable"):
        wire.decode({"__table__": [[[1], [2]], [1, 2]]}, [])


def test_a_frame_with_packed_values_crosses_a_real_socket() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    received: list[Any] = []
    reader = threading.Thread(target=lambda: received.append(wire.receive(theirs)))
    reader.start()
    blobs: list[bytes] = []
    wire.send(ours, {"op": "call", "args": wire.encode([VOCAB, MERGES, "text"], blobs)}, blobs)
    reader.join(30)
    header, got = received[0]
    assert header["op"] == "call"
    assert same(wire.decode(header["args"], got, BytesMemo(1 << 20)), [VOCAB, MERGES, "text"])
    ours.close()
    theirs.close()
