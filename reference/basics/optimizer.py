"""AdamW and the cosine learning-rate schedule with linear warm-up."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.optim.optimizer import ParamsT


class AdamW(torch.optim.Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019, Algorithm 2).

    Per parameter ``θ`` with gradient ``g`` at step ``t = 1, 2, ...``::

        m ← β1·m + (1-β1)·g            v ← β2·v + (1-β2)·g²
        m̂ = m / (1-β1^t)               v̂ = v / (1-β2^t)
        θ ← θ - lr·λ·θ                  (decay: independent of the gradient's scale)
        θ ← θ - lr·m̂ / (√v̂ + ε)

    State per parameter: ``step`` (int), ``exp_avg`` (m) and ``exp_avg_sq`` (v), both shaped like θ.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        # BEGIN SOLUTION problem=adamw
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"lr={lr}, eps={eps} and weight_decay={weight_decay} must be non-negative")
        if not all(0.0 <= beta < 1.0 for beta in betas):
            raise ValueError(f"betas={betas} must lie in [0, 1)")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})
        # END SOLUTION

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Update every parameter that has a gradient; ``closure`` re-evaluates the loss if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        # BEGIN SOLUTION problem=adamw
        for group in self.param_groups:
            lr, (beta1, beta2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                m.lerp_(p.grad, 1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                p.mul_(1 - lr * weight_decay)
                # The bias corrections are scalars: fold them into the step size instead of
                # materialising m̂ and v̂ (two fewer full-size tensors per parameter).
                denominator = (v.sqrt() / math.sqrt(1 - beta2**t)).add_(eps)
                p.addcdiv_(m, denominator, value=-lr / (1 - beta1**t))
        # END SOLUTION
        return loss


def get_lr_cosine_schedule(
    it: int, max_learning_rate: float, min_learning_rate: float, warmup_iters: int, cosine_cycle_iters: int
) -> float:
    """The learning rate at iteration ``it``.

    Linear warm-up from 0 to ``max_learning_rate`` over ``warmup_iters`` iterations, then a
    half cosine down to ``min_learning_rate`` at ``cosine_cycle_iters``, then constant.
    """
    # BEGIN SOLUTION problem=lr_schedule
    if it < warmup_iters:
        return max_learning_rate * it / warmup_iters
    if it >= cosine_cycle_iters:
        return min_learning_rate
    progress = (it - warmup_iters) / (cosine_cycle_iters - warmup_iters)  # 0 -> 1
    return min_learning_rate + 0.5 * (1 + math.cos(math.pi * progress)) * (max_learning_rate - min_learning_rate)
    # END SOLUTION
