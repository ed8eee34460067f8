"""The handout pipeline: plan every file, then write a folder, a zip and a manifest.

A handout holds the stripped student package, other units' packages shipped un-stripped, the
adapters (stripped), the public tests, producers and fixtures, the writeup, and generated files
(README, pyproject, ``.lmcourse/unit.json``). With ``solutions=True`` the same plan gives the staff
tree: the reference verbatim plus hidden tests, which is what ``handout verify`` runs.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .. import __version__
from ..course import Unit
from ..errors import LmcourseError
from ..templating import render_template, render_text
from .archive import manifest_text, sha256_file, write_zip
from .files import HandoutFile, Transformer
from .info import INFO_PATH, HandoutInfo

WRITEUP_README = "README.md.j2"


@dataclass(frozen=True)
class BuildResult:
    unit: str
    folder: Path
    zip: Path
    manifest: Path
    files: int
    zip_sha256: str

    def as_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "folder": str(self.folder),
            "zip": str(self.zip),
            "manifest": str(self.manifest),
            "files": self.files,
            "zip_sha256": self.zip_sha256,
        }


def template_context(unit: Unit) -> dict[str, Any]:
    """What every ``.j2`` file of a unit sees: course, unit, problems, points, dates."""
    course = unit.course.config
    schedule = course.units.get(unit.name)
    return {
        "course": course.model_dump(mode="json"),
        "unit": {**unit.config.model_dump(mode="json"), "package": unit.package},
        "problems": [p.model_dump(mode="json") for p in unit.config.problems],
        "points": unit.config.total_points,
        "dates": {
            "release": _human_date(schedule.release if schedule else None),
            "due": _human_date(schedule.due if schedule else None),
        },
        "limits": unit.limits.model_dump(mode="json"),
        "lmcourse_version": __version__,
    }


def _human_date(when: dt.datetime | None) -> str:
    if when is None:
        return "to be announced"
    return when.strftime("%A %d %B %Y, %H:%M") + (f" ({when.strftime('%Z') or when.strftime('%z')})" if when.tzinfo else "")


def plan(unit: Unit, *, solutions: bool = False) -> list[HandoutFile]:
    """Every file of the handout (or, with ``solutions``, of the staff tree), sorted by path."""
    context = template_context(unit)
    rules = unit.config.handout
    problems = {p.name for p in unit.config.problems}
    transform = Transformer(rules.stub_template, problems, context, solutions)
    pkg = PurePosixPath(unit.package)

    files = list(transform.folder(unit.require_reference(), pkg, omit=rules.omit, stub=rules.stub))
    for other in rules.ships:
        # Shipped un-stripped means whole: its reference-only helpers go too, since its code uses them.
        shipped = unit.course.unit(other, enabled_only=False)
        files += transform.folder(shipped.reference_dir, PurePosixPath(unit.package_of(other)), keep=True)
    tests = PurePosixPath("tests")
    is_hidden = (lambda rel: False) if solutions else (lambda rel: rel.parts[0] == "hidden")
    files += transform.folder(unit.tests_dir, tests, skip=is_hidden)
    files += transform.folder(unit.fixtures_dir, PurePosixPath("fixtures"))
    files += transform.folder(unit.writeup_dir, PurePosixPath("writeup"), skip=lambda rel: str(rel) == WRITEUP_README)
    files += _generated(unit, context, solutions)
    _check_unique(files)
    return sorted(files, key=lambda f: str(f.rel))


def _generated(unit: Unit, context: dict[str, Any], solutions: bool) -> list[HandoutFile]:
    writeup_path = unit.writeup_dir / WRITEUP_README
    writeup = render_text(writeup_path.read_text(encoding="utf-8"), writeup_path, **context) if writeup_path.is_file() else ""
    packages = [unit.package, *(unit.package_of(o) for o in unit.config.handout.ships)]
    testpaths = ["tests/public", "tests/hidden"] if solutions else ["tests/public"]
    readme = render_template("handout/README.md.j2", writeup=writeup, **context)
    pyproject = render_template("handout/pyproject.toml.j2", packages=packages, testpaths=testpaths, **context)
    schedule = unit.course.config.units.get(unit.name)
    info = HandoutInfo(
        course=unit.course.config.name,
        term=unit.course.config.term,
        unit=unit.name,
        title=unit.config.title,
        package=unit.package,
        problems=unit.config.problems,
        student_files=unit.student_files,
        test_timeout_s=unit.limits.test_timeout_s,
        submission_mb=unit.limits.submission_mb,
        due=schedule.due.isoformat() if schedule and schedule.due else None,
        lmcourse_version=__version__,
    )
    gitignore = render_template("handout/gitignore.j2")
    return [
        HandoutFile(PurePosixPath("README.md"), readme.encode(), None),
        HandoutFile(PurePosixPath("pyproject.toml"), pyproject.encode(), None),
        HandoutFile(PurePosixPath(".gitignore"), gitignore.encode(), None),
        HandoutFile(PurePosixPath(INFO_PATH), info.to_json().encode(), None),
    ]


def _check_unique(files: list[HandoutFile]) -> None:
    seen: dict[PurePosixPath, HandoutFile] = {}
    for f in files:
        if f.rel in seen:
            first = seen[f.rel].origin or "a generated file"
            raise LmcourseError(f"two sources write {f.rel} in the handout: {first} and {f.origin or 'a generated file'}.")
        seen[f.rel] = f


def write(files: list[HandoutFile], folder: Path) -> None:
    """Write ``files`` into ``folder``, replacing an earlier build of it (and nothing else)."""
    if folder.exists():
        if not (folder / INFO_PATH).is_file():
            raise LmcourseError(f"{folder} exists and is not a handout; refusing to overwrite it.")
        shutil.rmtree(folder)
    for f in files:
        path = folder / f.rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f.data)
        path.chmod(0o755 if f.executable else 0o644)


def build(unit: Unit, out_dir: Path, *, solutions: bool = False) -> BuildResult:
    """Build one unit's handout into ``out_dir/<unit>/``, ``<unit>.zip`` and ``<unit>.sha256``."""
    files = plan(unit, solutions=solutions)
    name = f"{unit.name}-solution" if solutions else unit.name
    out_dir.mkdir(parents=True, exist_ok=True)
    folder = out_dir / name
    write(files, folder)
    zip_path = out_dir / f"{name}.zip"
    write_zip(zip_path, [(f.rel, f.data, f.executable) for f in files], prefix=name)
    manifest = out_dir / f"{name}.sha256"
    manifest.write_text(manifest_text((f.rel, f.data) for f in files), encoding="utf-8")
    return BuildResult(unit.name, folder, zip_path, manifest, len(files), sha256_file(zip_path))
