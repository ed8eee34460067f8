"""The ``math`` dataset of the alignment unit, built offline and deterministically.

- ``train.jsonl`` / ``valid.jsonl``: GSM8K-style word problems from the 85+ templates of
  ``reasoning-gym``'s ``gsm_symbolic`` task (numeric answers, worked solutions ending in
  ``#### N``), generated from a fixed seed and split by the sha256 of the question text, so a
  problem's split never depends on how many were generated;
- ``champ.jsonl``: the 270 competition problems of ``champ-dataset`` with their answers (MIT), for
  evaluation only, read as data from the pinned wheel.

Each line: ``{"id", "question", "answer", "solution", "source", "template"|"category"}``.
``gsm_symbolic`` generates problems with Python code, so it runs from the installed package; its
version must equal the pin (a different version makes different problems). Both wheels are pinned
by sha256 in the cache, like every package source.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import LmcourseError
from .catalog import PackageSource
from .manifest import Manifest, SourceEntry, file_entry
from .sources import Archive, fetch

REASONING_GYM = PackageSource(
    name="gsm-symbolic", registry="pypi-wheel", package="reasoning-gym", version="0.1.25",
    filename="reasoning_gym-0.1.25-py3-none-any.whl",
    sha256="7f17a3eddb13c015d7d4a755ed576a061df889faf9468bcc2cca334ebe9e0435",
    reader="gsm-symbolic", license="Apache-2.0 (reasoning-gym); templates derived from GSM8K (MIT)",
)
CHAMP = PackageSource(
    name="champ", registry="pypi-wheel", package="champ-dataset", version="1.0.0",
    filename="champ_dataset-1.0.0-py3-none-any.whl",
    sha256="aa59df5ae28e2ec76a401a46faf3d6395920be8009a01ce451f7d5c131d82201",
    reader="champ", license="MIT",
)

SEED = 20270305
#: Problems generated before deduplication; about 1/16 of them land in the validation split.
NUM_GENERATED = 8000
VALID_SIXTEENTHS = 1
DESCRIPTION = (
    "GSM8K-style problems from reasoning-gym's gsm_symbolic templates (fixed seed, split by question hash) "
    "and the 270 CHAMP competition problems for evaluation."
)


def is_valid_split(question: str) -> bool:
    """The split of a problem: the first hex digit of sha256(question) < ``VALID_SIXTEENTHS``."""
    return int(hashlib.sha256(question.encode("utf-8")).hexdigest()[0], 16) < VALID_SIXTEENTHS


def gsm_symbolic_problems(size: int = NUM_GENERATED, seed: int = SEED) -> list[dict[str, Any]]:
    """``size`` generated problems, duplicates (same question text) dropped, in generation order."""
    installed = _installed_version("reasoning-gym")
    if installed != REASONING_GYM.version:
        raise LmcourseError(
            f"The math dataset needs reasoning-gym=={REASONING_GYM.version} installed (found {installed}); "
            f"install it with: pip install reasoning-gym=={REASONING_GYM.version}"
        )
    import reasoning_gym

    dataset = reasoning_gym.create_dataset("gsm_symbolic", seed=seed, size=size)
    seen: set[str] = set()
    problems = []
    for index in range(size):
        example = dataset[index]
        if example["question"] in seen:
            continue
        seen.add(example["question"])
        problems.append({
            "id": f"gsm_symbolic-{index}",
            "question": example["question"],
            "answer": str(example["answer"]),
            "solution": example["metadata"]["answer_cot"],
            "source": "gsm_symbolic",
            "template": int(dataset.task_indices[index]),
        })
    return problems


def champ_problems(archive: Archive) -> list[dict[str, Any]]:
    """The CHAMP problems, in the order of their identifiers."""
    data = json.loads(archive.one("champ_dataset/dataset_files/v0.json"))
    return [
        {"id": key, "question": p["_text"], "answer": p["_answer"], "solution": "", "source": "champ",
         "category": p["category"]}
        for key, p in sorted(data["problems"].items())
    ]


def build(folder: Path, *, cache: Path | None = None, download: bool = True, size: int = NUM_GENERATED) -> Manifest:
    """Write the three JSONL files under ``folder`` and return the manifest describing them."""
    fetch(REASONING_GYM, cache, download=download)  # pins the generator's code by sha256, like any source
    champ_archive = Archive(fetch(CHAMP, cache, download=download))
    problems = gsm_symbolic_problems(size)
    splits = {
        "train.jsonl": [p for p in problems if not is_valid_split(p["question"])],
        "valid.jsonl": [p for p in problems if is_valid_split(p["question"])],
        "champ.jsonl": champ_problems(champ_archive),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        with open(folder / name, "w", encoding="utf-8", newline="\n") as file:
            for row in rows:
                file.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    sources = [
        SourceEntry(name=src.name, kind="package", pin=src.pin, registry=src.registry, sha256=src.sha256,
                    license=src.license, documents=counts)
        for src, counts in (
            (REASONING_GYM, {"train": len(splits["train.jsonl"]), "valid": len(splits["valid.jsonl"])}),
            (CHAMP, {"champ": len(splits["champ.jsonl"])}),
        )
    ]
    return Manifest(
        dataset="math", description=DESCRIPTION, kind="math",
        split_rule=f"valid iff int(sha256(question)[0], 16) < {VALID_SIXTEENTHS}", valid_fraction=VALID_SIXTEENTHS / 16,
        sources=sources,
        files={name: file_entry(folder / name, documents=len(rows)) for name, rows in splits.items()},
        notes={"seed": str(SEED), "generated": str(size)},
    )


def read_problems(path: Path | str) -> list[dict[str, Any]]:
    """The problems of one of the JSONL files."""
    with open(path, encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]


def _installed_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
