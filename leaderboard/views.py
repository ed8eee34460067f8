"""What the store hands out: frozen snapshots of boards, students and entries, and their renderings.

Front ends never see ORM objects: a view is plain data, safe to keep after the session closed and
to pass between threads. The Markdown table and Gradescope's ``leaderboard`` entries are written
from views here so that the CLI, the web app and the grader print the same numbers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from .config import BoardRules

MARKDOWN_HEADER = ("Rank", "Name", "bpb", "Loss", "Perplexity", "Params", "Date", "Verified")
MARKDOWN_ALIGN = ("---:", "---", "---:", "---:", "---:", "---:", "---", ":---:")  # numbers to the right


@dataclass(frozen=True)
class BoardView:
    name: str
    unit: str
    rules: BoardRules
    entries: int  # submissions on the board, hidden ones not counted


@dataclass(frozen=True)
class StudentView:
    student_id: str
    display_name: str
    staff: bool


@dataclass(frozen=True)
class EntryView:
    """One accepted submission with its evaluation; ``rank`` is None off the public ranking."""

    id: int
    board: str
    rank: int | None
    student_id: str
    display_name: str
    bits_per_byte: float
    loss: float
    perplexity: float
    parameters: int
    submitted_at: dt.datetime  # aware, UTC
    verified: bool
    hidden: bool
    content_hash: str

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["submitted_at"] = self.submitted_at.isoformat()
        return data


@dataclass(frozen=True)
class EntryDetail:
    entry: EntryView
    config: dict[str, Any]  # the submission's model_config.json
    log: str | None  # its training log (log.jsonl), if it sent one
    tokens: int  # validation tokens scored
    bytes: int  # UTF-8 bytes of the validation text those tokens decode to
    seconds: float  # evaluation wall time
    device: str
    unverified_reason: str | None = None  # why staff must re-run it, while it is unverified

    def as_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "entry": self.entry.as_json()}


def format_parameters(count: int) -> str:
    """17_400_000 -> '17.4M', the way model sizes are written in leaderboard tables."""
    for unit, size in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if count >= size:
            return f"{count / size:.1f}{unit}"
    return str(count)


def markdown_table(entries: list[EntryView]) -> str:
    """| Rank | Name | bpb | Loss | Perplexity | Params | Date | Verified |, one row per entry."""
    lines = ["| " + " | ".join(MARKDOWN_HEADER) + " |", "|" + "|".join(MARKDOWN_ALIGN) + "|"]
    for e in entries:
        cells = (
            str(e.rank) if e.rank is not None else "",
            _markdown_cell(e.display_name),
            f"{e.bits_per_byte:.4f}",
            f"{e.loss:.4f}",
            f"{e.perplexity:.2f}",
            format_parameters(e.parameters),
            e.submitted_at.astimezone(dt.UTC).strftime("%Y-%m-%d"),
            "✓" if e.verified else "",
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _markdown_cell(text: str) -> str:
    # A '|' would end the cell early; markup in a chosen name must show as typed.
    for char in "\\|*_`[]<>":
        text = text.replace(char, "\\" + char)
    return text


def gradescope_entries(entry: EntryView) -> list[dict[str, Any]]:
    """Gradescope's ``leaderboard`` list for one entry; the first column is the one it sorts by."""
    return [
        {"name": "bits per byte", "value": round(entry.bits_per_byte, 4), "order": "asc"},
        {"name": "loss", "value": round(entry.loss, 4), "order": "asc"},
        {"name": "perplexity", "value": round(entry.perplexity, 2), "order": "asc"},
        {"name": "parameters", "value": entry.parameters, "order": "asc"},
        {"name": "verified", "value": "yes" if entry.verified else "no"},
    ]
