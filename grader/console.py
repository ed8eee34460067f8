"""Terminal output for the CLI: rich tables on stdout, errors on stderr, ``--json`` documents.

Library code never prints; the CLI turns results into one of these views.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from .report import ProblemSummary

# Piped output (CI logs, make demo) gets room for the failure column instead of rich's 80.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # an error stays one greppable line


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


def error(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)


def problems_table(title: str, rows: list[ProblemSummary]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("problem")
    table.add_column("points", justify="right")
    table.add_column("passed", justify="right")
    table.add_column("time", justify="right")
    table.add_column("first failure", overflow="fold", max_width=70)
    for row in rows:
        mark = "[green]✓[/]" if row.complete else "[red]✗[/]"
        table.add_row(
            f"{mark} {row.name}",
            f"{row.earned:g}/{row.points:g}",
            f"{row.passed}/{row.total}",
            f"{row.duration:.2f}s",
            row.first_failure,
        )
    return table
