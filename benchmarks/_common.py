"""Helpers the benchmarks share: importing the reference without editing it, and machine notes."""

from __future__ import annotations

import importlib
import os
import platform
import sys
import tempfile
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "reference" / "basics"
PACKAGE = "lmc_basics"


def import_reference(*modules: str) -> list[types.ModuleType]:
    """Import ``reference/basics/<module>.py`` as ``lmc_basics.<module>``, for each name given.

    The reference imports its siblings relatively, so it must live in a package: a temporary
    directory on ``sys.path`` holds a symlink ``lmc_basics -> reference/basics``. The package
    ``__init__`` is *not* run: it imports every unit (torch, rich, regex, yaml, safetensors),
    which would add seconds and hundreds of MB to a tokenizer benchmark and deps to the GPU one.
    A bare package object with the right ``__path__`` stands in for it.
    """
    if PACKAGE not in sys.modules:
        root = Path(tempfile.mkdtemp(prefix="lmc-bench-"))
        (root / PACKAGE).symlink_to(REFERENCE, target_is_directory=True)
        sys.path.insert(0, str(root))
        package = types.ModuleType(PACKAGE)
        package.__path__ = [str(root / PACKAGE)]
        sys.modules[PACKAGE] = package
    return [importlib.import_module(f"{PACKAGE}.{name}") for name in modules]


def machine() -> dict:
    """CPU count, the CPUs this process may use, and the 1/5/15-minute load averages."""
    return {
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def utf8_prefix(path: str | Path, min_bytes: int) -> str:
    """The first ``min_bytes`` of a UTF-8 file (all of it if smaller), extended to the next newline."""
    data = Path(path).read_bytes()
    end = data.find(b"\n", min_bytes)
    return data[: len(data) if end == -1 else end + 1].decode("utf-8")
