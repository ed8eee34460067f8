"""Notebooks in a handout: cells tagged ``hidden`` go, cells tagged ``solution`` become stubs.

Every output and execution count is cleared, so a handout never carries a staff run's results.
Code cells may also hold solution markers; in a notebook they need no enclosing function.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nbformat

from ..errors import LmcourseError
from ..markers import Region, strip_solutions

SOLUTION_TAG = "solution"
HIDDEN_TAG = "hidden"
ANSWER_STUB = "_Write your answer here._"


def strip_notebook(text: str, path: Path | str, render_stub: Callable[[Region], str]) -> str:
    """The student version of the notebook ``text`` (nbformat v4 JSON)."""
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for bad JSON
        raise LmcourseError(f"{path}: not a readable notebook ({exc}).") from None
    cells = []
    for index, cell in enumerate(nb.cells):
        tags = set(cell.get("metadata", {}).get("tags", []))
        if HIDDEN_TAG in tags:
            continue
        if SOLUTION_TAG in tags:
            cell.source = _stub_cell(cell.cell_type, render_stub, index)
        elif cell.cell_type == "code":
            cell.source = strip_solutions(cell.source, f"{path}[cell {index}]", render_stub, require_function=False)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cells.append(cell)
    nb.cells = cells
    return nbformat.writes(nb) + "\n"


def _stub_cell(cell_type: str, render_stub: Callable[[Region], str], index: int) -> str:
    if cell_type != "code":
        return ANSWER_STUB
    region = Region(begin=0, end=0, indent="", function=f"notebook cell {index}", problem=None, stub=None)
    return "# YOUR CODE HERE\n" + render_stub(region)


def keep_notebook(text: str) -> str:
    """The staff version: solution cells kept, hidden cells kept, outputs cleared."""
    nb = nbformat.reads(text, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nbformat.writes(nb) + "\n"
