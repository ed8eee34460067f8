"""The story generator: deterministic, well-formed, simple English, fast."""

from __future__ import annotations

import collections
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lmcourse.grader.data import SEPARATOR, prepare, read_documents
from lmcourse.grader.data.manifest import read_manifest
from lmcourse.grader.data.stories import (
    CAST,
    MAX_WORDS,
    MIN_WORDS,
    PLOTS,
    generate_stories,
)

SIMPLE_WORDS = {
    "the", "a", "an", "and", "to", "was", "it", "said", "he", "she", "her", "his", "they", "i", "with", "in",
    "day", "had", "you", "there", "is", "that", "play", "looked", "not", "one", "big", "time", "little",
    "asked", "but", "of", "on", "so", "very", "were", "up", "all", "what", "my", "him", "friend", "then",
    "saw", "happy", "went", "me", "we", "can", "at", "your", "for", "too", "be", "did", "do", "are", "this",
    "their",
}


def digest(stories: list[str]) -> str:
    return hashlib.sha256(SEPARATOR.join(stories).encode()).hexdigest()


def test_same_seed_same_stories_and_different_seeds_differ() -> None:
    first = list(generate_stories(200, seed=3))
    assert first == list(generate_stories(200, seed=3))
    other = list(generate_stories(200, seed=4))
    assert first != other
    assert len(set(first) & set(other)) < 5  # different seeds do not replay the same stream


def test_independent_of_hash_randomization() -> None:
    code = (
        "import hashlib; from lmcourse.grader.data.stories import generate_stories;"
        "print(hashlib.sha256('|'.join(generate_stories(300, seed=11)).encode()).hexdigest())"
    )
    runs = {
        subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": str(s)}, capture_output=True,
                       text=True, check=True).stdout
        for s in (1, 2, 3)
    }
    assert len(runs) == 1


def test_endless_stream_starts_like_a_finite_one() -> None:
    endless = generate_stories(None, seed=5)
    assert [next(endless) for _ in range(20)] == list(generate_stories(20, seed=5))


def test_length_bounds_and_form() -> None:
    for story in generate_stories(2000, seed=1):
        assert MIN_WORDS <= len(story.split()) <= MAX_WORDS
        assert SEPARATOR not in story
        assert story == story.strip() and story[0].isupper()
        assert story[-1] in '.!"'
        assert story.count('"') % 2 == 0  # every quote is closed
        assert "\n\n" in story and "\n\n\n" not in story
        assert "  " not in story and " ," not in story and " ." not in story


def test_cast_plots_dialogue_and_morals_recur() -> None:
    stories = list(generate_stories(3000, seed=2))
    names = collections.Counter(c.name for s in stories for c in CAST if re.search(rf"\b{c.name}\b", s))
    assert len(names) == len(CAST) == 40
    assert sum('"' in s for s in stories) > 0.95 * len(stories)
    assert sum(bool(re.search(r"learned|From that day on|always|is a kind of|can make", s)) for s in stories) > 0.8 * len(stories)
    assert sum(s.startswith("Once upon a time") for s in stories) > 0.4 * len(stories)
    assert len(PLOTS) >= 5


def test_vocabulary_is_simple_english() -> None:
    words = collections.Counter()
    for story in generate_stories(2000, seed=9):
        words.update(re.findall(r"[a-z']+", story.lower()))
    top = [w for w, _ in words.most_common(25)]
    assert set(top) <= SIMPLE_WORDS, set(top) - SIMPLE_WORDS
    assert len(words) < 2500  # a child's vocabulary, not a thesaurus
    assert all(len(w) <= 12 for w in words)


@pytest.mark.timeout(120)
def test_a_megabyte_comes_quickly_and_in_order() -> None:
    size = 0
    stories = []
    for story in generate_stories(None, seed=0):
        stories.append(story)
        size += len(story.encode())
        if size >= 1_000_000:
            break
    assert 800 < len(stories) < 3000
    assert digest(stories[:100]) == digest(list(generate_stories(100, seed=0)))


def test_prepare_stories_writes_splits_in_generator_order(tmp_path: Path) -> None:
    result = prepare("stories", tmp_path, size_mb=0.3, seed=7, progress=False)
    folder = tmp_path / "stories"
    train = list(read_documents(folder / "train.txt"))
    valid = list(read_documents(folder / "valid.txt"))
    assert 280_000 < (folder / "train.txt").stat().st_size < 320_000
    assert 0 < len(valid) < len(train) / 10
    assert set(train + valid) == set(generate_stories(len(train) + len(valid), seed=7))
    text = (folder / "train.txt").read_text()
    assert text.count(SEPARATOR) == len(train) and text.endswith(f"\n{SEPARATOR}\n")
    manifest = read_manifest(folder)
    assert manifest == result.manifest
    assert manifest.sources[0].seed == 7
    assert manifest.files["train.txt"].documents == len(train)


# The first stories of seed 0, pinned: the same on every run, platform and Python version. A change
# to the generator changes every dataset built from it; update this pin on purpose, never by accident.
GOLDEN_SEED0_50 = "f253d97c3a7cb7cb239aed3215ab8b8646a186548b3e2275e00125a61d9d377d"


def test_seed_zero_is_pinned() -> None:
    assert digest(list(generate_stories(50, seed=0))) == GOLDEN_SEED0_50
