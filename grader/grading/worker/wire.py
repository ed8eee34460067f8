"""Frames and the plain-data codec between the grader and a sandboxed worker.

A message is one frame: an 8-byte big-endian length, then a JSON header, a newline, and the
binary blobs the header points into. Values are plain data only: None, bools, ints, floats
(NaN and infinities included), strings, bytes, lists, tuples, dicts, paths, NumPy arrays (``.npy``
bytes, ``allow_pickle=False``) and torch tensors (safetensors bytes). Decoding never unpickles, so
a hostile worker can hand back nothing but data: no object with a rigged ``__eq__``, no code.
"""

from __future__ import annotations

import io
import json
import math
import socket
import struct
import time
from pathlib import PurePath
from typing import Any

HEADER = struct.Struct(">Q")
MAX_FRAME = 1 << 30  # a frame larger than this is refused before reading it


class WireError(Exception):
    """A frame or value that breaks the protocol."""


# ---- frames ----

def send(sock: socket.socket, header: dict[str, Any], blobs: list[bytes]) -> None:
    sizes = [len(b) for b in blobs]
    head = json.dumps({**header, "_blobs": sizes}, allow_nan=False).encode() + b"\n"
    body = b"".join([head, *blobs])
    sock.sendall(HEADER.pack(len(body)) + body)


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
        return value if abs(value) < 2**53 else {"__int__": str(value)}
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"__bytes__": _blob(bytes(value), blobs)}
    if isinstance(value, list):
        return [encode(v, blobs) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, blobs) for v in value]}
    if isinstance(value, dict):
        return {"__dict__": [[encode(k, blobs), encode(v, blobs)] for k, v in value.items()]}
    if isinstance(value, PurePath):
        return {"__path__": str(value)}
    kind = type(value).__module__.split(".")[0]
    if kind == "torch":
        return _encode_torch(value, blobs)
    if kind == "numpy":
        return _encode_numpy(value, blobs)
    raise WireError(f"cannot carry a {type(value).__qualname__} across the sandbox boundary; return plain data")


def decode(tree: Any, blobs: list[bytes]) -> Any:
    """The value ``encode`` was given (tuples, dicts, arrays and tensors rebuilt)."""
    if isinstance(tree, list):
        return [decode(v, blobs) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if len(tree) != 1:
        raise WireError("malformed value")
    ((tag, payload),) = tree.items()
    if tag == "__tuple__":
        return tuple(decode(v, blobs) for v in payload)
    if tag == "__dict__":
        return {_hashable(decode(k, blobs)): decode(v, blobs) for k, v in payload}
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
