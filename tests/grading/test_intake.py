"""intake: hostile submissions are refused in one sentence and leave nothing behind.

Every hostile archive is built here with zipfile's and tarfile's raw APIs (ZipInfo modes,
TarInfo types, patched header bytes), so each test shows exactly what it attacks.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import struct
import tarfile
import time
import tracemalloc
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from lmcourse.grader.errors import LmcourseError, SubmissionError
from lmcourse.grader.grading import intake as intake_module
from lmcourse.grader.grading.intake import CHUNK, IntakeLimits, IntakeReport, intake

OWNED = ["lmc_basics/**", "tests/adapters.py"]
MODEL = b"def forward(x):\n    return x\n"
ADAPTERS = b"from lmc_basics.model import forward\n"
MiB = 2**20
DEFAULTS = IntakeLimits()

# --- building archives ---------------------------------------------------------------------


def zip_info(name: str, mode: int = 0o100644, compress: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = mode << 16  # the unix mode lives in the high 16 bits
    info.create_system = 3  # unix
    info.compress_type = compress
    return info


def make_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names, which we want
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in entries:
                zf.writestr(name if isinstance(name, zipfile.ZipInfo) else zip_info(name), data)
    return path


def tar_info(name: str, type: bytes = tarfile.REGTYPE, size: int = 0, **fields: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode = type, size, 0o644
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], mode: str = "w") -> Path:
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
        for info, data in members:
            if info.isreg():
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def tar_file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tar_info(name), data


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


GOOD_FILES = {
    "lmc_basics/model.py": MODEL,
    "lmc_basics/nn/layers.py": b"# layers\n",
    "tests/adapters.py": ADAPTERS,
    "tests/test_model.py": b"def test(): assert False\n",  # the course's, never the student's
    ".lmcourse/submission.json": b"{}",
    "README.md": b"# hi\n",
}
KEPT = ["lmc_basics/model.py", "lmc_basics/nn/layers.py", "tests/adapters.py"]
IGNORED = [".lmcourse/submission.json", "README.md", "tests/test_model.py"]


# --- checking outcomes ---------------------------------------------------------------------


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """Where the submission goes: inside a folder of its own, so leftovers are easy to see."""
    (tmp_path / "graded").mkdir()
    return tmp_path / "graded" / "submission"


def refused(source: Path, dest: Path, owned: list[str] = OWNED, limits: IntakeLimits = DEFAULTS) -> str:
    """Intake must fail with one sentence and leave neither ``dest`` nor a temp folder."""
    with pytest.raises(SubmissionError) as caught:
        intake(source, dest, owned, limits)
    message = str(caught.value)
    assert "\n" not in message and message.endswith("."), message
    assert message.count(". ") == 0, f"more than one sentence: {message}"
    assert list(dest.parent.iterdir()) == [], "intake left something behind"
    return message


def check_written(dest: Path, report: IntakeReport, expected: dict[str, bytes]) -> None:
    assert report.kept == sorted(expected)
    assert report.total_bytes == sum(len(d) for d in expected.values())
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    found = {}
    for folder, dirs, files in os.walk(dest):
        for d in dirs:
            assert stat.S_IMODE(os.lstat(Path(folder, d)).st_mode) == 0o755
        for f in files:
            st = os.lstat(Path(folder, f))
            assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644, f  # never x, never setuid
            assert st.st_uid == os.getuid()
            found[Path(folder, f).relative_to(dest).as_posix()] = Path(folder, f).read_bytes()
    assert found == expected
    assert [p.name for p in dest.parent.iterdir()] == [dest.name], "a temp folder was left behind"


# --- the happy paths -----------------------------------------------------------------------


def test_zip_keeps_owned_files_and_lists_the_rest(tmp_path: Path, dest: Path) -> None:
    entries: list[tuple[str | zipfile.ZipInfo, bytes]] = [(zip_info("lmc_basics/"), b"")]  # a folder entry
    entries += [(zip_info(rel, mode=0o104755), data) for rel, data in GOOD_FILES.items()]  # setuid + x bits
    entries += [(zip_info("lmc_basics/__pycache__/model.cpython-311.pyc"), b"\x00bytecode")]
    report = intake(make_zip(tmp_path / "s.zip", entries), dest, OWNED)
    check_written(dest, report, {rel: GOOD_FILES[rel] for rel in KEPT})
    assert report.ignored == sorted([*IGNORED, "lmc_basics/__pycache__/model.cpython-311.pyc"])


def test_tar_keeps_owned_files_and_lists_the_rest(tmp_path: Path, dest: Path) -> None:
    members = [(tar_info(".", tarfile.DIRTYPE), b""), (tar_info("./lmc_basics", tarfile.DIRTYPE), b"")]
    members += [(tar_info(f"./{rel}", mode=0o6777, uid=0, gid=0), data) for rel, data in GOOD_FILES.items()]
    report = intake(make_tar(tmp_path / "s.tar", members), dest, OWNED)
    check_written(dest, report, {rel: GOOD_FILES[rel] for rel in KEPT})
    assert report.ignored == IGNORED


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz"])
def test_compressed_tars_are_recognised_by_content_not_name(tmp_path: Path, dest: Path, mode: str) -> None:
    source = make_tar(tmp_path / "submission.bin", [tar_file(rel, data) for rel, data in GOOD_FILES.items()], mode)
    report = intake(source, dest, OWNED)
    check_written(dest, report, {rel: GOOD_FILES[rel] for rel in KEPT})


def test_a_zip_named_tgz_is_still_a_zip(tmp_path: Path, dest: Path) -> None:
    source = make_zip(tmp_path / "s.tgz", [("lmc_basics/model.py", MODEL)])
    assert intake(source, dest, OWNED).kept == ["lmc_basics/model.py"]


def test_folder_keeps_owned_files_and_skips_caches(tmp_path: Path, dest: Path) -> None:
    folder = write_tree(tmp_path / "work", {
        **GOOD_FILES,
        "lmc_basics/__pycache__/model.cpython-311.pyc": b"\x00",
        "lmc_basics/stale.pyc": b"\x00",
        ".venv/lib/site.py": b"# a student's virtualenv, never theirs to submit",
    })
    (folder / "lmc_basics/model.py").chmod(0o4755)
    report = intake(folder, dest, OWNED)
    check_written(dest, report, {rel: GOOD_FILES[rel] for rel in KEPT})
    assert report.ignored == [i for i in IGNORED if not i.startswith(".")]  # dot-folders are pruned unseen
    assert (folder / "lmc_basics/model.py").read_bytes() == MODEL  # the source is untouched


def test_nested_archives_are_plain_files(tmp_path: Path, dest: Path) -> None:
    inner = make_zip(tmp_path / "inner.zip", [("lmc_basics/x.py", b"x")]).read_bytes()
    report = intake(make_zip(tmp_path / "s.zip", [("lmc_basics/data.zip", inner)]), dest, OWNED)
    assert report.kept == ["lmc_basics/data.zip"]
    assert (dest / "lmc_basics/data.zip").read_bytes() == inner


def test_an_empty_dest_folder_is_fine_but_a_full_one_is_refused(tmp_path: Path, dest: Path) -> None:
    source = make_zip(tmp_path / "s.zip", [("lmc_basics/model.py", MODEL)])
    dest.mkdir()
    assert intake(source, dest, OWNED).kept == ["lmc_basics/model.py"]
    with pytest.raises(LmcourseError, match="must not exist"):
        intake(source, dest, OWNED)


def test_dest_inside_a_source_folder_is_refused(tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "work", {"lmc_basics/model.py": MODEL})
    with pytest.raises(LmcourseError, match="inside the submission folder"):
        intake(folder, folder / "graded", OWNED)
    assert sorted(p.name for p in folder.iterdir()) == ["lmc_basics"]


# --- names ---------------------------------------------------------------------------------

SLIPS = [
    ("../../etc/x", "climbs out of the submission"),
    ("lmc_basics/../../x", "climbs out of the submission"),
    ("a/../../b", "climbs out of the submission"),
    ("/abs", "is an absolute path"),
    ("/etc/cron.d/evil", "is an absolute path"),
    ("..\\..\\x", "contains a backslash"),
    ("lmc_basics\\..\\..\\x.py", "contains a backslash"),
    ("C:/Windows/x", "starts with a drive letter"),
    ("c:x", "starts with a drive letter"),
]


@pytest.mark.parametrize(("name", "problem"), SLIPS)
def test_zip_slip_is_refused(tmp_path: Path, dest: Path, name: str, problem: str) -> None:
    source = make_zip(tmp_path / "s.zip", [("lmc_basics/model.py", MODEL), (zip_info(name), b"pwned")])
    message = refused(source, dest)
    assert problem in message and repr(name) in message
    assert not (tmp_path / "etc").exists() and not (tmp_path / "x").exists()


@pytest.mark.parametrize(("name", "problem"), SLIPS)
def test_tar_slip_is_refused(tmp_path: Path, dest: Path, name: str, problem: str) -> None:
    source = make_tar(tmp_path / "s.tar", [tar_file("lmc_basics/model.py", MODEL), tar_file(name, b"pwned")])
    message = refused(source, dest)
    assert problem in message and repr(name) in message


@pytest.mark.parametrize("name", [
    "lmc_basics/\x1b[2Jclear.py",  # a terminal escape
    "lmc_basics/a\nb.py",
    "lmc_basics/del\x7f.py",
    "lmc_basics/\u202eyp.evil",  # right-to-left override: shows as "live.py"
    "lmc_basics/zero\u200bwidth.py",
    "lmc_basics/\udcff.py",  # a byte that is not UTF-8
])
def test_control_and_invisible_characters_are_refused(tmp_path: Path, dest: Path, name: str) -> None:
    source = make_tar(tmp_path / "s.tar", [tar_file(name, b"x")])
    message = refused(source, dest)
    assert "control, invisible or non-UTF-8 character" in message
    assert message.isprintable(), "the refusal must not carry the raw characters"


def test_nul_in_a_tar_name_is_refused(tmp_path: Path, dest: Path) -> None:
    info = tar_info("lmc_basics/placeholder.py")
    info.pax_headers = {"path": "lmc_basics/a.py\x00/../../../etc/x"}  # pax keeps the NUL
    message = refused(make_tar(tmp_path / "s.tar", [(info, b"x")]), dest)
    assert "control" in message and "\\x00" in message


def test_nul_in_a_zip_name_is_cut_there_and_never_reaches_disk(tmp_path: Path, dest: Path) -> None:
    raw = make_zip(tmp_path / "s.zip", [("lmc_basics/a.py\x01../../x", b"x")]).read_bytes()
    source = tmp_path / "nul.zip"
    source.write_bytes(raw.replace(b"a.py\x01", b"a.py\x00"))  # both headers now hold a NUL
    report = intake(source, dest, OWNED)  # zipfile itself cuts the name at the NUL
    assert report.kept == ["lmc_basics/a.py"]
    assert [p.name for p in dest.rglob("*")] == ["lmc_basics", "a.py"]


def test_paths_too_deep_or_too_long_are_refused(tmp_path: Path, dest: Path) -> None:
    deep = "lmc_basics/" + "d/" * 15 + "x.py"  # 17 components
    assert "nested deeper than 16 levels" in refused(make_zip(tmp_path / "a.zip", [(deep, b"")]), dest)
    long = "lmc_basics/" + "/".join(["n" * 100] * 3)  # 3 components of 100: 313 characters
    assert "path longer than 255 characters" in refused(make_zip(tmp_path / "b.zip", [(long, b"")]), dest)
    wide = "lmc_basics/" + "é" * 200  # 400 bytes in one name: more than a file system takes
    assert "longer than 255 bytes" in refused(make_zip(tmp_path / "c.zip", [(wide, b"")]), dest)
    ok = "lmc_basics/" + "d/" * 14 + "x.py"  # 16 components
    assert intake(make_zip(tmp_path / "d.zip", [(ok, b"")]), dest, OWNED).kept == [ok]


# --- duplicates and clashes ----------------------------------------------------------------


@pytest.mark.parametrize(("first", "second", "problem"), [
    ("lmc_basics/model.py", "lmc_basics/model.py", "appears twice"),
    ("lmc_basics/model.py", "lmc_basics//./model.py", "appears twice"),
    ("lmc_basics/Model.py", "lmc_basics/model.py", "clashes with 'lmc_basics/Model.py' on case-insensitive"),
    ("LMC_basics/x.py", "lmc_basics/model.py", "clashes with 'LMC_basics' on case-insensitive"),
    ("lmc_basics/caf\u00e9.py", "lmc_basics/cafe\u0301.py", "case-insensitive"),  # NFC vs NFD
    ("lmc_basics/a", "lmc_basics/a/b.py", "is inside 'lmc_basics/a', which is a file"),
    ("lmc_basics/a/b.py", "lmc_basics/a", "is both a file and a folder"),
    ("README", "README", "appears twice"),  # even when not owned
])
def test_duplicates_and_clashes_are_refused(tmp_path: Path, dest: Path, first: str, second: str, problem: str) -> None:
    zipped = make_zip(tmp_path / "s.zip", [(first, b"first"), (second, b"second")])
    assert problem in refused(zipped, dest)
    tarred = make_tar(tmp_path / "s.tar", [tar_file(first, b"first"), tar_file(second, b"second")])
    assert problem in refused(tarred, dest)


def test_case_clash_in_a_folder_is_refused(tmp_path: Path, dest: Path) -> None:
    folder = write_tree(tmp_path / "work", {"lmc_basics/model.py": MODEL, "lmc_basics/MODEL.py": MODEL})
    assert "case-insensitive" in refused(folder, dest)


# --- links and special files ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["lmc_basics/model.py", "not_owned.txt"])
def test_zip_symlink_is_refused(tmp_path: Path, dest: Path, name: str) -> None:
    link = zip_info(name, mode=0o120777)  # S_IFLNK: unzip would make a link to /etc/shadow
    message = refused(make_zip(tmp_path / "s.zip", [("tests/adapters.py", ADAPTERS), (link, b"/etc/shadow")]), dest)
    assert f"entry {name!r} in s.zip is a symbolic link" in message


@pytest.mark.parametrize(("mode", "problem"), [
    (0o020644, "is a device"), (0o060644, "is a device"), (0o010644, "is a FIFO"), (0o140644, "is a socket"),
])
def test_zip_special_files_are_refused(tmp_path: Path, dest: Path, mode: int, problem: str) -> None:
    message = refused(make_zip(tmp_path / "s.zip", [(zip_info("lmc_basics/x", mode=mode), b"")]), dest)
    assert problem in message and "only regular files and folders are accepted" in message


@pytest.mark.parametrize(("info", "problem"), [
    (tar_info("lmc_basics/model.py", tarfile.SYMTYPE, linkname="/etc/shadow"), "is a symbolic link"),
    (tar_info("lmc_basics/up", tarfile.SYMTYPE, linkname="../.."), "is a symbolic link"),
    (tar_info("lmc_basics/model.py", tarfile.LNKTYPE, linkname="/etc/shadow"), "is a hard link"),
    (tar_info("lmc_basics/null", tarfile.CHRTYPE, devmajor=1, devminor=3), "is a device"),
    (tar_info("lmc_basics/disk", tarfile.BLKTYPE, devmajor=8, devminor=0), "is a device"),
    (tar_info("lmc_basics/pipe", tarfile.FIFOTYPE), "is a FIFO"),
    (tar_info("lmc_basics/sparse", tarfile.GNUTYPE_SPARSE), "is not a regular file or folder"),
])
def test_tar_links_and_special_files_are_refused(tmp_path: Path, dest: Path, info: tarfile.TarInfo, problem: str) -> None:
    source = make_tar(tmp_path / "s.tar", [tar_file("tests/adapters.py", ADAPTERS), (info, b"")])
    assert f"entry {info.name!r} in s.tar {problem}" in refused(source, dest)


def test_tar_hardlink_to_a_kept_file_is_refused(tmp_path: Path, dest: Path) -> None:
    members = [tar_file("lmc_basics/model.py", MODEL), (tar_info("lmc_basics/copy.py", tarfile.LNKTYPE, linkname="lmc_basics/model.py"), b"")]
    assert "is a hard link" in refused(make_tar(tmp_path / "s.tar", members), dest)


def test_folder_symlinks_are_refused_and_never_followed(tmp_path: Path, dest: Path) -> None:
    folder = write_tree(tmp_path / "work", {"tests/adapters.py": ADAPTERS, "lmc_basics/ok.py": b""})
    (folder / "lmc_basics/model.py").symlink_to("/etc/shadow")
    assert "entry 'lmc_basics/model.py' in work is a symbolic link" in refused(folder, dest)


def test_folder_symlinked_directory_is_refused(tmp_path: Path, dest: Path) -> None:
    secret = write_tree(tmp_path / "staff", {"hidden_tests.py": b"SECRET"})
    folder = write_tree(tmp_path / "work", {"lmc_basics/model.py": MODEL})
    (folder / "lmc_basics/linked").symlink_to(secret, target_is_directory=True)
    assert "entry 'lmc_basics/linked' in work is a symbolic link" in refused(folder, dest)


def test_folder_hardlink_is_refused(tmp_path: Path, dest: Path) -> None:
    secret = write_tree(tmp_path / "staff", {"hidden_tests.py": b"SECRET"})
    folder = write_tree(tmp_path / "work", {"lmc_basics/model.py": MODEL})
    os.link(secret / "hidden_tests.py", folder / "lmc_basics/tests.py")
    assert "entry 'lmc_basics/tests.py' in work is a hard link" in refused(folder, dest)


def test_folder_fifo_is_refused_without_blocking(tmp_path: Path, dest: Path) -> None:
    folder = write_tree(tmp_path / "work", {"lmc_basics/model.py": MODEL})
    os.mkfifo(folder / "lmc_basics/pipe")  # reading it would block forever
    assert "entry 'lmc_basics/pipe' in work is a FIFO" in refused(folder, dest)


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_folder_device_is_refused(tmp_path: Path, dest: Path) -> None:
    folder = write_tree(tmp_path / "work", {"lmc_basics/model.py": MODEL})
    os.mknod(folder / "lmc_basics/null", 0o644 | stat.S_IFCHR, os.makedev(1, 3))
    assert "entry 'lmc_basics/null' in work is a device" in refused(folder, dest)


# --- sizes and counts ----------------------------------------------------------------------

SMALL = IntakeLimits(max_total_bytes=10 * MiB, max_file_bytes=10 * MiB)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 MiB of zeros deflated to about 200 KiB, streamed so the test never holds it."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("lmc_basics/weights.txt", "w") as f:
        zeros = bytes(MiB)
        for _ in range(200):
            f.write(zeros)
    assert path.stat().st_size < MiB
    return path


@pytest.fixture
def disk_at_cleanup(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes on disk in the temp folder at the moment intake removes it: the peak written."""
    sizes: list[int] = []
    real_rmtree = shutil.rmtree

    def measuring_rmtree(path: str | Path, *args: object, **kwargs: object) -> None:
        sizes.append(sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()))
        real_rmtree(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(intake_module.shutil, "rmtree", measuring_rmtree)
    return sizes


@pytest.mark.parametrize(("limits", "problem"), [
    (SMALL, "entry 'lmc_basics/weights.txt' in bomb.zip is larger than 10 MiB."),
    (IntakeLimits(max_total_bytes=10 * MiB, max_file_bytes=100 * MiB), "bomb.zip unpacks to more than 10 MiB"),
])
def test_zip_bomb_stops_at_the_cap(bomb: Path, dest: Path, disk_at_cleanup: list[int], limits: IntakeLimits, problem: str) -> None:
    tracemalloc.start()
    started = time.monotonic()
    try:
        message = refused(bomb, dest, limits=limits)
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert problem in message
    assert elapsed < 3, f"took {elapsed:.1f}s: the bomb was read past the cap"
    assert disk_at_cleanup and 0 < disk_at_cleanup[0] <= 10 * MiB + CHUNK
    assert peak < 4 * MiB, f"peak memory {peak / MiB:.1f} MiB"


def _patch_header(raw: bytes, local_offset: int, central_offset: int, fmt: str, value: int) -> bytes:
    """Rewrite one field of the first entry in both its local header and the central directory."""
    data = bytearray(raw)
    struct.pack_into(fmt, data, data.find(b"PK\x03\x04") + local_offset, value)
    struct.pack_into(fmt, data, data.find(b"PK\x01\x02") + central_offset, value)
    return bytes(data)


def _patch_sizes(raw: bytes, declared: int) -> bytes:
    return _patch_header(raw, 22, 24, "<I", declared)  # the uncompressed size


@pytest.mark.parametrize("compress", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_zip_that_lies_about_its_size_is_refused(tmp_path: Path, dest: Path, disk_at_cleanup: list[int], compress: int) -> None:
    honest = make_zip(tmp_path / "honest.zip", [(zip_info("lmc_basics/model.py", compress=compress), bytes(3 * MiB))])
    liar = tmp_path / "liar.zip"
    liar.write_bytes(_patch_sizes(honest.read_bytes(), 100))  # claims 100 bytes, holds 3 MiB
    limits = IntakeLimits(max_file_bytes=MiB)
    message = refused(liar, dest, limits=limits)
    # Python's zipfile stops at the declared size and the CRC then fails; either way one sentence.
    assert "liar.zip" in message and ("is not a readable zip archive" in message or "larger than" in message)
    assert disk_at_cleanup and disk_at_cleanup[0] <= MiB + CHUNK


def test_zip_that_declares_more_than_it_holds_writes_what_it_holds(tmp_path: Path, dest: Path) -> None:
    honest = make_zip(tmp_path / "honest.zip", [(zip_info("lmc_basics/model.py", compress=zipfile.ZIP_STORED), MODEL)])
    liar = tmp_path / "liar.zip"
    liar.write_bytes(_patch_sizes(honest.read_bytes(), 2**31))  # claims 2 GiB, over every cap
    report = intake(liar, dest, OWNED)  # declared sizes are never used, so neither refused nor trusted
    assert report.total_bytes == len(MODEL) and (dest / "lmc_basics/model.py").read_bytes() == MODEL


def test_bzip2_entries_in_a_zip_are_refused(tmp_path: Path, dest: Path) -> None:
    # zipfile inflates bzip2 without an output bound: a small entry could fill memory at once.
    entry = zip_info("lmc_basics/model.py", compress=zipfile.ZIP_BZIP2)
    assert "uses compression method 12" in refused(make_zip(tmp_path / "s.zip", [(entry, MODEL)]), dest)


def test_encrypted_zip_entries_are_refused(tmp_path: Path, dest: Path) -> None:
    plain = make_zip(tmp_path / "plain.zip", [("lmc_basics/model.py", MODEL)]).read_bytes()
    (tmp_path / "s.zip").write_bytes(_patch_header(plain, 6, 8, "<H", 0x1))  # general purpose flag: encrypted
    assert "entry 'lmc_basics/model.py' in s.zip is encrypted." in refused(tmp_path / "s.zip", dest)


def test_tar_gz_bomb_stops_at_the_file_cap(tmp_path: Path, dest: Path, disk_at_cleanup: list[int]) -> None:
    source = make_tar(tmp_path / "s.tgz", [tar_file("lmc_basics/weights.txt", bytes(20 * MiB))], "w:gz")
    message = refused(source, dest, limits=IntakeLimits(max_file_bytes=MiB))
    assert "is larger than 1 MiB" in message
    assert disk_at_cleanup[0] <= MiB + CHUNK


def test_tar_bomb_in_an_ignored_member_is_stopped_too(tmp_path: Path, dest: Path) -> None:
    # A tar must be read through to reach later members, so ignored data counts against the stream.
    members = [tar_file("junk/zeros.bin", bytes(20 * MiB)), tar_file("lmc_basics/model.py", MODEL)]
    source = make_tar(tmp_path / "s.tar.xz", members, "w:xz")
    message = refused(source, dest, limits=IntakeLimits(max_total_bytes=MiB, max_files=10))
    assert "s.tar.xz unpacks to more than" in message and "of tar data" in message


def test_archive_file_larger_than_any_submission_is_refused(tmp_path: Path, dest: Path) -> None:
    big = make_zip(tmp_path / "s.zip", [(zip_info("junk.bin", compress=zipfile.ZIP_STORED), os.urandom(2 * MiB))])
    message = refused(big, dest, limits=IntakeLimits(max_total_bytes=MiB, max_files=10))
    assert "s.zip is 2 MiB, over the" in message


@pytest.mark.parametrize("kind", ["zip", "tar", "folder"])
def test_too_many_entries_are_refused_even_when_ignored(tmp_path: Path, dest: Path, kind: str) -> None:
    files = {f"junk/{i}.txt": b"" for i in range(60)} | {"lmc_basics/model.py": MODEL}
    source = {
        "zip": lambda: make_zip(tmp_path / "s.zip", list(files.items())),
        "tar": lambda: make_tar(tmp_path / "s.tar", [tar_file(n, d) for n, d in files.items()]),
        "folder": lambda: write_tree(tmp_path / "s", files),
    }[kind]()
    assert "has more than 50 entries" in refused(source, dest, limits=IntakeLimits(max_files=50))


# --- not archives, broken archives, empty ones ---------------------------------------------


@pytest.mark.parametrize(("name", "data"), [
    ("s.zip", os.urandom(4096)),
    ("s.tar.gz", b"not really gzip" * 100),
    ("s.py", MODEL),
    ("empty.zip", b""),
])
def test_anything_else_is_not_an_archive(tmp_path: Path, dest: Path, name: str, data: bytes) -> None:
    (tmp_path / name).write_bytes(data)
    assert refused(tmp_path / name, dest) == f"{name} is not a zip or tar archive or a folder."


def test_a_missing_source_is_not_an_archive(tmp_path: Path, dest: Path) -> None:
    assert "is not a zip or tar archive or a folder" in refused(tmp_path / "nowhere.zip", dest)


def test_truncated_zip_is_unreadable(tmp_path: Path, dest: Path) -> None:
    whole = make_zip(tmp_path / "whole.zip", [(rel, data * 100) for rel, data in GOOD_FILES.items()]).read_bytes()
    (tmp_path / "cut.zip").write_bytes(whole[: len(whole) // 2])
    message = refused(tmp_path / "cut.zip", dest)
    assert message.startswith("cut.zip is not a readable zip archive (")


def test_zip_with_corrupt_data_is_unreadable(tmp_path: Path, dest: Path) -> None:
    raw = bytearray(make_zip(tmp_path / "s.zip", [("lmc_basics/model.py", os.urandom(1000) + bytes(5000))]).read_bytes())
    start = raw.find(b"PK\x03\x04") + 30 + len("lmc_basics/model.py")
    raw[start + 10 : start + 400] = os.urandom(390)  # scramble the deflate stream
    (tmp_path / "bad.zip").write_bytes(bytes(raw))
    assert "bad.zip is not a readable zip archive (" in refused(tmp_path / "bad.zip", dest)


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:xz"])
def test_truncated_tar_is_unreadable(tmp_path: Path, dest: Path, mode: str) -> None:
    whole = make_tar(tmp_path / "whole", [tar_file("lmc_basics/model.py", os.urandom(50_000))], mode).read_bytes()
    (tmp_path / "cut.tar").write_bytes(whole[: len(whole) // 2])
    assert "cut.tar is not a readable tar archive (" in refused(tmp_path / "cut.tar", dest)


def test_gzip_of_something_else_is_unreadable(tmp_path: Path, dest: Path) -> None:
    import gzip

    (tmp_path / "s.tgz").write_bytes(gzip.compress(b"just some text\n" * 100))
    assert "s.tgz is not a readable tar archive (" in refused(tmp_path / "s.tgz", dest)


def empty_folder(tmp_path: Path) -> Path:
    (tmp_path / "s").mkdir()
    return tmp_path / "s"


@pytest.mark.parametrize("make", [
    lambda p: make_zip(p / "s.zip", []),
    lambda p: make_tar(p / "s.tar", []),
    empty_folder,
])
def test_empty_submission_says_what_was_expected(tmp_path: Path, dest: Path, make: Callable[[Path], Path]) -> None:
    message = refused(make(tmp_path), dest)
    assert message.endswith("contains none of the expected files (lmc_basics/**, tests/adapters.py).")


def test_only_unowned_files_shows_one(tmp_path: Path, dest: Path) -> None:
    # The usual mistake: zipping the folder itself, so every path starts with "handout/".
    source = make_zip(tmp_path / "s.zip", [(f"handout/{rel}", data) for rel, data in GOOD_FILES.items()])
    message = refused(source, dest)
    assert "contains none of the expected files" in message
    assert "it holds only 6 other file(s), such as 'handout/lmc_basics/model.py'" in message
