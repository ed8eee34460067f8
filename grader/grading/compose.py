"""Compose the two sides of a grading run from a unit and an unpacked submission.

- the **sandbox side** (``code/``): the student's files, the staff modules tests call into the
  sandbox (``tests/producers.py`` and other non-test modules, package ``__init__`` files), and the
  packages of units this one ships un-stripped. Mounted read-only; no test, snapshot or expected
  value is ever copied here.
- the **trusted side** (``trusted/``): every test (public and hidden), their snapshots, the
  fixtures, the canary and a ``pytest.ini``. Never mounted into the sandbox, except ``fixtures/``
  (inputs only), read-only at the same path so test arguments that name fixture files stay valid.

Staff files are written after the student's and a collision is an error, so a submission can
never shadow a test module, a producer or a ``conftest.py``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..course import Unit
from ..errors import SubmissionError
from ..handout.build import template_context
from ..handout.files import Transformer, walk

CANARY = Path(__file__).resolve().parent / "canary.py"
CANARY_NAME = "test_lmcourse_canary.py"
PYTEST_INI = "[pytest]\npythonpath = .\nconsider_namespace_packages = false\n"


@dataclass(frozen=True)
class Composed:
    code: Path
    trusted: Path
    fixtures: Path
    test_paths: list[str]


def is_sandbox_module(rel: PurePosixPath) -> bool:
    """Staff modules the worker imports: producers and package markers, never tests or adapters."""
    name = rel.name
    return (
        rel.suffix == ".py"
        and not name.startswith("test_")
        and name not in ("conftest.py", "adapters.py")
    )


def compose(unit: Unit, student: Path, work: Path) -> Composed:
    code, trusted = work / "code", work / "trusted"
    shutil.copytree(student, code)
    _add(code, [(rel, path) for rel, path in walk(unit.tests_dir) if is_sandbox_module(rel)], PurePosixPath("tests"))
    for other in unit.config.handout.ships:
        shipped = unit.course.unit(other, enabled_only=False)
        keep = Transformer(unit.config.handout.stub_template, set(), template_context(unit), solutions=False)
        for f in keep.folder(shipped.reference_dir, PurePosixPath(unit.package_of(other)), keep=True):
            _write(code, f.rel, f.data)
    trusted.mkdir()
    for rel, path in walk(unit.tests_dir):
        if rel.name != "adapters.py":  # the trusted side never imports student code
            _write(trusted, PurePosixPath("tests") / rel, path.read_bytes())
    for rel, path in walk(unit.fixtures_dir):
        _write(trusted, PurePosixPath("fixtures") / rel, path.read_bytes())
    (trusted / "fixtures").mkdir(exist_ok=True)
    shutil.copyfile(CANARY, trusted / CANARY_NAME)
    (trusted / "pytest.ini").write_text(PYTEST_INI)
    _open_up(code)
    _open_up(trusted / "fixtures")
    paths = [p for p in ("tests/public", "tests/hidden") if (trusted / p).is_dir()]
    return Composed(code, trusted, trusted / "fixtures", [*paths, CANARY_NAME])


def _add(root: Path, files: list[tuple[PurePosixPath, Path]], prefix: PurePosixPath) -> None:
    for rel, path in files:
        _write(root, prefix / rel, path.read_bytes())


def _write(root: Path, rel: PurePosixPath, data: bytes) -> None:
    dest = root / rel
    if dest.exists():
        raise SubmissionError(f"the submission contains {rel}, which belongs to the course staff.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)


def _open_up(root: Path) -> None:
    """World-readable, nothing writable or executable: the sandbox user only reads these."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
