"""Masked reductions: averages and sums over the response tokens only.

Every loss of this unit is a reduction over a ``(batch, seq)`` tensor where only some positions
(the response tokens) count; the prompt and the padding must contribute nothing.
"""

from __future__ import annotations

import torch
from torch import Tensor


def masked_mean(tensor: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of ``tensor`` over the positions where ``mask`` is true.

    tensor: any shape; mask: same shape, bool or 0/1. ``dim=None`` averages over every element,
    otherwise along ``dim`` (which is then removed). A slice with no true position gives NaN
    (0/0), on purpose: callers that can meet empty responses decide what those mean.
    """
    # BEGIN SOLUTION problem=masked_mean
    mask = mask.to(tensor.dtype)
    if dim is None:
        return (tensor * mask).sum() / mask.sum()
    return (tensor * mask).sum(dim=dim) / mask.sum(dim=dim)
    # END SOLUTION


def masked_normalize(
    tensor: Tensor, mask: Tensor, dim: int | None = None, normalize_constant: float = 1.0
) -> Tensor:
    """Sum of ``tensor`` where ``mask`` is true, divided by ``normalize_constant``.

    Unlike :func:`masked_mean` the divisor does not depend on how many tokens are unmasked, so a
    long response weighs more than a short one (the Dr. GRPO choice) and an empty one gives 0.
    """
    # BEGIN SOLUTION problem=masked_mean
    masked = torch.where(mask.bool(), tensor, torch.zeros_like(tensor))
    total = masked.sum() if dim is None else masked.sum(dim=dim)
    return total / normalize_constant
    # END SOLUTION
