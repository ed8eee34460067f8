"""The data unit's reference survives damaged input: it counts what it skips and never crashes."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from reference.data.extract import extract_text_from_html_bytes
from reference.data.warc import ReadStats, iter_documents

pytest.importorskip("fastwarc")

FIXTURES = Path(__file__).resolve().parents[2] / "assignments" / "data" / "fixtures"
WARC = FIXTURES / "pages.warc.gz"


def read_all(path: Path) -> tuple[list[bytes], ReadStats]:
    stats = ReadStats()
    return [doc.payload for doc in iter_documents(path, stats)], stats


def test_the_fixture_warc_reads_whole():
    payloads, stats = read_all(WARC)
    assert (stats.records, stats.skipped) == (24, 0)
    assert all(p.lstrip().lower().startswith((b"<!doctype", b"<html", b"<?xml", b"<!--", b"<")) for p in payloads)


@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_a_truncated_warc_yields_the_intact_records_and_counts_the_broken_one(tmp_path, fraction):
    raw = gzip.decompress(WARC.read_bytes())
    cut = tmp_path / "cut.warc"
    cut.write_bytes(raw[: int(len(raw) * fraction)])
    payloads, stats = read_all(cut)
    whole, _ = read_all(WARC)
    assert stats.skipped == 1 and stats.errors
    assert 0 < stats.records < 24
    assert payloads == whole[: stats.records]


def test_a_truncated_gzip_warc_counts_a_skip(tmp_path):
    data = WARC.read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[: len(data) // 2])
    _, stats = read_all(cut)
    assert stats.skipped == 1 and 0 < stats.records < 24


@pytest.mark.parametrize("content", [b"", b"\x00\x01 not a warc at all \xff" * 100])
def test_empty_and_garbage_files_yield_nothing(tmp_path, content):
    path = tmp_path / "bad.warc"
    path.write_bytes(content)
    payloads, stats = read_all(path)
    assert payloads == [] and stats.records == 0


def test_binary_garbage_as_html_is_not_text():
    assert extract_text_from_html_bytes(bytes(range(256)) * 40) is None


def test_empty_html_is_empty_text():
    assert not extract_text_from_html_bytes(b"")


def test_non_utf8_html_is_decoded():
    html = "<html><head><meta charset='windows-1252'></head><body><p>Ça coûte 5 €, déjà vu.</p></body></html>"
    assert extract_text_from_html_bytes(html.encode("cp1252")).strip() == "Ça coûte 5 €, déjà vu."
