"""Archives: a submission built to harm the grader before any of its code runs.

Zip slip, a zip bomb, links to the host's secrets, through ``grade_one`` itself. Each is
refused in one sentence (a :class:`SubmissionError`), writes nothing outside the grader's
temporary folder (``attack`` checks it is empty afterwards, and the slip targets are checked
here), and the same grader then grades the honest solution in full.
"""

from __future__ import annotations

import io
import stat
import tarfile
import uuid
import zipfile
from pathlib import Path

import pytest

from lmcourse.grader.errors import LmcourseError, SubmissionError

from .kit import assert_scores

pytestmark = pytest.mark.slow


def solution_entries(kit) -> list[tuple[str, bytes]]:  # type: ignore[no-untyped-def]
    """Every file of the built solution folder, as a student's zip of it would hold them."""
    return [(p.relative_to(kit.solution).as_posix(), p.read_bytes())
            for p in sorted(kit.solution.rglob("*")) if p.is_file()]


def zip_info(name: str, mode: int = 0o100644) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2027, 1, 20, 12, 0, 0))
    info.external_attr = mode << 16
    info.create_system = 3  # unix: the mode bits are read
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def make_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries:
            zf.writestr(name if isinstance(name, zipfile.ZipInfo) else zip_info(name), data)
    return path


def refused(attack, tmp_path: Path, archive: Path, sandbox: str) -> str:  # type: ignore[no-untyped-def]
    """Grade ``archive``: it must be refused in one sentence, and the grader must then grade the
    honest solution in full."""
    with pytest.raises(SubmissionError) as caught:
        attack.grade(tmp_path, archive, sandbox, out="refused")
    message = str(caught.value)
    assert isinstance(caught.value, LmcourseError)
    assert "\n" not in message and message.endswith(".") and len(message) < 300, message
    assert not (tmp_path / "refused" / "results.json").exists()
    honest = attack.grade(tmp_path, attack.kit.solution, sandbox, out="honest")
    assert_scores(honest)
    return message


# --- 19. zip slip ---------------------------------------------------------------------------------


@pytest.mark.parametrize("slip", ["../../lmatk-slip-{t}", "mini_toy/../../../../lmatk-slip-{t}", "/tmp/lmatk-slip-{t}"])
def test_zip_slip_is_refused_and_writes_nothing_outside(attack, tmp_path: Path, sandbox: str, slip: str) -> None:
    tag = uuid.uuid4().hex[:10]
    name = slip.format(t=tag)
    # The honest files first: some are unpacked before the bad entry is met, and must vanish too.
    archive = make_zip(tmp_path / "slip.zip", [*solution_entries(attack.kit), (name, b"print('pwned')\n")])
    message = refused(attack, tmp_path, archive, sandbox)
    assert "lmatk-slip" in message and ("'..'" in message or "absolute" in message)
    for where in (Path("/tmp"), Path.cwd(), tmp_path, tmp_path.parent, Path.home()):
        assert not list(where.glob(f"lmatk-slip-{tag}*")), f"zip slip wrote into {where}"


# --- 20. zip bomb -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bomb_bytes() -> bytes:
    """64 MiB of newlines, deflated to about 64 KiB: a Python file that unpacks past every cap."""
    buffer = io.BytesIO()
    line = b"\n" * (1 << 20)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf, \
            zf.open(zip_info("mini_toy/stats.py"), "w") as f:
        for _ in range(64):
            f.write(line)
    return buffer.getvalue()


def test_zip_bomb_is_refused_at_the_size_cap(attack, tmp_path: Path, sandbox: str, bomb_bytes: bytes) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(io.BytesIO(bomb_bytes)) as bomb, zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(bomb.infolist()[0], bomb.read(bomb.infolist()[0]))
        for name, data in solution_entries(attack.kit):
            if name != "mini_toy/stats.py":
                zf.writestr(zip_info(name), data)
    assert archive.stat().st_size < 1 << 20
    message = refused(attack, tmp_path, archive, sandbox)
    assert "MiB" in message and "mini_toy/stats.py" in message, message


def test_a_nested_archive_is_a_plain_file_never_opened(attack, tmp_path: Path, sandbox: str, bomb_bytes: bytes) -> None:
    graded = attack(tmp_path, {"mini_toy/inner.zip": bomb_bytes, "mini_toy/data.tar.gz": bomb_bytes}, sandbox)
    assert_scores(graded)


# --- 21. links to the host's secrets ---------------------------------------------------------------------


def test_symlink_to_etc_shadow_in_a_zip_is_refused(attack, tmp_path: Path, sandbox: str) -> None:
    entries: list[tuple[str | zipfile.ZipInfo, bytes]] = [
        (n, d) for n, d in solution_entries(attack.kit) if n != "mini_toy/stats.py"
    ]
    entries.append((zip_info("mini_toy/stats.py", stat.S_IFLNK | 0o777), b"/etc/shadow"))
    message = refused(attack, tmp_path, make_zip(tmp_path / "link.zip", entries), sandbox)
    assert "symbolic link" in message and "mini_toy/stats.py" in message, message


@pytest.mark.parametrize("kind", ["symlink-dir", "hardlink"])
def test_links_in_a_tar_are_refused(attack, tmp_path: Path, sandbox: str, kind: str) -> None:
    archive = tmp_path / "links.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for name, data in solution_entries(attack.kit):
            if name == "mini_toy/text.py":
                continue
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("mini_toy/etc" if kind == "symlink-dir" else "mini_toy/text.py")
        link.type = tarfile.SYMTYPE if kind == "symlink-dir" else tarfile.LNKTYPE
        link.linkname = "/etc" if kind == "symlink-dir" else "/etc/shadow"
        tf.addfile(link)
        if kind == "symlink-dir":  # then write through it
            info = tarfile.TarInfo("mini_toy/etc/cron.d/lmatk")
            info.size = 5
            tf.addfile(info, io.BytesIO(b"pwned"))
    message = refused(attack, tmp_path, archive, sandbox)
    assert ("symbolic link" if kind == "symlink-dir" else "hard link") in message, message
    assert not Path("/etc/cron.d/lmatk").exists()
