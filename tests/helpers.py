"""Helpers the toolkit's tests share: paths, and ways to run the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from lmcourse.grader.cli import cli

REPO = Path(__file__).resolve().parent.parent
MINICOURSE = Path(__file__).resolve().parent / "minicourse"
LMCOURSE = [sys.executable, "-m", "lmcourse.grader"]


def invoke(*args: str | Path) -> Result:
    """Run the CLI in-process, as click's CliRunner does."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def run_lmcourse(*args: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a child process, as a user's shell would."""
    return subprocess.run(
        [*LMCOURSE, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
