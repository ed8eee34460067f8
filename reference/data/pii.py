"""Masking personal information: emails, phone numbers, IP addresses, credit-card numbers.

Each masker returns the masked text and how many spans it replaced. The replacement tokens hold
no digits, no ``@`` and no ``:``, so no pattern can match inside one: masking is idempotent and
running a masker twice never re-masks its own output.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

EMAIL_TOKEN = "|||EMAIL_ADDRESS|||"
PHONE_TOKEN = "|||PHONE_NUMBER|||"
IP_TOKEN = "|||IP_ADDRESS|||"
CARD_TOKEN = "|||CREDIT_CARD_NUMBER|||"


def mask_emails(text: str) -> tuple[str, int]:
    """Replace every email address with ``|||EMAIL_ADDRESS|||``."""
    # BEGIN SOLUTION problem=mask_pii
    # A local part of word characters, dots, plus and minus; domain labels that neither start
    # nor end with '-'; a top-level domain of two letters or more.
    email = r"(?<![\w.+-])[\w.+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}\b"
    return re.subn(email, EMAIL_TOKEN, text)
    # END SOLUTION


def mask_phone_numbers(text: str) -> tuple[str, int]:
    """Replace US phone numbers (``2831823829``, ``(283)-182-3829``, ``283 182 3829``, ``+1 283.182.3829``)."""
    # BEGIN SOLUTION problem=mask_pii
    # Optional +1, a 3-digit area code (bare or in parentheses), then 3 and 4 digits, separated by
    # nothing, a space, a dot or a dash; never inside a longer run of digits or letters.
    phone = r"(?<![\w+])(?:\+?1[\s.-]?)?(?:\(\d{3}\)|\d{3})[\s.-]?\d{3}[\s.-]?\d{4}(?!\w)"
    return re.subn(phone, PHONE_TOKEN, text)
    # END SOLUTION


def mask_ips(text: str) -> tuple[str, int]:
    """Replace IPv4 addresses, and valid IPv6 addresses, with ``|||IP_ADDRESS|||``."""
    # BEGIN SOLUTION problem=mask_pii
    # Four octets 0-255 not inside a longer dotted run of digits (version numbers like 1.2.3.4.5
    # stay). IPv6 candidates (groups of hex digits and colons) are confirmed by the ipaddress module.
    octet = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    ipv4 = rf"(?<![\d.])(?:{octet}\.){{3}}{octet}(?!\d|\.\d)"
    ipv6 = r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])"
    text, n_v4 = re.subn(ipv4, IP_TOKEN, text)
    text, n_v6 = sub_if(ipv6, IP_TOKEN, text, is_ipv6)
    return text, n_v4 + n_v6
    # END SOLUTION


def mask_credit_cards(text: str) -> tuple[str, int]:
    """Replace 13-19 digit numbers (grouped by spaces or dashes or not) that pass the Luhn check."""
    # BEGIN SOLUTION problem=mask_pii
    card = r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"
    return sub_if(card, CARD_TOKEN, text, lambda span: luhn_valid(re.sub(r"\D", "", span)))
    # END SOLUTION


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum: doubling every second digit from the right, the digit sum is a multiple of 10."""
    # BEGIN SOLUTION problem=mask_pii
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0
    # END SOLUTION


def mask_pii(text: str) -> tuple[str, dict[str, int]]:
    """All maskers in turn, with the count of each. Cards go before phones: a card number holds
    phone-like runs of digits."""
    counts = {}
    for name, masker in (("email", mask_emails), ("credit_card", mask_credit_cards),
                         ("phone", mask_phone_numbers), ("ip", mask_ips)):
        text, counts[name] = masker(text)
    return text, counts


def is_ipv6(span: str) -> bool:
    """Whether ``span`` is a valid IPv6 address holding at least one digit (a bare ``::`` in prose is not)."""
    if not any(ch in "0123456789abcdefABCDEF" for ch in span):
        return False
    try:
        ipaddress.IPv6Address(span)
    except ValueError:
        return False
    return True


def sub_if(pattern: str, token: str, text: str, keep: Callable[[str], bool]) -> tuple[str, int]:
    """Like ``re.subn``, but a match is replaced only when ``keep(matched_text)`` holds."""
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        if not keep(match.group()):
            return match.group()
        count += 1
        return token

    return re.sub(pattern, replace, text), count
