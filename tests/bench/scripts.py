"""Run a script of the systems reference as a student runs it: ``python -m lmc_systems.<name>``.

The reference imports itself relatively and finds the basics unit by its package name, so it
needs to sit in packages with the course's names: a folder of symbolic links provides them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..helpers import REPO


def run_script(name: str, args: list[str], tmp: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    packages = tmp / "packages"
    packages.mkdir(exist_ok=True)
    for unit in ("systems", "basics"):
        link = packages / f"lmc_{unit}"
        if not link.exists():
            link.symlink_to(REPO / "reference" / unit, target_is_directory=True)
    env = os.environ | {"PYTHONPATH": str(packages)}
    return subprocess.run([sys.executable, "-m", f"lmc_systems.{name}", *args], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
