"""Run one pytest session in a child process and read back its report.

Used by ``lmcourse check`` (a student's public tests) and ``handout verify`` (the reference and
the stubs). The child runs with our plugin named explicitly and third-party plugin autoload
off, so a stray plugin on a student's machine cannot change what a test means.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .report import SessionReport

PLUGIN = "lmcourse.grader.plugin"
#: Plugins the session needs, loaded by name since autoload is off.
NEEDED_PLUGINS = ("xdist.plugin", "xdist.looponfail", "pytest_timeout")


@dataclass(frozen=True)
class SessionRun:
    report: SessionReport
    returncode: int
    output: str


def run_pytest(
    root: Path,
    paths: list[str],
    *,
    workers: int | str = "auto",
    timeout_s: float | None = None,
    extra: list[str] | None = None,
    wall_clock_s: float | None = None,
) -> SessionRun:
    """Run pytest on ``paths`` with ``root`` as the working directory and rootdir."""
    with tempfile.TemporaryDirectory(prefix="lmcourse-") as tmp:
        report_path = Path(tmp) / "report.json"
        cmd = [
            sys.executable, "-m", "pytest", *paths,
            "-p", PLUGIN, *(arg for name in NEEDED_PLUGINS for arg in ("-p", name)),
            "-p", "no:cacheprovider",
            f"--rootdir={root}", "-q", "--no-header", "-rN", "--color=no",
            f"--lmcourse-report={report_path}",
        ]
        if workers not in (0, "0", 1, "1"):
            cmd += ["-n", str(workers)]
        if timeout_s:
            cmd += [f"--timeout={timeout_s:g}"]
        cmd += extra or []
        env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        proc = subprocess.run(
            cmd, cwd=root, env=env, capture_output=True, text=True, timeout=wall_clock_s, check=False
        )
        if report_path.is_file():
            report = SessionReport.model_validate_json(report_path.read_text(encoding="utf-8"))
        else:  # pytest died before the session finished (usage error, crash)
            report = SessionReport(exit_status=proc.returncode)
        return SessionRun(report, proc.returncode, proc.stdout + proc.stderr)
