"""``lmcourse submit``: package the files a student owns into a submission zip.

Only files matching the unit's ``student_files`` go in; caches, checkpoints, data and
links stay out. A manifest (``.lmcourse/submission.json``) records each file's sha256 and the
check that ran before packaging, so staff can see what the student saw.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .. import __version__
from ..errors import SubmissionError
from ..handout.archive import sha256_bytes, write_zip
from ..handout.files import matches, walk
from ..handout.info import HandoutInfo
from .check import CheckResult, check

SUBMISSION_MANIFEST = ".lmcourse/submission.json"
#: Never submitted, even inside an owned folder: caches, weights, data.
EXCLUDED = [
    "*/__pycache__/*", "*.pyc", "*/.ipynb_checkpoints/*", "*.DS_Store",
    "*.pt", "*.pth", "*.ckpt", "*.safetensors", "*.bin", "*.npy", "*.npz", "*.pkl", "*.pickle",
    "*/checkpoints/*", "*/data/*", "*/wandb/*",
]


@dataclass
class SubmitResult:
    path: Path
    files: list[str]
    size: int
    check: CheckResult | None

    def as_json(self) -> dict[str, Any]:
        return {
            "submission": str(self.path),
            "files": self.files,
            "bytes": self.size,
            "check": self.check.as_json() if self.check else None,
        }


def owned_files(root: Path, info: HandoutInfo) -> list[tuple[PurePosixPath, bytes]]:
    """The student's files under ``root``: matched by ``student_files``, minus :data:`EXCLUDED`."""
    files = []
    for rel, path in walk(root, skip_links=True, skip_hidden=True):
        if matches(rel, info.student_files) and not matches(PurePosixPath("_") / rel, EXCLUDED):
            files.append((rel, path.read_bytes()))
    return files


def submit(start: Path | None = None, *, out: Path | None = None, run_check: bool = True) -> SubmitResult:
    """Check (unless told not to), then write the submission zip; returns where it is."""
    root, info = HandoutInfo.find(start)
    result = check(root) if run_check else None
    files = owned_files(root, info)
    if not files:
        raise SubmissionError(f"none of your files ({', '.join(info.student_files)}) were found in {root}.")
    size = sum(len(data) for _, data in files)
    cap = info.submission_mb * 1024 * 1024
    if size > cap:
        biggest = max(files, key=lambda f: len(f[1]))
        raise SubmissionError(
            f"your files total {size / 2**20:.1f} MiB, over the {info.submission_mb} MiB cap "
            f"(largest: {biggest[0]}, {len(biggest[1]) / 2**20:.1f} MiB)."
        )
    manifest = {
        "unit": info.unit,
        "package": info.package,
        "lmcourse_version": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "files": {str(rel): sha256_bytes(data) for rel, data in files},
        "check": result.as_json() if result else None,
    }
    entries = [(rel, data, False) for rel, data in files]
    entries.append((PurePosixPath(SUBMISSION_MANIFEST), json.dumps(manifest, indent=2).encode(), False))
    path = (out or root / "submission.zip").resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_zip(path, entries)
    return SubmitResult(path, [str(rel) for rel, _ in files], path.stat().st_size, result)
