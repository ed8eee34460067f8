"""Documents -> deterministic train/valid text files separated by ``<|endoftext|>``.

The split depends on nothing but a document's own text: it goes to ``valid`` iff
``int(sha256(text)[:8], 16) / 2**32 < valid_fraction``. Adding, removing or reordering other
documents never moves it, and two runs over the same sources write byte-identical files.

File format: each document, cleaned (:func:`clean`), followed by ``"\\n<|endoftext|>\\n"``.
:func:`read_documents` gives them back.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self

from ..errors import LmcourseError

SEPARATOR = "<|endoftext|>"
SPLIT_RULE = "valid iff int(sha256(utf8(document))[:8], 16) / 2**32 < valid_fraction"
SPLITS = ("train", "valid")
_TERMINATOR = f"\n{SEPARATOR}\n"
_BLANK_RUNS = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


@dataclass(frozen=True, slots=True)
class Document:
    """One document: the source it came from, an id unique within that source, and its text."""

    source: str
    id: str
    text: str


def clean(text: str) -> str:
    """NFC, ``\\n`` line ends, no trailing spaces, at most one blank line in a row, stripped."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _TRAILING_SPACE.sub("\n", text)
    return _BLANK_RUNS.sub("\n\n", text).strip()


def goes_to_valid(text: str, valid_fraction: float) -> bool:
    """The split rule: a stable pseudo-random draw from the document's own sha256."""
    head = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return int(head, 16) / 2**32 < valid_fraction


@dataclass
class SplitCounts:
    documents: int = 0
    bytes: int = 0


@dataclass
class _Output:
    path: Path
    tmp: Path
    handle: BinaryIO
    digest: Any = field(default_factory=hashlib.sha256)
    counts: SplitCounts = field(default_factory=SplitCounts)


class SplitWriter:
    """Writes ``train.txt`` and ``valid.txt`` in ``folder``, counting per split and per source.

    Files appear under their final names only when the writer closes without an error.
    """

    def __init__(self, folder: Path, valid_fraction: float) -> None:
        self.folder = folder
        self.valid_fraction = valid_fraction
        self.by_source: dict[str, dict[str, SplitCounts]] = {}
        self._outputs: dict[str, _Output] = {}

    def __enter__(self) -> Self:
        self.folder.mkdir(parents=True, exist_ok=True)
        for split in SPLITS:
            path = self.folder / f"{split}.txt"
            tmp = path.with_name(f".{path.name}.partial")
            self._outputs[split] = _Output(path, tmp, open(tmp, "wb"))
        return self

    def add(self, doc: Document) -> str | None:
        """Write ``doc`` to its split and return the split's name (None for an empty document)."""
        text = clean(doc.text)
        if not text:
            return None
        if SEPARATOR in text:
            raise LmcourseError(f"Document {doc.source}/{doc.id} contains the separator {SEPARATOR}.")
        split = "valid" if goes_to_valid(text, self.valid_fraction) else "train"
        data = (text + _TERMINATOR).encode("utf-8")
        out = self._outputs[split]
        out.handle.write(data)
        out.digest.update(data)
        for counts in (out.counts, self.by_source.setdefault(doc.source, {s: SplitCounts() for s in SPLITS})[split]):
            counts.documents += 1
            counts.bytes += len(data)
        return split

    @property
    def total_bytes(self) -> int:
        return sum(o.counts.bytes for o in self._outputs.values())

    def counts(self, split: str) -> SplitCounts:
        return self._outputs[split].counts

    def sha256(self, split: str) -> str:
        return str(self._outputs[split].digest.hexdigest())

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for out in self._outputs.values():
            out.handle.close()
            if kind is None:
                os.replace(out.tmp, out.path)
            else:
                out.tmp.unlink(missing_ok=True)


def read_documents(path: Path) -> Iterator[str]:
    """The documents of a split file written by :class:`SplitWriter`, in order."""
    pending = ""
    with open(path, encoding="utf-8", newline="") as fh:
        for block in iter(lambda: fh.read(1 << 20), ""):
            pending += block
            *done, pending = pending.split(SEPARATOR)
            for text in done:
                if text.strip("\n"):
                    yield text.strip("\n")
    if pending.strip("\n"):
        yield pending.strip("\n")
