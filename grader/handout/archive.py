"""Byte-identical zips and sha256 manifests.

Same files in, same bytes out: entries are sorted, timestamps fixed at 1980-01-01 (the zip
epoch), permissions normalised, compression level pinned. A manifest lists the sha256 of every
file in ``sha256sum`` format, so students and staff can check a handout with standard tools.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_zip(path: Path, files: Iterable[tuple[PurePosixPath, bytes, bool]], prefix: str = "") -> None:
    """Write ``(relative path, content, executable)`` entries, sorted, under ``prefix/``."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for rel, data, executable in sorted(files, key=lambda f: str(f[0])):
            info = zipfile.ZipInfo(f"{prefix}/{rel}" if prefix else str(rel), date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.create_system = 3  # unix, so the permission bits are honoured on every platform
            zf.writestr(info, data)


def manifest_text(files: Iterable[tuple[PurePosixPath, bytes]]) -> str:
    """``sha256sum``-style lines for every file, sorted by path."""
    lines = [f"{sha256_bytes(data)}  {rel}" for rel, data in sorted(files, key=lambda f: str(f[0]))]
    return "\n".join(lines) + "\n"
