"""Producers: functions the tests run against student code, returning plain data.

Deduplication writes files, which cannot leave the sandbox; these producers write the inputs into a
private temporary folder, run the adapter and return what it wrote as ``{basename: text}``.
Producers hold no expected values.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import ModuleType


def _write_inputs(folder: Path, documents: dict[str, str]) -> list[str]:
    (folder / "in").mkdir()
    paths = []
    for name, text in documents.items():
        path = folder / "in" / name
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    return paths


def _read_outputs(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir()) if p.is_file()}


def exact_dedup_outputs(adapters: ModuleType, documents: dict[str, str]) -> dict[str, str]:
    """The files ``run_exact_line_deduplication`` writes for ``documents`` (basename -> text)."""
    with tempfile.TemporaryDirectory() as tmp:
        inputs = _write_inputs(Path(tmp), documents)
        adapters.run_exact_line_deduplication(input_files=inputs, output_directory=str(Path(tmp) / "out"))
        return _read_outputs(Path(tmp) / "out")


def minhash_dedup_outputs(adapters: ModuleType, documents: dict[str, str], num_hashes: int, num_bands: int,
                          ngrams: int, jaccard_threshold: float) -> dict[str, str]:
    """The files ``run_minhash_deduplication`` writes for ``documents`` (basename -> text)."""
    with tempfile.TemporaryDirectory() as tmp:
        inputs = _write_inputs(Path(tmp), documents)
        adapters.run_minhash_deduplication(input_files=inputs, num_hashes=num_hashes, num_bands=num_bands,
                                           ngrams=ngrams, jaccard_threshold=jaccard_threshold,
                                           output_directory=str(Path(tmp) / "out"))
        return _read_outputs(Path(tmp) / "out")


def identify_languages(adapters: ModuleType, texts: list[str]) -> list[tuple[str, float]]:
    """``run_identify_language`` over many texts in one trip to the sandbox."""
    return [tuple(adapters.run_identify_language(text=text)) for text in texts]
