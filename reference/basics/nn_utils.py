"""Functions the model and the training loop share: activation, loss, gradient clipping."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


def at_least_fp32(x: Tensor) -> Tensor:
    """``x`` in float32, or float64 if it already is: for sums and exponentials of low-precision values."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def silu(x: Tensor) -> Tensor:
    """SiLU (swish): ``x * sigmoid(x)``, elementwise; any shape."""
    # BEGIN SOLUTION problem=silu
    return x * torch.sigmoid(x)
    # END SOLUTION


def cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean negative log-likelihood of ``targets`` under ``softmax(logits)``.

    logits: (..., vocab) unnormalised scores; targets: (...) integer class ids.
    Returns a scalar. Stable for huge logits: the log-sum-exp is taken after subtracting
    the row maximum, and never through an explicit softmax (whose log could hit log(0)).
    """
    # BEGIN SOLUTION problem=cross_entropy
    # bf16 logits (from autocast) would lose the small differences that matter.
    logits = at_least_fp32(logits)
    logits = logits - logits.amax(dim=-1, keepdim=True)
    log_normaliser = logits.exp().sum(dim=-1).log()  # (...)
    target_logits = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (...)
    return (log_normaliser - target_logits).mean()
    # END SOLUTION


def gradient_clipping(parameters: Iterable[torch.nn.Parameter], max_l2_norm: float, eps: float = 1e-6) -> Tensor:
    """Scale all gradients in place so that their joint L2 norm is at most ``max_l2_norm``.

    The norm is global (over every gradient together, as if concatenated). When it exceeds
    ``max_l2_norm`` each gradient is multiplied by ``max_l2_norm / (norm + eps)``; parameters
    without a gradient are skipped. Returns the norm before clipping (a scalar tensor), which
    is worth logging.
    """
    # BEGIN SOLUTION problem=gradient_clipping
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, dtype=torch.float32) for g in grads]))
    # clamp instead of `if norm > max_l2_norm`: no GPU->CPU sync, and a factor of 1 is a no-op.
    scale = (max_l2_norm / (norm + eps)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.to(g.dtype))
    return norm
    # END SOLUTION
