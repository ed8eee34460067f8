"""Staff-only helpers the reference solutions share.

Listed in ``handout.omit``: never shipped. Only code inside solution regions may import it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def logsumexp(values: Sequence[float]) -> float:
    """log(sum(exp(v))) without overflow: shift by the largest value first."""
    peak = max(values)
    total = sum(math.exp(v - peak) for v in values)
    return peak + math.log(total)
