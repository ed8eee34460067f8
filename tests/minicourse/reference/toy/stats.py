"""The softmax and running_mean problems."""

from __future__ import annotations

import math
from collections.abc import Sequence


def softmax(
    values: Sequence[float],
    temperature: float = 1.0,
    *,
    log: bool = False,
) -> list[float]:
    """Numerically stable softmax of ``values`` divided by ``temperature``.

    With ``log=True`` return the log-probabilities (log-softmax) instead. Must not overflow for
    inputs such as ``[1000.0, 1000.0]``. An empty ``values`` raises ``ValueError``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    # BEGIN SOLUTION problem=softmax
    from ._answers import logsumexp

    scaled = [v / temperature for v in values]
    log_total = logsumexp(scaled)
    # END SOLUTION
    # `scaled` holds the tempered inputs and `log_total` the log of the normaliser;
    # both outputs follow from them.
    if log:
        # BEGIN SOLUTION problem=softmax
        return [v - log_total for v in scaled]
        # END SOLUTION
    return [math.exp(v - log_total) for v in scaled]


class RunningMean:
    """The mean of a stream of numbers in constant memory (Welford's update)."""

    def __init__(self) -> None:
        # BEGIN SOLUTION problem=running_mean stub=pass
        self._count, self._mean = 0, 0.0
        # END SOLUTION

    def update(self, value: float) -> float:
        """Fold ``value`` into the mean and return the new mean."""
        # BEGIN SOLUTION
        self._count += 1
        self._mean += (value - self._mean) / self._count
        return self._mean
        # END SOLUTION

    @property
    def count(self) -> int:
        """How many values have been folded in."""
        # BEGIN SOLUTION
        return self._count
        # END SOLUTION

    @property
    def mean(self) -> float:
        """The current mean; ``nan`` before the first value."""
        # BEGIN SOLUTION
        return self._mean if self._count else math.nan
        # END SOLUTION

    @staticmethod
    def combine(mean_a: float, count_a: int, mean_b: float, count_b: int) -> float:
        """The mean of two groups, given each group's mean and size (0 when both are empty)."""
        # BEGIN SOLUTION problem=running_mean stub=raise
        total_count = count_a + count_b
        return (mean_a * count_a + mean_b * count_b) / total_count if total_count else 0.0
        # END SOLUTION

    def merge(self, other: RunningMean) -> RunningMean:
        """A new ``RunningMean`` over the values of both; ``self`` and ``other`` are unchanged."""
        # BEGIN SOLUTION
        merged = RunningMean()
        merged._count = self._count + other._count
        merged._mean = RunningMean.combine(self._mean, self._count, other._mean, other._count)
        return merged
        # END SOLUTION
