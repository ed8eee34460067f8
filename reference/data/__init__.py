"""The data unit: turning raw web pages into training text — extraction, language ID, PII masking,
harmful-content and quality filters, Gopher rules, and exact and near-duplicate removal."""

from .classifiers import classify_nsfw, classify_quality, classify_toxic_speech
from .dedup import exact_line_deduplication, minhash_deduplication, near_duplicate_clusters, normalize_text
from .extract import extract_text_from_html_bytes
from .langid import identify_language
from .pii import mask_credit_cards, mask_emails, mask_ips, mask_phone_numbers, mask_pii
from .quality import gopher_quality_filter

__all__ = [
    "classify_nsfw",
    "classify_quality",
    "classify_toxic_speech",
    "exact_line_deduplication",
    "extract_text_from_html_bytes",
    "gopher_quality_filter",
    "identify_language",
    "mask_credit_cards",
    "mask_emails",
    "mask_ips",
    "mask_phone_numbers",
    "mask_pii",
    "minhash_deduplication",
    "near_duplicate_clusters",
    "normalize_text",
]
