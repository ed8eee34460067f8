"""The leak scan: no solution text, hidden test or reference-only file in a handout.

It reads content, not names alone. From the course sources (never from the handout, whose
builder is what is under test) it collects *fingerprints*: the lines of solution regions, of
hidden tests and of files the handout omits, less any that also occur in code that ships on
purpose (the reference outside regions, public tests, adapters outside regions, shipped units).
Then every line of every handout file and zip entry is searched for a fingerprint anywhere in
it, so a solution line pasted into a sentence of the README is caught too. The writeup is
scanned, never trusted: quoting a solution there is a leak.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..course import Unit
from ..markers import solution_lines, stub_functions
from .files import matches, walk
from .notebook import HIDDEN_TAG, SOLUTION_TAG

#: Lines shorter than this are too generic to prove anything (``return x``, ``else:``).
MIN_CHARS = 16


@dataclass(frozen=True)
class Leak:
    file: str
    line: int
    kind: str  # "solution", "hidden test" or "reference-only"
    evidence: str


def normalize(line: str) -> str:
    return " ".join(line.split())


def _meaningful(lines: Iterable[str]) -> set[str]:
    out = set()
    for raw in lines:
        line = normalize(raw)
        if len(line) >= MIN_CHARS and not line.startswith(("# BEGIN SOLUTION", "# END SOLUTION")):
            out.add(line)
    return out


def fingerprints(unit: Unit) -> dict[str, str]:
    """Normalized line -> what it would reveal, for lines that must not appear in the handout."""
    secret: dict[str, set[str]] = {"solution": set(), "hidden test": set(), "reference-only": set()}
    public: set[str] = set()
    rules = unit.config.handout
    for rel, path in walk(unit.reference_dir):
        text = path.read_text(encoding="utf-8", errors="replace")
        if matches(rel, rules.omit):
            secret["reference-only"] |= _meaningful(text.splitlines())
        elif path.suffix == ".py":
            solution = _meaningful(_stubbed_lines(text, path) if matches(rel, rules.stub) else solution_lines(text, path))
            secret["solution"] |= solution
            public |= _meaningful(text.splitlines()) - solution
        elif path.suffix == ".ipynb":
            _notebook(text, secret)
        else:
            public |= _meaningful(text.splitlines())
    for rel, path in walk(unit.tests_dir):
        text = path.read_text(encoding="utf-8", errors="replace")
        if rel.parts[0] == "hidden":
            secret["hidden test"] |= _meaningful(text.splitlines())
        else:
            solution = _meaningful(solution_lines(text, path)) if path.suffix == ".py" else set()
            secret["solution"] |= solution
            public |= _meaningful(text.splitlines()) - solution
    for _, path in walk(unit.writeup_dir):
        if path.suffix == ".ipynb":
            _notebook(path.read_text(encoding="utf-8"), secret)
    for other in rules.ships:
        for _, path in walk(unit.course.root / "reference" / other):
            public |= _meaningful(path.read_text(encoding="utf-8", errors="replace").splitlines())
    prints = {line: kind for kind, lines in secret.items() for line in lines}
    shipped_on_purpose = Matcher(prints).found_in(public)
    return {line: kind for line, kind in prints.items() if line not in shipped_on_purpose}


def _stubbed_lines(text: str, path: Path) -> list[str]:
    """The body lines a whole-file stub removes."""
    kept = set(stub_functions(text, path, lambda region: "pass").splitlines())
    return [line for line in text.splitlines() if line not in kept]


def _notebook(text: str, secret: dict[str, set[str]]) -> None:
    for cell in nbformat.reads(text, as_version=4).cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        lines = _meaningful(cell.source.splitlines())
        if HIDDEN_TAG in tags:
            secret["hidden test"] |= lines
        elif SOLUTION_TAG in tags:
            secret["solution"] |= lines


class Matcher:
    """Finds fingerprints anywhere inside a line, indexed by their first ``MIN_CHARS`` characters.

    Every fingerprint is at least that long, so sliding a window of that width over a line and
    looking each window up touches only real candidates: linear in the text, whatever the
    number of fingerprints.
    """

    def __init__(self, prints: Iterable[str]) -> None:
        self.index: dict[str, list[str]] = {}
        for p in prints:
            self.index.setdefault(p[:MIN_CHARS], []).append(p)

    def find(self, line: str) -> list[str]:
        return [
            p
            for i in range(len(line) - MIN_CHARS + 1)
            for p in self.index.get(line[i : i + MIN_CHARS], ())
            if line.startswith(p, i)
        ]

    def found_in(self, lines: Iterable[str]) -> set[str]:
        return {p for line in lines for p in self.find(line)}


def scan(handout: Path, prints: dict[str, str], *, zip_path: Path | None = None) -> list[Leak]:
    """Every handout line (folder and zip) that contains a fingerprint."""
    matcher = Matcher(prints)
    leaks = [leak for rel, data in _folder_files(handout) for leak in _scan_text(rel, data, prints, matcher)]
    if zip_path is not None:
        with zipfile.ZipFile(zip_path) as zf:
            for entry in zf.infolist():
                if not entry.is_dir():
                    leaks += _scan_text(f"{zip_path.name}:{entry.filename}", zf.read(entry), prints, matcher)
    return leaks


def _folder_files(root: Path) -> Iterator[tuple[str, bytes]]:
    for rel, path in walk(root, skip_links=True):
        yield str(rel), path.read_bytes()


def _scan_text(name: str, data: bytes, prints: dict[str, str], matcher: Matcher) -> list[Leak]:
    text = data.decode("utf-8", errors="replace")
    if name.endswith(".ipynb"):  # look at cell sources, not JSON-escaped strings
        try:
            text = "\n".join(c.source for c in nbformat.reads(text, as_version=4).cells)
        except Exception:
            pass
    leaks = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if found := matcher.find(normalize(raw)):
            leaks.append(Leak(name, number, prints[found[0]], found[0][:80]))
    return leaks
