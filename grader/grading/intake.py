"""Unpack one submission safely into a fresh folder, keeping only the files the student owns.

A submission is hostile input. :func:`intake` accepts a zip, a tar (plain, gzip, bzip2 or xz)
or a folder, and writes only regular files whose paths match the unit's ``owned`` globs;
everything else the student sent is listed in :attr:`IntakeReport.ignored`. Any entry that
could harm the grader makes the whole submission fail with one
:class:`~lmcourse.grader.errors.SubmissionError` sentence naming the entry:

- **names** -- absolute paths, ``..``, backslashes and drive letters could write outside the
  folder ("zip slip"); control and invisible characters hide names in reports and terminals;
  paths are capped in depth, length and per-component bytes;
- **types** -- links could make the grader read or write files it should not (a symlink to
  ``/etc/shadow``, a hard link to the hidden tests); devices, FIFOs and sockets can block or
  leak. Only regular files and folders are accepted, whoever owns the entry;
- **duplicates** -- two entries with the same path, or paths that differ only in case (or
  Unicode normalisation), or a file that is also a folder, are refused: which one wins would
  depend on the order of extraction or on the file system (macOS and Windows fold case);
- **sizes** -- counted while streaming, never taken from headers: a file stops at
  ``max_file_bytes``, the submission at ``max_total_bytes``, so a zip bomb costs at most the
  cap plus one chunk of disk and a chunk of memory. Every entry, ignored or not, counts against
  ``max_files``. Nested archives are plain files: never opened;
- **caches** -- ``__pycache__/`` and ``*.pyc`` are never kept (skipped in folders, listed as
  ignored in archives): a shipped ``.pyc`` can run code that differs from the ``.py`` beside it.

Everything is written into a temporary folder beside ``dest`` and renamed into place at the end,
so a failed intake leaves nothing at ``dest``. Folders are 0o755 and files 0o644 whatever the
archive says: no executable or setuid bits, owned by the current user.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import IO

from ..errors import LmcourseError, SubmissionError
from ..handout.files import matches

CHUNK = 1 << 16  # bytes read and written at a time: the most a cap can be overshot in memory
#: Headers a well-formed archive may add per entry (tar: header, long-name record, padding),
#: plus a flat allowance for end-of-archive blocks; see :func:`_archive_cap`.
HEADER_BYTES_PER_ENTRY = 4096
HEADER_BYTES_FLAT = 64 * 1024
CACHE_DIR = "__pycache__"
CACHE_SUFFIXES = (".pyc", ".pyo")
#: Unicode categories refused in names: control (C0, DEL, C1), format (bidi overrides,
#: zero-width), surrogates (bytes that were not UTF-8), line and paragraph separators.
BAD_CHAR_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
DRIVE_LETTER = re.compile(r"[A-Za-z]:")
#: Errors an archive or file-system library raises on bad input; only read calls are wrapped.
LIBRARY_ERRORS = (
    zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError,
    EOFError, OSError, ValueError, NotImplementedError,
)
ONLY_REGULAR = "only regular files and folders are accepted"


@dataclass(frozen=True)
class IntakeLimits:
    max_total_bytes: int = 20 * 2**20  # uncompressed, all kept files together
    max_files: int = 2000  # every entry: files, folders, ignored ones
    max_file_bytes: int = 10 * 2**20
    max_path_depth: int = 16  # components, the file name included: a/b/c.py is 3
    max_path_chars: int = 255


@dataclass(frozen=True)
class IntakeReport:
    kept: list[str]  # posix relative paths written, sorted
    ignored: list[str]  # files not owned by the student (not an error; reported), sorted
    total_bytes: int


@dataclass(frozen=True)
class _Entry:
    name: str  # as the source spells it, for messages
    kind: str  # "file", "dir", or why it is refused ("is a symbolic link")
    open: Callable[[], IO[bytes] | None] | None = None  # the contents, for files


Entries = Generator[_Entry, None, None]


class _Unreadable(Exception):
    """A library could not read the source: corrupt, truncated or unsupported."""


def intake(source: Path, dest: Path, owned: list[str], limits: IntakeLimits = IntakeLimits()) -> IntakeReport:
    """Unpack ``source`` into ``dest`` (absent or empty), keeping the files matching ``owned``."""
    source, dest = Path(source), Path(dest)
    if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
        raise LmcourseError(f"{dest} must not exist or must be an empty folder.")
    if source.is_dir() and dest.resolve().is_relative_to(source.resolve()):
        raise LmcourseError(f"{dest} is inside the submission folder {source}; it would unpack into itself.")
    label = source.name or str(source)
    what, entries = _open_source(source, label, limits)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.intake-", dir=dest.parent))
    try:
        try:
            with closing(entries):
                report = _unpack(entries, tmp, owned, limits, label)
        except _Unreadable as e:
            raise SubmissionError(f"{label} is not a readable {what} ({e}).") from None
        os.chmod(tmp, 0o755)
        os.rename(tmp, dest)  # atomic; replaces an empty dest
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


# --- sources -------------------------------------------------------------------------------


def _open_source(source: Path, label: str, limits: IntakeLimits) -> tuple[str, Entries]:
    """What ``source`` is, judged by its bytes and never by its extension, and its entries."""
    if source.is_dir():
        return "folder", _folder_entries(source)
    if not source.is_file():
        raise SubmissionError(f"{label} is not a zip or tar archive or a folder.")
    with source.open("rb") as f:
        head = f.read(512)
    kind = "zip" if head.startswith((b"PK\x03\x04", b"PK\x05\x06")) else _tar_compression(head)
    if kind is None:
        raise SubmissionError(f"{label} is not a zip or tar archive or a folder.")
    # The archive file itself is capped too: a zip's central directory is parsed whole before
    # the first entry can be counted, so a huge one must be refused before it is opened.
    size, cap = source.stat().st_size, _archive_cap(limits)
    if size > cap:
        raise SubmissionError(f"{label} is {_size(size)}, over the {_size(cap)} a submission archive may take.")
    if kind == "zip":
        return "zip archive", _zip_entries(source)
    return "tar archive", _tar_entries(source, kind, label, cap)


def _tar_compression(head: bytes) -> str | None:
    """``gz``, ``bz2``, ``xz`` or ``tar`` from the magic bytes; None if not a tar at all."""
    for magic, kind in ((b"\x1f\x8b", "gz"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz")):
        if head.startswith(magic):
            return kind
    if head[257:262] == b"ustar" or head == bytes(512):  # a POSIX header, or an empty archive
        return "tar"
    return None


def _archive_cap(limits: IntakeLimits) -> int:
    """The most bytes a (decompressed) archive may take: the files it may hold, plus headers."""
    return limits.max_total_bytes + limits.max_files * HEADER_BYTES_PER_ENTRY + HEADER_BYTES_FLAT


def _zip_entries(path: Path) -> Entries:
    with _reading(), zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            yield _Entry(info.filename, _zip_kind(info), partial(zf.open, info))


def _zip_kind(info: zipfile.ZipInfo) -> str:
    """A zip has no entry types: a unix creator stores one in the mode bits of external_attr."""
    fmt = stat.S_IFMT(info.external_attr >> 16)
    if fmt not in (0, stat.S_IFREG, stat.S_IFDIR):
        return _special(fmt)
    if info.flag_bits & 0x1:
        return "is encrypted"
    # zipfile decompresses bzip2 and lzma without an output bound: a few KiB of bzip2 can
    # become gigabytes in memory before the streaming count sees them. Deflate is bounded.
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return f"uses compression method {info.compress_type}; only stored and deflated entries are accepted"
    return "dir" if info.is_dir() else "file"


def _tar_entries(path: Path, compression: str, label: str, cap: int) -> Entries:
    # A tar is read as a stream ("r|"): the data of each member right after its header, before
    # the next header. Ignored members and headers must be read through too, so the whole
    # decompressed stream is capped, not only the files that are kept.
    with _reading(), path.open("rb") as raw, _decompressed(raw, compression) as plain:
        stream = _CappedStream(plain, cap, label)
        with tarfile.open(fileobj=stream, mode="r|") as tf:  # type: ignore[call-overload]
            for member in tf:
                yield _Entry(member.name, _tar_kind(member), partial(tf.extractfile, member))


def _decompressed(raw: io.BufferedReader, compression: str) -> io.BufferedIOBase:
    """The tar inside ``raw``. These readers bound every read; tarfile's own "r|gz" does not
    (one read of a few KiB of a bomb could fill memory), so tarfile only ever sees plain tar."""
    if compression == "gz":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if compression == "bz2":
        return bz2.BZ2File(raw)
    if compression == "xz":
        return lzma.LZMAFile(raw)
    return raw


def _tar_kind(member: tarfile.TarInfo) -> str:
    kinds = {
        tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "dir",
        tarfile.SYMTYPE: "is a symbolic link", tarfile.LNKTYPE: "is a hard link",
        tarfile.CHRTYPE: "is a device", tarfile.BLKTYPE: "is a device", tarfile.FIFOTYPE: "is a FIFO",
    }
    return kinds.get(member.type, "is not a regular file or folder")  # sparse files, etc.


def _folder_entries(root: Path) -> Entries:
    """Every entry under ``root`` by lstat: links are reported, never followed."""

    def fail(error: OSError) -> None:
        raise error  # os.walk would otherwise skip an unreadable folder silently

    with _reading():
        for folder, dirs, files in os.walk(root, onerror=fail):  # followlinks=False
            here = PurePosixPath(Path(folder).relative_to(root).as_posix())
            # A handout folder carries .venv, .git and .lmcourse: never the student's own files,
            # and a venv alone would blow the file cap.
            dirs[:] = sorted(d for d in dirs if d != CACHE_DIR and not d.startswith("."))
            # os.walk lists a symlink to a folder among dirs; yielding it first refuses it
            # before os.walk could look inside.
            for name in dirs:
                yield _Entry(str(here / name), _folder_kind(Path(folder, name)))
            for name in sorted(files):
                if not name.endswith(CACHE_SUFFIXES):
                    path = Path(folder, name)
                    yield _Entry(str(here / name), _folder_kind(path), partial(_open_plain, path))


def _folder_kind(path: Path) -> str:
    st = path.lstat()
    if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
        return "is a hard link"  # the same bytes as a file elsewhere, maybe one we must not read
    if stat.S_ISREG(st.st_mode):
        return "file"
    return "dir" if stat.S_ISDIR(st.st_mode) else _special(stat.S_IFMT(st.st_mode))


def _open_plain(path: Path) -> IO[bytes]:
    """Open a file checked by lstat without following a link swapped in since (O_NOFOLLOW), and
    without blocking on a FIFO (O_NONBLOCK); then check what was opened."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
        os.close(fd)
        raise SubmissionError(f"{path.name} changed while it was read; only regular files are accepted.")
    return os.fdopen(fd, "rb")


def _special(fmt: int) -> str:
    names = {
        stat.S_IFLNK: "is a symbolic link", stat.S_IFCHR: "is a device", stat.S_IFBLK: "is a device",
        stat.S_IFIFO: "is a FIFO", stat.S_IFSOCK: "is a socket",
    }
    return names.get(fmt, "is not a regular file or folder")


# --- unpacking -----------------------------------------------------------------------------


def _unpack(entries: Iterable[_Entry], tmp: Path, owned: list[str], limits: IntakeLimits, label: str) -> IntakeReport:
    kept: list[str] = []
    ignored: list[str] = []
    claims = _Claims()
    made: set[PurePosixPath] = set()
    total = 0
    for count, entry in enumerate(entries, start=1):
        if count > limits.max_files:  # checked as entries arrive, so a huge archive stops early
            raise SubmissionError(f"{label} has more than {limits.max_files} entries.")

        refuse = partial(_refusal, entry.name, label)
        rel = _relative_path(entry.name, limits, refuse)
        if entry.kind not in ("file", "dir"):
            raise refuse(f"{entry.kind}; {ONLY_REGULAR}" if entry.kind.startswith("is a") else entry.kind)
        if rel is None:
            if entry.kind == "dir":
                continue  # "./", the archive's own root
            raise refuse("has an empty name")
        claims.claim(rel, entry.kind == "dir", refuse)
        if entry.kind == "dir":
            continue  # folders are made as the files inside them need them
        if _is_cache(rel) or not matches(rel, owned):
            ignored.append(str(rel))
            continue
        assert entry.open is not None  # every file has contents
        total += _write(entry.open, tmp, rel, made, limits, total, label, refuse)
        kept.append(str(rel))
    if not kept:
        found = f"; it holds only {len(ignored)} other file(s), such as {_show(ignored[0])}" if ignored else ""
        raise SubmissionError(f"{label} contains none of the expected files ({', '.join(owned)}){found}.")
    return IntakeReport(sorted(kept), sorted(ignored), total)


def _refusal(name: str, label: str, problem: str) -> SubmissionError:
    return SubmissionError(f"entry {_show(name)} in {label} {problem}.")


def _relative_path(name: str, limits: IntakeLimits, refuse: Callable[[str], SubmissionError]) -> PurePosixPath | None:
    """The entry's path inside the submission, or why it is refused; None for the root itself."""
    if any(unicodedata.category(c) in BAD_CHAR_CATEGORIES for c in name):
        raise refuse("contains a control, invisible or non-UTF-8 character")
    if "\\" in name:  # a Windows separator: "..\\x" climbs out wherever backslashes split paths
        raise refuse("contains a backslash")
    if name.startswith("/"):  # zip slip: extraction would write wherever the name says
        raise refuse("is an absolute path")
    if DRIVE_LETTER.match(name):
        raise refuse("starts with a drive letter")
    parts = [p for p in name.split("/") if p not in ("", ".")]  # "./a//b" is a/b, as tar writes it
    if ".." in parts:  # zip slip: "a/../../b" lands outside the folder
        raise refuse("climbs out of the submission with '..'")
    if not parts:
        return None
    if len(parts) > limits.max_path_depth:
        raise refuse(f"is nested deeper than {limits.max_path_depth} levels")
    rel = "/".join(parts)
    if len(rel) > limits.max_path_chars:
        raise refuse(f"has a path longer than {limits.max_path_chars} characters")
    if any(len(p.encode()) > 255 for p in parts):  # NAME_MAX on Linux and macOS
        raise refuse("has a file or folder name longer than 255 bytes")
    return PurePosixPath(rel)


class _Claims:
    """Paths seen so far, compared as a case-insensitive file system would compare them."""

    def __init__(self) -> None:
        self.files: dict[str, PurePosixPath] = {}
        self.dirs: dict[str, PurePosixPath] = {}

    def claim(self, rel: PurePosixPath, is_dir: bool, refuse: Callable[[str], SubmissionError]) -> None:
        for parent in reversed(rel.parents[:-1]):  # a/b/c.py claims a and a/b as folders
            if _fold(parent) in self.files:
                raise refuse(f"is inside {_show(str(self.files[_fold(parent)]))}, which is a file")
            self._claim_case(self.dirs, parent, refuse)
        if _fold(rel) in (self.files if is_dir else self.dirs):
            raise refuse("is both a file and a folder")
        if not is_dir and self.files.get(_fold(rel)) == rel:
            raise refuse("appears twice")  # a zip can hold one name twice; which copy wins?
        self._claim_case(self.dirs if is_dir else self.files, rel, refuse)

    @staticmethod
    def _claim_case(seen: dict[str, PurePosixPath], path: PurePosixPath, refuse: Callable[[str], SubmissionError]) -> None:
        other = seen.setdefault(_fold(path), path)
        if other != path:
            raise refuse(f"clashes with {_show(str(other))} on case-insensitive file systems")


def _fold(rel: PurePosixPath) -> str:
    return unicodedata.normalize("NFC", str(rel)).casefold()


def _is_cache(rel: PurePosixPath) -> bool:
    return CACHE_DIR in rel.parts or rel.name.endswith(CACHE_SUFFIXES)


def _write(
    opener: Callable[[], IO[bytes] | None], tmp: Path, rel: PurePosixPath, made: set[PurePosixPath], limits: IntakeLimits,
    total: int, label: str, refuse: Callable[[str], SubmissionError],
) -> int:
    """Stream one file to disk, counting real bytes (headers can lie); returns its size."""
    for parent in reversed(rel.parents[:-1]):
        if parent not in made:
            os.mkdir(tmp / parent, 0o755)
            os.chmod(tmp / parent, 0o755)  # whatever the umask
            made.add(parent)
    # O_EXCL: never overwrite; O_NOFOLLOW: never write through a link (there should be none).
    fd = os.open(tmp / rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    os.fchmod(fd, 0o644)
    size = 0
    with os.fdopen(fd, "wb") as out:
        with _reading():
            source = opener()
        assert source is not None  # tarfile returns None for members that are not files
        with source:
            for block in _chunks(source):
                size += len(block)
                if size > limits.max_file_bytes:
                    raise refuse(f"is larger than {_size(limits.max_file_bytes)}")
                if total + size > limits.max_total_bytes:
                    raise SubmissionError(
                        f"{label} unpacks to more than {_size(limits.max_total_bytes)} (reached at entry {_show(str(rel))})."
                    )
                out.write(block)
    return size


# --- reading -------------------------------------------------------------------------------


class _CappedStream:
    """A read-only stream that fails once more than ``cap`` bytes have come out of it, and never
    asks the stream below for more than the room left (so no huge buffer is ever allocated)."""

    def __init__(self, raw: io.BufferedIOBase, cap: int, label: str) -> None:
        self.raw, self.cap, self.label, self.count = raw, cap, label, 0

    def read(self, n: int = -1) -> bytes:
        room = self.cap - self.count + 1
        data = self.raw.read(room if n is None or n < 0 else min(n, room))
        self.count += len(data)
        if self.count > self.cap:
            raise SubmissionError(f"{self.label} unpacks to more than {_size(self.cap)} of tar data.")
        return data


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while True:
        with _reading():
            block = stream.read(CHUNK)
        if not block:
            return
        yield block


@contextmanager
def _reading() -> Iterator[None]:
    """Wrap a read of the source: library errors mean a bad source, not a grader bug.
    Only reads are wrapped (the entry generators and each chunk read), so an error writing
    ``dest`` (a full disk) keeps its traceback."""
    try:
        yield
    except LIBRARY_ERRORS as e:
        raise _Unreadable(str(e) or type(e).__name__) from e


def _show(name: str) -> str:
    """A name safe to print: quoted, control characters escaped, long names shortened."""
    return repr(name if len(name) <= 120 else name[:120] + "...")


def _size(n: int) -> str:
    return f"{n / 2**20:.3g} MiB" if n >= 2**20 else f"{n} bytes"
