"""Reading a final answer out of free-form model output, for evaluation."""

from __future__ import annotations

import re
from typing import Any

LETTERS = "ABCD"
# "The correct answer is B", "answer: (c)", "Answer is D." — the last such statement wins.
ANSWER_STATEMENT = re.compile(r"answer\s*(?:is|:)?\s*:?\s*\(?([A-Da-d])\)?(?![A-Za-z])", re.IGNORECASE)
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def parse_mmlu_response(mmlu_example: dict[str, Any], model_output: str) -> str | None:
    """The letter A–D the output commits to, or None.

    First an explicit "answer is X"; otherwise the output must be exactly one option's text.
    """
    # BEGIN SOLUTION problem=response_parsing
    found = ANSWER_STATEMENT.findall(model_output)
    if found:
        return found[-1].upper()
    text = model_output.strip().rstrip(".").strip().lower()
    for letter, option in zip(LETTERS, mmlu_example.get("options", [])):
        if text and text == str(option).strip().rstrip(".").lower():
            return letter
    return None
    # END SOLUTION


def parse_gsm8k_response(model_output: str) -> str | None:
    """The last number in the output, thousands separators removed ("1,234" -> "1234"), or None."""
    # BEGIN SOLUTION problem=response_parsing
    numbers = NUMBER.findall(model_output)
    return numbers[-1].replace(",", "") if numbers else None
    # END SOLUTION
