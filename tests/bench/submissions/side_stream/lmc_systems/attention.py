"""Launches its kernels on a private CUDA stream and returns before they finish.

The caller's stream is never told to wait (no ``current_stream().wait_stream(side)``), so CUDA
events recorded on the caller's stream see almost nothing. The harness also times up to a
device-wide synchronize, which waits for every stream, and flags the difference. On the CPU there
are no streams: it computes in place.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

_side: list[torch.cuda.Stream] = []


def _attention(q: Tensor, k: Tensor, v: Tensor, is_causal: bool) -> Tensor:
    heads = (q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1))
    return F.scaled_dot_product_attention(*heads, is_causal=is_causal).squeeze(1)


def _on_side_stream(device: torch.device) -> Any:
    """Run what follows on a private stream that has waited for the caller's (the inputs are ready there)."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    if not _side:
        _side.append(torch.cuda.Stream())
    _side[0].wait_stream(torch.cuda.current_stream())
    return torch.cuda.stream(_side[0])


class SideStreamAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, is_causal: bool = False) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(q, k, v)
        ctx.is_causal = is_causal
        with _on_side_stream(q.device):
            return _attention(q, k, v, is_causal)

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:  # type: ignore[override]
        q, k, v = (t.detach().requires_grad_() for t in ctx.saved_tensors)
        with torch.enable_grad(), _on_side_stream(q.device):
            out = _attention(q, k, v, ctx.is_causal)
            dq, dk, dv = torch.autograd.grad(out, (q, k, v), grad_out)
        return dq, dk, dv, None
