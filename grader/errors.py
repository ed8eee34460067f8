"""Exception types the CLI turns into one sentence and an exit code.

Library code raises these; only :mod:`.cli` prints. Anything else that escapes is a bug
and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class LmcourseError(Exception):
    """Bad usage or bad input: one clear sentence, exit status 2."""

    exit_code = 2


class ConfigError(LmcourseError):
    """A ``course.yaml`` or ``unit.yaml`` that does not validate."""


class MarkerError(LmcourseError):
    """A malformed solution marker, located by file and line."""

    def __init__(self, path: Path | str, line: int, problem: str) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        super().__init__(f"{path}:{line}: {problem}")


class SubmissionError(LmcourseError):
    """A submission that cannot be packaged or read."""
