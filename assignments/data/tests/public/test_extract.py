"""HTML to text on real news pages (``fixtures/pages.warc.gz``), other encodings and junk."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastwarc.warc import ArchiveIterator, WarcRecordType
from resiliparse.extract.html2text import extract_plain_text

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def warc_pages() -> dict[str, bytes]:
    """URL -> HTML bytes of every response in the fixture WARC (read here, on the trusted side)."""
    with open(FIXTURES / "pages.warc.gz", "rb") as stream:
        return {r.headers["WARC-Target-URI"]: r.reader.read()
                for r in ArchiveIterator(stream, record_types=WarcRecordType.response)}


PAGES = warc_pages()


@pytest.mark.problem("extract_text")
@pytest.mark.parametrize("url", ["http://news.example/spanish_article.html", "http://news.example/thai_article.html",
                                 "http://news.example/cnn_article.html"])
def test_extracts_what_resiliparse_extracts_from_utf8_pages(student, url):
    html = PAGES[url]
    assert student.run_extract_text_from_html_bytes(html_bytes=html) == extract_plain_text(html.decode("utf-8"))


@pytest.mark.problem("extract_text")
def test_drops_scripts_and_styles(student):
    html = b"<html><head><style>p {color: red}</style><script>var secret = 1;</script></head>" \
           b"<body><h1>Title</h1><p>First paragraph.</p><p>Second one.</p></body></html>"
    text = student.run_extract_text_from_html_bytes(html_bytes=html)
    assert "secret" not in text and "color" not in text
    assert [line.strip() for line in text.splitlines() if line.strip()] == ["Title", "First paragraph.", "Second one."]


@pytest.mark.problem("extract_text")
@pytest.mark.parametrize("encoding", ["cp1252", "shift_jis"])
def test_decodes_pages_that_are_not_utf8(student, encoding):
    words = "Café crème, naïve façade" if encoding == "cp1252" else "日本語のテキストです。ウェブページの本文。" * 4
    html = f"<html><body><p>{words}</p></body></html>".encode(encoding)
    assert student.run_extract_text_from_html_bytes(html_bytes=html).strip() == words
