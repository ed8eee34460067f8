"""Benchmark a submission: lay out both codes, run the two probe processes, judge their reports.

For each benchmark of a unit, one run is two processes on the same GPU, one after the other:

1. the **submission's** (the student's code, in the sandbox): times it, saves its outputs;
2. the **reference's** (the staff code; no student code is ever imported there): times the staff
   implementation and the baselines with the same seeds, and measures the submission's saved
   outputs against the fp32 truth.

Nothing from the first process is believed but its times, and those only after the checks of
:mod:`.verdict`. The reference is timed in a process of its own so that student code can neither
slow it down nor patch it. A file lock keeps two benchmarks off one GPU at a time (batch grading).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from ..config import Limits
from ..course import Unit
from ..errors import LmcourseError
from .launch import ProbeRun, launch, write_boot
from .measurements import ProbeReport, read_report
from .peaks import peaks_for
from .plan import make_plan
from .spec import BenchmarkSpec, unit_benchmarks
from .verdict import BenchResult, judge, not_run

log = logging.getLogger(__name__)

NO_GPU = "not timed: no CUDA GPU is visible on this machine"
LOCK_ENV = "LMCOURSE_BENCH_LOCK_DIR"


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def run_benchmarks(
    unit: Unit,
    code: Path,
    *,
    sandbox: str = "docker",
    problem: str | None = None,
    iters: int | None = None,
) -> list[BenchResult]:
    """Time ``code`` (a composed sandbox side: the student's package and ``tests/adapters.py``) for
    every benchmark of ``unit`` (or those of ``problem``) against the unit's reference.

    Without a CUDA GPU every case is reported as not run, so grading elsewhere still says why.
    """
    specs = unit_benchmarks(unit.config, problem)
    points = {p.name: p.points for p in unit.config.problems}
    if not specs:
        return []
    if not cuda_available():
        return [not_run(spec, points[spec.problem], NO_GPU) for spec in specs]
    with tempfile.TemporaryDirectory(prefix="lmcourse-staff-") as tmp, gpu_lock():
        staff = staff_code(unit, Path(tmp) / "staff")
        return [
            benchmark(spec, points[spec.problem], code=code, staff=staff, sandbox=sandbox, limits=unit.limits,
                      iters=iters)
            for spec in specs
        ]


def benchmark(
    spec: BenchmarkSpec,
    points: float,
    *,
    code: Path,
    staff: Path,
    sandbox: str,
    limits: Limits,
    device: str = "cuda",
    iters: int | None = None,
    rng: random.Random | None = None,
) -> BenchResult:
    """One benchmark: the submission's process, then the reference's, then the verdict.

    ``device="cpu"`` runs the whole protocol on the CPU (no floor, no L2 flush): the toolkit's
    own tests use it; it says nothing about GPU speed.
    """
    plan = make_plan(spec, device=device, iters=iters, rng=rng)
    work = Path(tempfile.mkdtemp(prefix="lmcourse-bench-"))
    try:
        mine_out, trusted_out = work / "submission", work / "reference"
        for folder in (mine_out, trusted_out):
            folder.mkdir()
        boot = write_boot(work / "submission-boot", plan | {"role": "submission"})
        gpu = device == "cuda"
        mine_run = launch(sandbox, boot=boot, code=code, out=mine_out, peer=None, limits=limits,
                          timeout_s=spec.timeout_s, gpu=gpu)
        mine = _report(mine_out, "submission")
        boot = write_boot(work / "reference-boot", plan | {"role": "reference"})
        trusted_run = launch(sandbox, boot=boot, code=staff, out=trusted_out, peer=mine_out, limits=limits,
                             timeout_s=spec.timeout_s, gpu=gpu)
        trusted = _report(trusted_out, "reference")
        why = _trusted_failure(spec, trusted, trusted_run)
        if why or trusted is None:
            raise LmcourseError(f"the reference benchmark process for '{spec.problem}' failed: {str(why).rstrip('.')}.")
        peaks = peaks_for(str(trusted.device.get("name") or "")) if device == "cuda" else None
        return judge(spec, points, mine, mine_run.failure(), trusted, peaks)
    finally:
        _clean_up(sandbox, work)


def _trusted_failure(spec: BenchmarkSpec, report: ProbeReport | None, run: ProbeRun) -> str | None:
    """Why the reference's process did not measure every case (a staff problem), or None."""
    if report is None:
        return run.failure() or "it wrote no report"
    if report.load_error:
        return f"the staff implementation could not be loaded: {report.load_error}"
    missing = [c.name for c in spec.cases if c.name not in report.cases]
    if missing:
        return f"no result for case '{missing[0]}' ({run.failure() or 'it stopped early'})"
    return None


def _report(folder: Path, role: str) -> ProbeReport | None:
    report = read_report(folder / "report.json")
    return report if report is not None and report.role == role else None


def _clean_up(sandbox: str, work: Path) -> None:
    if sandbox != "none":
        from ..sandbox.registry import make_sandbox

        try:
            make_sandbox(sandbox).cleanup(work)
        except Exception as exc:  # e.g. the Docker daemon stopped answering meanwhile
            log.warning("could not clean up the sandboxes of %s: %s", work, exc)
    shutil.rmtree(work, ignore_errors=True)


def staff_code(unit: Unit, dest: Path) -> Path:
    """The staff's code laid out as a student's would be: the reference package under the student
    package name, the units it ships, and ``tests/`` with the staff ``adapters.py``.

    It is the staff tree ``lmcourse handout build --solutions`` writes, less tests and writeup.
    """
    from ..grading.compose import is_sandbox_module
    from ..handout.build import plan

    packages = {unit.package, *(unit.package_of(other) for other in unit.config.handout.ships)}
    for f in plan(unit, solutions=True):
        top = f.rel.parts[0]
        if top in packages or (top == "tests" and (is_sandbox_module(f.rel) or f.rel == PurePosixPath("tests/adapters.py"))):
            path = dest / f.rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f.data)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # the sandbox user only reads it
    return dest


def prepare_submission(unit: Unit, submission: Path, work: Path) -> Path:
    """The sandbox side of a grading run for ``submission`` (zip, tar or folder): what the probe imports."""
    from ..grading.compose import compose
    from ..grading.intake import IntakeLimits, intake

    max_bytes = unit.limits.submission_mb * 2**20
    intake(submission, work / "student", unit.student_files, IntakeLimits(max_total_bytes=max_bytes, max_file_bytes=max_bytes))
    return compose(unit, work / "student", work).code


@contextlib.contextmanager
def gpu_lock() -> Iterator[None]:
    """Hold the machine-wide lock of the visible GPUs: one benchmark at a time on them."""
    visible = re.sub(r"[^A-Za-z0-9,-]", "", os.environ.get("CUDA_VISIBLE_DEVICES", "all")) or "none"
    folder = Path(os.environ.get(LOCK_ENV, tempfile.gettempdir()))
    path = folder / f"lmcourse-bench-gpu-{visible[:64]}.lock"
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
