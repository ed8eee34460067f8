"""Run one pytest session in a child process and read back its report.

Used by ``lmcourse check`` (a student's public tests), ``handout verify`` (reference and stubs)
and the grader (trusted tests driving a sandboxed worker). The child runs with our plugin named
explicitly and third-party plugin autoload off, so a stray plugin cannot change what a test
means. It gets its own process group: past the wall clock the whole group is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .procs import die_with_parent
from .report import SessionReport

PLUGIN = "lmcourse.grader.plugin"
#: Plugins the session needs, loaded by name since autoload is off.
NEEDED_PLUGINS = ("xdist.plugin", "xdist.looponfail", "pytest_timeout")
OUTPUT_CHARS = 200_000
GRACE_S = 10.0  # after the wall clock: time to write the report and close sandboxes


@dataclass(frozen=True)
class SessionRun:
    report: SessionReport
    returncode: int | None  # None when the wall clock killed the session
    output: str

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def run_pytest(
    root: Path,
    paths: list[str],
    *,
    workers: int | str = "auto",
    timeout_s: float | None = None,
    extra: list[str] | None = None,
    wall_clock_s: float | None = None,
    isolated: bool = False,
    env: dict[str, str] | None = None,
) -> SessionRun:
    """Run pytest on ``paths`` with ``root`` as the working directory and rootdir.

    ``isolated`` runs the interpreter with ``-I`` (no environment variables, no user site, no
    current folder on ``sys.path``): how the grader runs its trusted session.
    """
    with tempfile.TemporaryDirectory(prefix="lmcourse-") as tmp:
        report_path = Path(tmp) / "report.json"
        cmd = [
            sys.executable, *(["-I"] if isolated else []), "-m", "pytest", *paths,
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
        # A pytest of our own (the toolkit's tests, an xdist worker) must not leak its PYTEST_*
        # variables into the child session: they would change what the child's tests see.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        full_env = {**inherited, **(env or {}), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        returncode, output = _run_group(cmd, root, full_env, wall_clock_s)
        if report_path.is_file():
            report = SessionReport.model_validate_json(report_path.read_text(encoding="utf-8"))
        else:  # pytest died before the session finished (usage error, crash, wall clock)
            report = SessionReport(exit_status=-1 if returncode is None else returncode)
        return SessionRun(report, returncode, output)


def _run_group(cmd: list[str], cwd: Path, env: dict[str, str], wall_clock_s: float | None) -> tuple[int | None, str]:
    """Run ``cmd`` in a new session; past ``wall_clock_s`` kill its whole process group."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent
        )
        try:
            returncode: int | None = proc.wait(timeout=wall_clock_s)
        except subprocess.TimeoutExpired:
            returncode = None
            # Interrupt first, so pytest writes its report (every test that did not run shows as
            # such) and fixtures close their sandboxes; then kill whatever is left.
            _signal_group(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        finally:
            _kill_group(proc.pid)  # stragglers too (xdist workers, their children)
            proc.wait()
        log.seek(0)
        data = log.read()
    text = data.decode("utf-8", errors="replace")
    return returncode, text if len(text) <= OUTPUT_CHARS else text[-OUTPUT_CHARS:]


def _kill_group(pgid: int) -> None:
    _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
