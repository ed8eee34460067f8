"""Reading web archives: WARC responses and WET conversions, tolerant of damaged files.

Common Crawl ships pages as WARC (the HTTP responses) and WET (the extracted text). Real crawl
files are sometimes truncated mid-record; a reader that raises on the first bad byte loses the
whole file, so this one stops at the damage and counts what it could not read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fastwarc.warc import ArchiveIterator, WarcRecordType


@dataclass(frozen=True)
class Document:
    """One page: where it came from and its payload (HTML bytes for WARC, UTF-8 text for WET)."""

    url: str
    payload: bytes


@dataclass
class ReadStats:
    """What a reader saw: records read, and records (or trailing bytes) it had to skip."""

    records: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


def iter_documents(path: str | Path, stats: ReadStats | None = None) -> Iterator[Document]:
    """The response (WARC) or conversion (WET) records of ``path``, gzip or plain.

    A record whose body cannot be read in full (a truncated file) is skipped and counted in
    ``stats.skipped``; reading stops there, because nothing after a broken record can be trusted.
    """
    stats = stats if stats is not None else ReadStats()
    wanted = WarcRecordType.response | WarcRecordType.conversion
    try:
        with open(path, "rb") as stream:
            # parse_http=False: the block comes back whole, so its length can be checked
            # against Content-Length, which is how a truncated record gives itself away.
            for record in ArchiveIterator(stream, record_types=wanted, parse_http=False):
                block = record.reader.read()
                if len(block) < record.content_length:
                    stats.skipped += 1
                    stats.errors.append(f"{path}: record {record.record_id} is truncated")
                    return
                stats.records += 1
                yield Document(record.headers.get("WARC-Target-URI", ""), _payload(record.record_type, block))
    except OSError as err:  # fastwarc's error for undecodable compression or headers
        stats.skipped += 1
        stats.errors.append(f"{path}: {err}")


def _payload(record_type: WarcRecordType, block: bytes) -> bytes:
    """The body of a response record (HTTP headers cut off at the first blank line); WET text as is."""
    if record_type != WarcRecordType.response:
        return block
    _headers, separator, body = block.partition(b"\r\n\r\n")
    return body if separator else b""
