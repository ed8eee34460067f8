"""Adapters: the glue between the data tests and your package.

Each function takes plain Python values, calls into ``lmc_data`` and returns plain results.
Fill in the bodies marked below; the logic belongs in your package.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from lmc_data.classifiers import classify_nsfw, classify_quality, classify_toxic_speech
from lmc_data.dedup import exact_line_deduplication, minhash_deduplication
from lmc_data.extract import extract_text_from_html_bytes
from lmc_data.langid import identify_language
from lmc_data.pii import mask_emails, mask_ips, mask_phone_numbers
from lmc_data.quality import gopher_quality_filter

PathLike = str | os.PathLike[str]


def run_extract_text_from_html_bytes(html_bytes: bytes) -> str | None:
    """The visible text of an HTML page given as bytes (UTF-8, else the detected encoding)."""
    # BEGIN SOLUTION problem=extract_text
    return extract_text_from_html_bytes(html_bytes)
    # END SOLUTION


def run_identify_language(text: str) -> tuple[str, float]:
    """``(iso_code, score)``, e.g. ``("en", 0.98)``; the score a Python float in (0, 1]."""
    # BEGIN SOLUTION problem=language_id
    return identify_language(text)
    # END SOLUTION


def run_mask_emails(text: str) -> tuple[str, int]:
    """``(masked_text, count)``; each address becomes ``|||EMAIL_ADDRESS|||``."""
    # BEGIN SOLUTION problem=mask_pii
    return mask_emails(text)
    # END SOLUTION


def run_mask_phone_numbers(text: str) -> tuple[str, int]:
    """``(masked_text, count)``; each US phone number becomes ``|||PHONE_NUMBER|||``."""
    # BEGIN SOLUTION problem=mask_pii
    return mask_phone_numbers(text)
    # END SOLUTION


def run_mask_ips(text: str) -> tuple[str, int]:
    """``(masked_text, count)``; each IPv4 address becomes ``|||IP_ADDRESS|||``."""
    # BEGIN SOLUTION problem=mask_pii
    return mask_ips(text)
    # END SOLUTION


def run_classify_nsfw(text: str) -> tuple[str, float]:
    """``("nsfw" | "non-nsfw", score)``."""
    # BEGIN SOLUTION problem=harmful_content
    return classify_nsfw(text)
    # END SOLUTION


def run_classify_toxic_speech(text: str) -> tuple[str, float]:
    """``("toxic" | "non-toxic", score)``."""
    # BEGIN SOLUTION problem=harmful_content
    return classify_toxic_speech(text)
    # END SOLUTION


def run_classify_quality(text: str) -> tuple[str, float]:
    """``("wiki" | "cc", score)``: high quality (Wikipedia-like) or low."""
    # BEGIN SOLUTION problem=quality_classifier
    return classify_quality(text)
    # END SOLUTION


def run_gopher_quality_filter(text: str) -> bool:
    """Whether ``text`` passes the Gopher quality rules."""
    # BEGIN SOLUTION problem=gopher_quality
    return gopher_quality_filter(text)
    # END SOLUTION


def run_exact_line_deduplication(input_files: Sequence[PathLike], output_directory: PathLike) -> None:
    """Rewrite each file (same basename) into ``output_directory`` keeping lines that occur once in the corpus."""
    # BEGIN SOLUTION problem=exact_dedup
    exact_line_deduplication(input_files, output_directory)
    # END SOLUTION


def run_minhash_deduplication(input_files: Sequence[PathLike], num_hashes: int, num_bands: int, ngrams: int,
                              jaccard_threshold: float, output_directory: PathLike) -> None:
    """Write one document of each near-duplicate cluster into ``output_directory`` under its basename."""
    # BEGIN SOLUTION problem=minhash_dedup
    minhash_deduplication(input_files, num_hashes, num_bands, ngrams, jaccard_threshold, output_directory)
    # END SOLUTION
