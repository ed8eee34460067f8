"""Snapshots of the reference's outputs, which hidden tests compare a student's against.

Staff scripts (``assignments/*/scripts/make_*snapshots.py``) regenerate them; they are written
so that a rerun with the same library versions is byte-identical, and a diff in git means the
reference's numbers moved.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

#: Every member gets this timestamp: the zip's bytes depend on the arrays alone.
FIXED_DATE = (2027, 1, 1, 0, 0, 0)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An ``.npz`` that ``np.load`` reads (no pickles), members sorted, timestamps fixed."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.save(buffer, arrays[key], allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buffer.getvalue())
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")
