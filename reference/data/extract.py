"""HTML bytes to plain text.

Web pages arrive as bytes in whatever encoding the server chose, sometimes mislabelled, sometimes
not text at all. Extraction is therefore two steps: decode (UTF-8 when it is valid, else the
encoding the bytes look like) and strip the markup with Resiliparse, which keeps block structure
as line breaks and drops scripts, styles and comments.
"""

from __future__ import annotations

import re

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import bytes_to_str, detect_encoding

# Bytes that are not UTF-8 and whose decoded text holds this share of control characters or
# U+FFFD are binary junk (an image, a zip) served as HTML: extracting them would only emit noise.
MAX_JUNK_FRACTION = 0.1
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def decode_html(html_bytes: bytes) -> str | None:
    """The bytes as a string: UTF-8 if valid, else the detected encoding; None for binary junk."""
    # BEGIN SOLUTION problem=extract_text
    try:
        return html_bytes.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # uchardet guesses from byte statistics (and the <meta charset> when readable); decoding falls
    # back to UTF-8 and cp1252, then replaces what still fails, so it never raises.
    text = bytes_to_str(html_bytes, detect_encoding(html_bytes, from_html_meta=True), errors="replace")
    junk = text.count("\ufffd") + len(CONTROL_CHARACTERS.findall(text))
    return None if junk > MAX_JUNK_FRACTION * max(len(text), 1) else text
    # END SOLUTION


def extract_text_from_html_bytes(html_bytes: bytes) -> str | None:
    """The visible text of an HTML page given as raw bytes, or None if the bytes are not text.

    Block elements (paragraphs, headings, list items) become separate lines; scripts, styles
    and comments are dropped.
    """
    # BEGIN SOLUTION problem=extract_text
    html = decode_html(html_bytes)
    if html is None:
        return None
    return extract_plain_text(html, preserve_formatting=True)
    # END SOLUTION
