"""The math dataset builds offline from the pinned wheels, deterministically, with a stable split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("reasoning_gym")

from lmcourse.grader.data import math as math_data  # noqa: E402
from lmcourse.grader.data.manifest import write_manifest  # noqa: E402
from lmcourse.grader.data.sources import cache_dir  # noqa: E402
from reference.alignment.math_grader import grade  # noqa: E402


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """The two wheels, from the user's cache (filled once by `lmcourse data prepare math`)."""
    source = cache_dir()
    if not all((source / s.filename).exists() for s in (math_data.REASONING_GYM, math_data.CHAMP)):
        pytest.skip("the math wheels are not in the package cache; run `lmcourse data prepare math` once")
    target = tmp_path_factory.mktemp("cache")
    for src in (math_data.REASONING_GYM, math_data.CHAMP):
        shutil.copy(source / src.filename, target / src.filename)
    return target


def test_build_is_deterministic_and_split_by_question(tmp_path, cache):
    first = math_data.build(tmp_path / "a", cache=cache, download=False, size=400)
    second = math_data.build(tmp_path / "b", cache=cache, download=False, size=400)
    assert first.files == second.files  # same bytes, same sha256
    train = math_data.read_problems(tmp_path / "a" / "train.jsonl")
    valid = math_data.read_problems(tmp_path / "a" / "valid.jsonl")
    assert len(valid) > 5 and len(train) > 10 * len(valid) / 2
    assert not {p["question"] for p in train} & {p["question"] for p in valid}
    bigger = math_data.build(tmp_path / "c", cache=cache, download=False, size=600)
    assert bigger.files["valid.jsonl"].documents >= len(valid)
    bigger_valid = {p["question"] for p in math_data.read_problems(tmp_path / "c" / "valid.jsonl")}
    assert {p["question"] for p in valid} <= bigger_valid  # a problem's split never moves
    write_manifest(tmp_path / "a", first)
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["sources"][0]["pin"] == "reasoning-gym==0.1.25"


def test_answers_are_numbers_the_grader_accepts_from_the_worked_solution(tmp_path, cache):
    math_data.build(tmp_path, cache=cache, download=False, size=200)
    for problem in math_data.read_problems(tmp_path / "train.jsonl")[:50]:
        final = problem["solution"].rsplit("####", 1)[1].strip()
        assert grade(final, problem["answer"])
    champ = math_data.read_problems(tmp_path / "champ.jsonl")
    assert len(champ) == 270 and all(p["answer"] for p in champ)


def test_a_tampered_wheel_is_refused(tmp_path, cache):
    bad = tmp_path / "cache"
    bad.mkdir()
    shutil.copy(cache / math_data.REASONING_GYM.filename, bad)
    (bad / math_data.CHAMP.filename).write_bytes(b"not the wheel")
    with pytest.raises(Exception, match="sha256"):
        math_data.build(tmp_path / "out", cache=bad, download=False, size=10)
