"""Frames and the plain-data codec between the grader and a sandboxed worker.

A message is one frame: an 8-byte big-endian length, then a JSON header, a newline, and the
binary blobs the header points into. Values are plain data only: None, bools, ints, floats
(NaN and infinities included), strings, bytes, lists, tuples, dicts, paths, NumPy arrays (``.npy``
bytes, ``allow_pickle=False``) and torch tensors (safetensors bytes). Decoding never unpickles, so
a hostile worker can hand back nothing but data: no object with a rigged ``__eq__``, no code.

Large containers travel packed. A GPT-2 vocabulary (50,000 ``int -> bytes``) and its merges
(50,000 pairs of bytes) cost ~0.6 s per call when every item is a Python call and a blob of its
own, and the basics tokenizer tests send them dozens of times. So a list of plain scalars goes into
the JSON as it is, a list of bytes as one blob and a blob of lengths, a list of equally long tuples
as its columns, a dict as its keys and its values: one C-level pass each instead of a call per
item (~20 ms to encode, ~10 ms to decode). The worker also keeps the byte lists it was sent
(:class:`BytesMemo`), so the same vocabulary is split into tokens once per worker, not per call.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import socket
import struct
import sys
import time
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from itertools import accumulate
from operator import itemgetter
from pathlib import PurePath
from typing import Any

HEADER = struct.Struct(">Q")
MAX_FRAME = 1 << 30  # a frame larger than this is refused before reading it
PACK_MIN = 8  # shorter containers go item by item: packing would not pay for its checks
JSON_INT = 2**53  # ints at least this large lose precision in JSON readers: sent as text
SCALARS = {str, bool, type(None)}
NUMBERS = {int, float}
CONTAINERS = {list, dict}  # the JSON types a decoded tree may nest
SIZE_TYPE, SIZE_BYTES = "I", 4  # lengths of packed bytes: little-endian uint32 (a frame is < 4 GiB)
ITEM_OVERHEAD = 48  # a short bytes object and its list slot, for BytesMemo's budget


class WireError(Exception):
    """A frame or value that breaks the protocol."""


# ---- frames ----

def send(sock: socket.socket, header: dict[str, Any], blobs: list[bytes]) -> None:
    sizes = [len(b) for b in blobs]
    head = json.dumps({**header, "_blobs": sizes}, allow_nan=False).encode() + b"\n"
    size = len(head) + sum(sizes)
    sock.sendall(b"".join([HEADER.pack(size), head, *blobs]))  # one copy, one system call


def receive(
    sock: socket.socket, max_frame: int = MAX_FRAME, deadline: float | None = None
) -> tuple[dict[str, Any], list[bytes]]:
    """One frame. ``deadline`` (a ``time.monotonic()`` value) bounds the whole frame, not each
    read: a peer that trickles bytes in cannot stretch it (``TimeoutError``)."""
    (length,) = HEADER.unpack(_read_exactly(sock, HEADER.size, deadline))
    if length > max_frame:
        raise WireError(f"frame of {length} bytes exceeds the {max_frame}-byte limit")
    body = _read_exactly(sock, length, deadline)
    newline = body.find(b"\n")
    if newline < 0:
        raise WireError("frame without a header line")
    header = json.loads(body[:newline])
    if not isinstance(header, dict) or not isinstance(header.get("_blobs"), list):
        raise WireError("frame header is not a mapping with blob sizes")
    blobs, offset = [], newline + 1
    for size in header.pop("_blobs"):
        if not isinstance(size, int) or size < 0 or offset + size > len(body):
            raise WireError("blob sizes do not match the frame")
        blobs.append(body[offset : offset + size])
        offset += size
    return header, blobs


def _read_exactly(sock: socket.socket, n: int, deadline: float | None = None) -> bytes:
    chunks, remaining = [], n
    while remaining:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the frame did not arrive in time")
            sock.settimeout(left)
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


# ---- values ----

def encode(value: Any, blobs: list[bytes]) -> Any:
    """A JSON-able tree for ``value``; binary payloads are appended to ``blobs``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) < JSON_INT else {"__int__": str(value)}
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"__bytes__": _blob(bytes(value), blobs)}
    if isinstance(value, list):
        return _encode_items(value, blobs)
    if isinstance(value, tuple):
        return {"__tuple__": _encode_items(value, blobs)}
    if isinstance(value, dict):
        if len(value) >= PACK_MIN:
            return {"__table__": [_encode_items(list(value), blobs), _encode_items(list(value.values()), blobs)]}
        return {"__dict__": [[encode(k, blobs), encode(v, blobs)] for k, v in value.items()]}
    if isinstance(value, PurePath):
        return {"__path__": str(value)}
    kind = type(value).__module__.split(".")[0]
    if kind == "torch":
        return _encode_torch(value, blobs)
    if kind == "numpy":
        return _encode_numpy(value, blobs)
    raise WireError(f"cannot carry a {type(value).__qualname__} across the sandbox boundary; return plain data")


def _encode_items(items: Sequence[Any], blobs: list[bytes]) -> Any:
    """The items of a list (or tuple): packed where their types allow it, else one by one."""
    if len(items) >= PACK_MIN:
        packed = _pack(items, blobs)
        if packed is not None:
            return packed
    return [encode(v, blobs) for v in items]


def _pack(items: Sequence[Any], blobs: list[bytes]) -> Any:
    """One packed form for ``items`` if all have the same simple shape, else None.

    Types are compared exactly (``type``, not ``isinstance``): a list holding a subclass of
    ``str`` or ``int`` (or ``bool`` beside ``int``) goes item by item.
    """
    kinds = set(map(type, items))
    if kinds <= SCALARS:
        return list(items)
    if kinds <= NUMBERS:
        if float in kinds and not all(map(math.isfinite, items)):
            return None
        if int in kinds and not (-JSON_INT < min(items) and max(items) < JSON_INT):
            return None
        return list(items)
    if kinds == {bytes}:
        return _pack_bytes(items, blobs)
    if kinds == {tuple}:
        widths = set(map(len, items))
        if len(widths) == 1 and (width := widths.pop()) >= 2:  # 1-tuples go one by one (see decode)
            # Column by column: zip(*items) would make an iterator per row, enough young objects
            # to set off a full garbage collection of the grader's heap (~150 ms) every other call.
            return {"__rows__": [_encode_items(list(map(itemgetter(i), items)), blobs) for i in range(width)]}
    return None


class BytesMemo:
    """The worker's memory of the byte lists it was sent, so a vocabulary that comes with every
    tokenizer call is split into its tokens once, not each time (bounded: least recently used
    lists go first). Each use gets a fresh list of the same (immutable) bytes: what a student's
    code does to its input never reaches the next call."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self.used = 0
        self._lists: OrderedDict[bytes, tuple[list[bytes], int]] = OrderedDict()

    def get(self, key: bytes) -> list[bytes] | None:
        hit = self._lists.get(key)
        if hit is None:
            return None
        self._lists.move_to_end(key)
        return list(hit[0])

    def put(self, key: bytes, items: list[bytes], data_bytes: int) -> None:
        cost = data_bytes + ITEM_OVERHEAD * len(items)
        if cost > self.budget:
            return
        while self.used + cost > self.budget:
            _, (_, freed) = self._lists.popitem(last=False)
            self.used -= freed
        self._lists[key] = (list(items), cost)
        self.used += cost


def decode(tree: Any, blobs: list[bytes], memo: BytesMemo | None = None) -> Any:
    """The value ``encode`` was given (tuples, dicts, arrays and tensors rebuilt)."""
    if isinstance(tree, list):
        if not set(map(type, tree)) & CONTAINERS:  # plain scalars (JSON has no other types): as they are
            return tree
        return [decode(v, blobs, memo) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if len(tree) != 1:
        raise WireError("malformed value")
    ((tag, payload),) = tree.items()
    if tag == "__tuple__":
        return tuple(_decode_list(payload, blobs, memo))
    if tag == "__dict__":
        return {_hashable(decode(k, blobs, memo)): decode(v, blobs, memo) for k, v in payload}
    if tag == "__table__":
        keys, values = _columns(payload, blobs, memo, 2)
        return dict(zip(keys, values))  # an unhashable key raises TypeError, as in {[]: 1}
    if tag == "__rows__":
        columns = _columns(payload, blobs, memo)
        if len(columns) < 2:
            # Never sent (1-tuples go one by one). From a hostile worker, one column of 1-tuples
            # would turn each 2-byte item of its frame into a 56-byte tuple on the grader.
            raise WireError("packed rows of fewer than two columns")
        return list(zip(*columns))
    if tag == "__bytelist__":
        return _unpack_bytes(payload, blobs, memo)
    if tag == "__int__":
        return int(payload)
    if tag == "__float__":
        return float(payload)
    if tag == "__path__":
        from pathlib import Path

        return Path(payload)
    if tag == "__bytes__":
        return _get_blob(blobs, payload)
    if tag == "__ndarray__":
        import numpy as np

        return np.load(io.BytesIO(_get_blob(blobs, payload)), allow_pickle=False)
    if tag == "__tensor__":
        from safetensors.torch import load

        return load(_get_blob(blobs, payload))["t"]
    raise WireError(f"unknown value tag {tag!r}")


def _decode_list(tree: Any, blobs: list[bytes], memo: BytesMemo | None) -> list[Any]:
    items = decode(tree, blobs, memo)
    if not isinstance(items, list):
        raise WireError("a packed sequence that is not a list")
    return items


def _columns(payload: Any, blobs: list[bytes], memo: BytesMemo | None, count: int | None = None) -> list[list[Any]]:
    """The equally long columns of a packed dict (keys, values) or list of tuples."""
    if not isinstance(payload, list) or not payload or (count is not None and len(payload) != count):
        raise WireError("malformed packed columns")
    columns = [_decode_list(column, blobs, memo) for column in payload]
    if len(set(map(len, columns))) != 1:
        raise WireError("packed columns of different lengths")
    return columns


def _pack_bytes(items: Sequence[bytes], blobs: list[bytes]) -> Any:
    sizes = _little_endian(array(SIZE_TYPE, map(len, items)))
    return {"__bytelist__": [_blob(b"".join(items), blobs), _blob(sizes.tobytes(), blobs)]}


def _unpack_bytes(payload: Any, blobs: list[bytes], memo: BytesMemo | None) -> list[bytes]:
    if not isinstance(payload, list) or len(payload) != 2:
        raise WireError("malformed packed bytes")
    data, packed_sizes = _get_blob(blobs, payload[0]), _get_blob(blobs, payload[1])
    key = b""
    if memo is not None:
        digest = hashlib.blake2b(len(packed_sizes).to_bytes(8, "little"), digest_size=20)
        digest.update(packed_sizes)
        digest.update(data)
        key = digest.digest()
        if (items := memo.get(key)) is not None:
            return items
    if len(packed_sizes) % SIZE_BYTES:
        raise WireError("packed bytes with a torn length")
    sizes = _little_endian(array(SIZE_TYPE, packed_sizes))
    if sum(sizes) != len(data):
        raise WireError("packed bytes do not match their lengths")
    ends = list(accumulate(sizes))
    items = list(map(data.__getitem__, map(slice, [0, *ends[:-1]], ends)))
    if memo is not None:
        memo.put(key, items, len(data))
    return items


def _little_endian(sizes: array[int]) -> array[int]:
    """Lengths travel little-endian: swapped in place on a big-endian host."""
    if sys.byteorder != "little":
        sizes.byteswap()
    return sizes


def _hashable(key: Any) -> Any:
    if isinstance(key, list):
        raise WireError("a list cannot be a dict key")
    return key


def _blob(data: bytes, blobs: list[bytes]) -> int:
    blobs.append(data)
    return len(blobs) - 1


def _get_blob(blobs: list[bytes], index: Any) -> bytes:
    if not isinstance(index, int) or not 0 <= index < len(blobs):
        raise WireError("value points to a missing blob")
    return blobs[index]


def _encode_torch(value: Any, blobs: list[bytes]) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        from safetensors.torch import save

        tensor = value.detach().to("cpu").contiguous()
        return {"__tensor__": _blob(save({"t": tensor}), blobs)}
    if isinstance(value, (torch.dtype, torch.device, torch.Size)):
        return str(value) if not isinstance(value, torch.Size) else {"__tuple__": list(value)}
    raise WireError(f"cannot carry a {type(value).__qualname__} across the sandbox boundary; return plain data")


def _encode_numpy(value: Any, blobs: list[bytes]) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise WireError("object arrays cannot cross the sandbox boundary")
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        return {"__ndarray__": _blob(buffer.getvalue(), blobs)}
    if isinstance(value, np.generic):
        return encode(value.item(), blobs)
    raise WireError(f"cannot carry a {type(value).__qualname__} across the sandbox boundary; return plain data")
