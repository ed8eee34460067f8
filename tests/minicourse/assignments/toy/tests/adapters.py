"""Adapters: the glue between the toy tests and your package.

Each function takes plain arguments, calls into ``mini_toy`` and returns plain results (or, for
the ``get_*`` adapters, the class or coroutine function the tests drive). Fill in the bodies
marked below; the logic belongs in your package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mini_toy import remote, scaffold, stats
from mini_toy import text as text_module

# ---- softmax ----


def run_softmax(values: list[float], temperature: float = 1.0, log: bool = False) -> list[float]:
    """``mini_toy.stats.softmax`` of ``values``."""
    # BEGIN SOLUTION problem=softmax
    return stats.softmax(values, temperature, log=log)
    # END SOLUTION


# ---- word_counts ----


def run_word_counts(text: str, min_length: int = 1) -> dict[str, int]:
    """``mini_toy.text.word_counts`` of ``text``."""
    # BEGIN SOLUTION problem=word_counts
    return text_module.word_counts(text, min_length=min_length)
    # END SOLUTION


def run_top_words(counts: dict[str, int], k: int) -> list[tuple[str, int]]:
    """``mini_toy.scaffold.top_words``."""
    # BEGIN SOLUTION problem=word_counts
    return scaffold.top_words(counts, k)
    # END SOLUTION


def run_render_counts(counts: dict[str, int]) -> str:
    """``mini_toy.scaffold.render_counts``."""
    # BEGIN SOLUTION problem=word_counts
    return scaffold.render_counts(counts)
    # END SOLUTION


# ---- running_mean ----


def get_running_mean_cls() -> type:
    """The class ``RunningMean`` (tests construct it with no arguments)."""
    # BEGIN SOLUTION problem=running_mean
    return stats.RunningMean
    # END SOLUTION


# ---- fetch ----


def get_fetch() -> Callable[..., Any]:
    """The coroutine function ``fetch(store, key, *, delay=0.0, default=...)``."""
    # BEGIN SOLUTION problem=fetch
    return remote.fetch
    # END SOLUTION


def get_fetch_many() -> Callable[..., Any]:
    """The coroutine function ``fetch_many(store, keys, *, delay=0.0)``."""
    # BEGIN SOLUTION problem=fetch
    return remote.fetch_many
    # END SOLUTION
