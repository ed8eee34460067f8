"""Datasets built offline from declared sources: ``lmcourse data prepare NAME``.

- :mod:`.catalog`  the named datasets and the models that declare sources
- :mod:`.stories`  the seeded children's-story generator
- :mod:`.sources`  pinned registry artifacts: download, sha256 check, reading
- :mod:`.texts`    readers turning artifacts into documents
- :mod:`.corpus`   documents -> deterministic train/valid files
- :mod:`.tokenize` split files -> ``uint16`` token arrays
- :mod:`.gpt2`     GPT-2's BPE files and an offline tiktoken cache
- :mod:`.prepare`  the orchestration, and :mod:`.manifest` what it records
"""

from __future__ import annotations

from .catalog import CATALOG, Dataset, FilesSource, PackageSource, StoriesSource
from .corpus import SEPARATOR, Document, read_documents
from .prepare import PreparedDataset, prepare
from .stories import generate_stories
from .tokenize import Tokenizer, from_callable, gpt2_tokenizer, tokenize_file

__all__ = [
    "CATALOG",
    "SEPARATOR",
    "Dataset",
    "Document",
    "FilesSource",
    "PackageSource",
    "PreparedDataset",
    "StoriesSource",
    "Tokenizer",
    "from_callable",
    "generate_stories",
    "gpt2_tokenizer",
    "prepare",
    "read_documents",
    "tokenize_file",
]
