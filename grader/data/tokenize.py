"""Tokenize a split file into a flat ``uint16`` array (``.bin``), streaming in chunks.

The array holds each document's ids followed by the tokenizer's end-of-text id, in file order,
as raw little-endian ``uint16`` (read it with ``np.memmap(path, dtype=np.uint16, mode="r")``).
Any tokenizer works: GPT-2's through tiktoken (:func:`gpt2_tokenizer`), or any callable
``encode(str) -> list[int]`` wrapped by :func:`from_callable`. Vocabularies whose ids do not
fit in 16 bits are refused up front, and every chunk is checked again.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from ..errors import LmcourseError
from .corpus import SEPARATOR, read_documents
from .progress import progress_bar

log = logging.getLogger(__name__)

UINT16_IDS = 2**16  # ids 0..65535
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
GPT2_EOT = 50256


@dataclass(frozen=True)
class Tokenizer:
    """What tokenizing needs: a batch encoder, the vocabulary size, the end-of-text id."""

    name: str
    encode_batch: Callable[[list[str]], list[list[int]]]
    vocab_size: int
    eot_id: int | None


def from_callable(encode: Callable[[str], list[int]], *, vocab_size: int, eot_id: int | None = None,
                  name: str = "custom") -> Tokenizer:
    """Wrap a plain ``encode(str) -> list[int]`` (a student's BPE, a toy) as a :class:`Tokenizer`."""
    return Tokenizer(name, lambda texts: [list(encode(t)) for t in texts], vocab_size, eot_id)


def gpt2_tokenizer(folder: Path | None = None) -> Tokenizer:
    """GPT-2's tokenizer through tiktoken.

    With ``folder`` (the output of ``prepare("gpt2-tokenizer")``) the ranks are read from its
    ``gpt2.tiktoken`` and nothing touches the network or tiktoken's cache; without, this is
    ``tiktoken.get_encoding("gpt2")`` (which needs ``TIKTOKEN_CACHE_DIR`` or a network).
    """
    try:
        import tiktoken
    except ImportError:
        raise LmcourseError("Tokenizing with GPT-2 needs the 'tiktoken' package: pip install tiktoken.") from None
    if folder is None:
        encoding = tiktoken.get_encoding("gpt2")
    else:
        ranks_file = folder / "gpt2.tiktoken"
        if not ranks_file.exists():
            raise LmcourseError(f"{ranks_file} does not exist; run `lmcourse data prepare gpt2-tokenizer` first.")
        encoding = tiktoken.Encoding(
            name="gpt2",
            pat_str=GPT2_PATTERN,
            mergeable_ranks=read_tiktoken_ranks(ranks_file),
            special_tokens={SEPARATOR: GPT2_EOT},
            explicit_n_vocab=GPT2_EOT + 1,
        )
    threads = max(1, min(8, os.cpu_count() or 1))
    return Tokenizer(
        "gpt2",
        lambda texts: encoding.encode_ordinary_batch(texts, num_threads=threads),
        encoding.n_vocab,
        encoding.eot_token,
    )


def read_tiktoken_ranks(path: Path) -> dict[bytes, int]:
    """A ``.tiktoken`` file (``base64-token rank`` per line) as tiktoken's mergeable ranks."""
    ranks: dict[bytes, int] = {}
    for line in path.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


class TokenizedFile(BaseModel):
    path: str
    tokenizer: str
    tokens: int
    documents: int
    bytes: int
    sha256: str


def check_vocab(vocab_size: int) -> None:
    if vocab_size > UINT16_IDS:
        raise LmcourseError(
            f"A vocabulary of {vocab_size:,} tokens does not fit in uint16 .bin files (at most {UINT16_IDS:,} ids)."
        )


def _batches(path: Path, batch_bytes: int) -> Iterator[tuple[list[str], int]]:
    batch: list[str] = []
    size = 0
    for doc in read_documents(path):
        batch.append(doc)
        size += len(doc.encode("utf-8")) + len(SEPARATOR) + 2
        if size >= batch_bytes:
            yield batch, size
            batch, size = [], 0
    if batch:
        yield batch, size


def tokenize_file(src: Path, dst: Path, tokenizer: Tokenizer, *, progress: bool = False,
                  batch_bytes: int = 1 << 20) -> TokenizedFile:
    """Tokenize the documents of ``src`` (a split file) into ``dst`` as ``uint16``."""
    import numpy as np  # only tokenizing needs it; `lmcourse data list` must not

    check_vocab(tokenizer.vocab_size)
    if not src.exists():
        raise LmcourseError(f"Cannot tokenize {src}: the file does not exist.")
    digest = hashlib.sha256()
    tokens = documents = 0
    tmp = dst.with_name(f".{dst.name}.partial")
    try:
        with open(tmp, "wb") as out, progress_bar(f"tokenizing {src.name}", src.stat().st_size, progress) as advance:
            for batch, size in _batches(src, batch_bytes):
                ids: list[int] = []
                for encoded in tokenizer.encode_batch(batch):
                    ids.extend(encoded)
                    if tokenizer.eot_id is not None:
                        ids.append(tokenizer.eot_id)
                array = np.asarray(ids, dtype=np.int64)
                if array.size and (array.min() < 0 or array.max() >= UINT16_IDS):
                    raise LmcourseError(
                        f"Tokenizer {tokenizer.name} produced id {int(array.max())}, which does not fit in uint16."
                    )
                data = array.astype("<u2").tobytes()
                out.write(data)
                digest.update(data)
                tokens += array.size
                documents += len(batch)
                advance(size)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("tokenized %s: %d documents, %d tokens -> %s", src, documents, tokens, dst)
    return TokenizedFile(path=dst.name, tokenizer=tokenizer.name, tokens=tokens, documents=documents,
                         bytes=tokens * 2, sha256=digest.hexdigest())
