"""Fixtures of the attack suite: the mini course with small limits, every sandbox, ``attack``.

``attack(tmp_path, edits, sandbox)`` copies the built reference solution of the mini course
(every file a student's handout folder holds), writes ``edits`` over it (path -> text or bytes,
``None`` deletes), grades it with :func:`grade_one` and returns the :class:`Graded`. Around the
grading it checks the host: every temporary file of the grader goes to a scratch folder of this
attack (``TMPDIR``), so afterwards no process or container may still mount anything from it,
nothing may be left in it, and the grader's environment must be unchanged.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from lmcourse.grader.course import Course, Unit
from lmcourse.grader.errors import LmcourseError
from lmcourse.grader.grading.engine import Graded, grade_one
from lmcourse.grader.handout.build import build
from lmcourse.grader.sandbox.registry import IMPLEMENTATIONS, get_sandbox, make_sandbox

from ..helpers import MINICOURSE
from .kit import LIMITS, TrustedPeak, remove_containers_mounting, wait_for_no_leftovers


class Kit:
    """The mini course (copied, with small limits), its built solution and its stubbed handout."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._units: dict[tuple[tuple[str, Any], ...], Unit] = {}
        unit = self.unit()
        self.solution = build(unit, base / "solution", solutions=True).folder
        self.stubbed = build(unit, base / "stubbed").folder

    def unit(self, **overrides: Any) -> Unit:
        """The toy unit with ``LIMITS`` and these overrides (one course copy per distinct set)."""
        limits = {**LIMITS, **overrides}
        key = tuple(sorted(limits.items()))
        if key not in self._units:
            root = self.base / f"course-{len(self._units)}"
            shutil.copytree(MINICOURSE, root, ignore=shutil.ignore_patterns("__pycache__"))
            unit_yaml = root / "assignments" / "toy" / "unit.yaml"
            config = yaml.safe_load(unit_yaml.read_text(encoding="utf-8"))
            config["limits"] = limits
            unit_yaml.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
            self._units[key] = Course.load(root).unit("toy")
        return self._units[key]

    def text(self, rel: str, *, stub: bool = False) -> str:
        return ((self.stubbed if stub else self.solution) / rel).read_text(encoding="utf-8")

    def adapters(self, code: str, *, stub: bool = False) -> str:
        """The adapters (solution or stubbed) with ``code`` appended: it runs at import and its
        definitions replace the honest ones of the same name."""
        return self.text("tests/adapters.py", stub=stub) + code


class Attack:
    """``attack(tmp_path, edits, sandbox)``: grade the solution with hostile edits, check the host."""

    def __init__(self, kit: Kit) -> None:
        self.kit = kit
        self.scratch: Path | None = None
        self.left_in_scratch: list[str] = []
        self.trusted_peak_mb = 0.0  # the grader side's peak memory during the last grading
        self.leftovers: list[str] = []  # processes, containers, files the last grading left

    def __call__(
        self,
        tmp_path: Path,
        edits: dict[str, str | bytes | None],
        sandbox: str,
        *,
        base: str = "solution",
        limits: dict[str, Any] | None = None,
        workers: int = 1,
        out: str = "out",
        host_checks: bool = True,
    ) -> Graded:
        return self.grade(tmp_path, self.submission(tmp_path / f"{out}-submission", edits, base=base), sandbox,
                          limits=limits, workers=workers, out=out, host_checks=host_checks)

    def submission(self, dest: Path, edits: dict[str, str | bytes | None], *, base: str = "solution") -> Path:
        shutil.copytree(self.kit.solution if base == "solution" else self.kit.stubbed, dest)
        for rel, data in edits.items():
            path = dest / rel
            if data is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, bytes):
                path.write_bytes(data)
            else:
                path.write_text(data, encoding="utf-8")
        return dest

    def grade(
        self, tmp_path: Path, submission: Path, sandbox: str, *, limits: dict[str, Any] | None = None,
        workers: int = 1, out: str = "out", host_checks: bool = True,
    ) -> Graded:
        """Grade ``submission`` (a folder or an archive) with the grader's temporary files in a
        fresh scratch folder, then prove the host clean. The grader's own exception, if any,
        propagates after the checks. With ``host_checks=False`` what is left is recorded in
        ``self.leftovers`` for the test to judge, then cleared away."""
        unit = self.kit.unit(**(limits or {}))
        scratch = Path(tempfile.mkdtemp(prefix="lmatk-", dir="/tmp"))  # short: socket paths live here
        self.scratch = scratch
        env_before = dict(os.environ)
        saved_env, saved_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
        os.environ["TMPDIR"] = str(scratch)  # the trusted pytest child's carriers use it too
        tempfile.tempdir = str(scratch)
        error: BaseException | None = None
        peak = TrustedPeak(str(scratch))
        try:
            graded = grade_one(submission, unit, tmp_path / out, sandbox=sandbox, workers=workers)
        except BaseException as exc:  # noqa: BLE001 -- re-raised below, after the host checks
            error = exc
        finally:
            self.trusted_peak_mb = peak.stop()
            tempfile.tempdir = saved_tempdir
            if saved_env is None:
                del os.environ["TMPDIR"]
            else:
                os.environ["TMPDIR"] = saved_env
        procs, boxes = wait_for_no_leftovers(scratch, within_s=15.0 if host_checks else 5.0)
        # pytest-xdist makes pytest's own rotating basetemp (pytest-of-<user>/pytest-N) in TMPDIR:
        # pytest's business, not a leftover of the grader.
        self.left_in_scratch = sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*")
                                      if not p.relative_to(scratch).parts[0].startswith("pytest-of-"))
        self.leftovers = [*procs, *(f"container {b}" for b in boxes),
                          *(f"file {f}" for f in self.left_in_scratch if f.count("/") == 0)]
        if not host_checks:
            remove_containers_mounting(str(scratch))
        shutil.rmtree(scratch, ignore_errors=True)
        assert dict(os.environ) == env_before, "grading changed the grader's environment"
        if host_checks:
            assert not procs, f"sandboxed processes outlived the grading: {procs}"
            assert not boxes, f"sandbox containers outlived the grading: {boxes}"
        if host_checks:  # a refused archive too: nothing it held may stay (or land beside it)
            assert not self.left_in_scratch, f"the grader left files in its temporary folder: {self.left_in_scratch[:10]}"
        if error is not None:
            raise error
        return graded


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    return Kit(tmp_path_factory.mktemp("attack-kit"))


def _ensure_grading_image(name: str) -> None:
    """As tests/sandbox does: build the docker grading image when only it is missing (offline)."""
    backend = make_sandbox(name)
    problem = backend.unavailable()
    if name == "docker" and problem and "lmcourse image build" in problem:
        from lmcourse.grader.sandbox.image import build_image

        try:
            build_image("cpu")
        except LmcourseError:
            pass  # the base image is missing too: the skip says what to run


@pytest.fixture(params=IMPLEMENTATIONS)
def sandbox(request: pytest.FixtureRequest) -> str:
    """Each attack runs once per implementation (``local-bwrap``, ``local-unshare``, ``docker``);
    one is skipped only when it cannot run here."""
    _ensure_grading_image(request.param)
    try:
        get_sandbox(request.param)
    except LmcourseError as exc:
        pytest.skip(f"the {request.param} sandbox is unavailable: {exc}")
    return request.param


@pytest.fixture
def attack(kit: Kit) -> Attack:
    return Attack(kit)
