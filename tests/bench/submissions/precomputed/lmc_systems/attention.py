"""Returns a precomputed answer for the benchmark's shapes instead of computing one.

The answer is attention on inputs drawn with a seed this code chose: a harness with fixed inputs
(and a fixed seed) could have been fooled by shipping the answer. Fresh, unpredictable inputs
from the grader make it wrong on the very first check.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

_answers: dict[tuple[object, ...], tuple[Tensor, Tensor, Tensor, Tensor]] = {}


def _answer(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, is_causal: bool) -> tuple[Tensor, ...]:
    """Output and gradients of attention on the inputs seed 0 draws: computed once per shape."""
    key = (shape, dtype, device, is_causal)
    if key not in _answers:
        generator = torch.Generator(device=device).manual_seed(0)
        q, k, v, d_o = (torch.randn(shape, generator=generator, device=device, dtype=dtype) for _ in range(4))
        q, k, v = (t.requires_grad_() for t in (q, k, v))
        with torch.enable_grad():  # forward of a Function runs without autograd
            out = F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), is_causal=is_causal)
            out = out.squeeze(1)
            _answers[key] = (out.detach(), *torch.autograd.grad(out, (q, k, v), d_o))  # type: ignore[assignment]
    return _answers[key]


class PrecomputedAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, is_causal: bool = False) -> Tensor:  # type: ignore[override]
        ctx.answer = _answer(tuple(q.shape), q.dtype, q.device, is_causal)
        return ctx.answer[0].clone()

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:  # type: ignore[override]
        _, dq, dk, dv = ctx.answer
        return dq.clone(), dk.clone(), dv.clone(), None
