"""Masking emails, US phone numbers and IPv4 addresses (Faker-generated sentences in ``fixtures/pii.jsonl``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
ROWS = [json.loads(line) for line in (FIXTURES / "pii.jsonl").read_text().splitlines()]


@pytest.mark.problem("mask_pii")
@pytest.mark.parametrize(("adapter", "field", "token"), [
    ("run_mask_emails", "email", "|||EMAIL_ADDRESS|||"),
    ("run_mask_phone_numbers", "phone", "|||PHONE_NUMBER|||"),
    ("run_mask_ips", "ip", "|||IP_ADDRESS|||"),
])
def test_masks_each_occurrence(student, adapter, field, token):
    for row in ROWS[:20]:
        masked, count = getattr(student, adapter)(text=row["text"])
        assert (masked, count) == (row["text"].replace(row[field], token), 1)


@pytest.mark.problem("mask_pii")
@pytest.mark.parametrize("number", ["2831823829", "(283)-182-3829", "(283) 182 3829", "283-182-3829"])
def test_masks_the_us_phone_formats(student, number):
    assert student.run_mask_phone_numbers(text=f"Call {number} now.") == ("Call |||PHONE_NUMBER||| now.", 1)


@pytest.mark.problem("mask_pii")
def test_leaves_text_without_pii_alone(student):
    text = "Version 1.2.3 of the tool, released in 2024, costs 15.99 dollars."
    assert student.run_mask_emails(text=text) == (text, 0)
    assert student.run_mask_phone_numbers(text=text) == (text, 0)
    assert student.run_mask_ips(text=text) == (text, 0)


@pytest.mark.problem("mask_pii")
def test_masking_twice_changes_nothing(student):
    for adapter in ("run_mask_emails", "run_mask_phone_numbers", "run_mask_ips"):
        once, _ = getattr(student, adapter)(text=ROWS[0]["text"])
        assert getattr(student, adapter)(text=once) == (once, 0)
