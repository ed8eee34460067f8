"""One pass per kind of source file, as in nbgrader's preprocessors.

Each pass turns a file of the course repo into the bytes of a handout file. ``plan_*``
functions walk one source folder and yield :class:`HandoutFile` entries; the build writes them.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import LmcourseError, MarkerError
from ..markers import Region, keep_solutions, strip_solutions, stub_functions
from ..templating import render_template, render_text
from .notebook import keep_notebook, strip_notebook

SKIPPED_NAMES = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".DS_Store", ".mypy_cache", ".ruff_cache"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}


@dataclass(frozen=True)
class HandoutFile:
    rel: PurePosixPath  # path inside the handout
    data: bytes
    origin: Path | None  # the source it came from; None for generated files
    executable: bool = False


def walk(root: Path, *, skip_links: bool = False, skip_hidden: bool = False) -> Iterator[tuple[PurePosixPath, Path]]:
    """Every file under ``root`` as (posix relative path, path), sorted, caches skipped.

    Links are refused (a build reads plain files only) unless ``skip_links``; ``skip_hidden``
    prunes dot-folders such as ``.venv`` and ``.git``.
    """
    if not root.is_dir():
        return
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(
            d for d in dirs
            if d not in SKIPPED_NAMES and not (skip_hidden and d.startswith(".")) and not (skip_links and os.path.islink(os.path.join(folder, d)))
        )
        for name in sorted(names):
            path = Path(folder) / name
            if name in SKIPPED_NAMES or path.suffix in SKIPPED_SUFFIXES:
                continue
            if path.is_symlink():
                if skip_links:
                    continue
                raise LmcourseError(f"{path} is a symbolic link; handouts are built from plain files only.")
            yield PurePosixPath(path.relative_to(root).as_posix()), path


def matches(rel: PurePosixPath, globs: list[str]) -> bool:
    """fnmatch-style globs against the posix path (``*`` also crosses ``/``)."""
    return any(fnmatch.fnmatchcase(str(rel), g) for g in globs)


class Transformer:
    """Turns the source files of one unit into handout (or staff) bytes."""

    def __init__(self, stub_template: str, problems: set[str], context: dict[str, Any], solutions: bool) -> None:
        self.stub_template = stub_template
        self.problems = problems
        self.context = context
        self.solutions = solutions

    def stub_renderer(self, path: Path) -> Callable[[Region], str]:
        """Renders ``templates/stubs/<name>.j2`` for each region of the file at ``path``."""

        def render(region: Region) -> str:
            if region.problem is not None and region.problem not in self.problems:
                known = ", ".join(sorted(self.problems))
                raise MarkerError(path, region.begin, f"problem={region.problem} is not a problem of unit.yaml ({known})")
            where = f"problem '{region.problem}': " if region.problem else ""
            message = f"{where}implement {region.function}"
            return render_template(
                f"stubs/{region.stub or self.stub_template}.j2",
                problem=region.problem,
                function=region.function,
                message=message,
            ).rstrip("\n")

        return render

    def file(self, path: Path, dest: PurePosixPath, *, stub_whole: bool = False, keep: bool = False) -> HandoutFile:
        """One file: ``.j2`` rendered, ``.py`` stripped, ``.ipynb`` cleaned, the rest copied."""
        executable = os.access(path, os.X_OK)
        if path.suffix == ".j2":
            text = render_text(_read_text(path), path, **self.context)
            return HandoutFile(dest.with_suffix(""), text.encode(), path, executable)
        keep = keep or self.solutions
        if path.suffix == ".py":
            text = _read_text(path)
            if stub_whole and not keep:
                text = stub_functions(text, path, self.stub_renderer(path))
            elif keep:
                text = text if self.solutions else keep_solutions(text, path)
            else:
                text = strip_solutions(text, path, self.stub_renderer(path))
            return HandoutFile(dest, text.encode(), path, executable)
        if path.suffix == ".ipynb":
            text = _read_text(path)
            text = keep_notebook(text) if keep else strip_notebook(text, path, self.stub_renderer(path))
            return HandoutFile(dest, text.encode(), path, executable)
        return HandoutFile(dest, path.read_bytes(), path, executable)

    def folder(
        self,
        root: Path,
        dest: PurePosixPath,
        *,
        omit: list[str] = (),  # type: ignore[assignment]
        stub: list[str] = (),  # type: ignore[assignment]
        keep: bool = False,
        skip: Callable[[PurePosixPath], bool] = lambda rel: False,
    ) -> Iterator[HandoutFile]:
        for rel, path in walk(root):
            if skip(rel) or (matches(rel, list(omit)) and not self.solutions):
                continue
            yield self.file(path, dest / rel, stub_whole=matches(rel, list(stub)), keep=keep)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise LmcourseError(f"{path} is not UTF-8 text.") from None
