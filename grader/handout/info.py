"""``.lmcourse/unit.json``: what a handout knows about itself.

The student commands (``check``, ``submit``) run inside a handout, far from the course repo;
this file tells them the unit, its problems and points, and which files the student owns.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ValidationError

from ..config import Problem
from ..errors import LmcourseError

INFO_PATH = ".lmcourse/unit.json"


class HandoutInfo(BaseModel):
    course: str
    term: str
    unit: str
    title: str
    package: str
    problems: list[Problem]
    student_files: list[str]
    test_timeout_s: float
    submission_mb: int
    due: str | None = None
    lmcourse_version: str

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"

    @classmethod
    def find(cls, start: Path | None = None) -> tuple[Path, HandoutInfo]:
        """The handout folder containing ``start`` (default: cwd) and its info."""
        here = (start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            path = folder / INFO_PATH
            if path.is_file():
                try:
                    return folder, cls.model_validate_json(path.read_text(encoding="utf-8"))
                except ValidationError:
                    raise LmcourseError(f"{path} is damaged; re-download the handout.") from None
        raise LmcourseError(f"{here} is not inside a handout (no {INFO_PATH} here or above).")
