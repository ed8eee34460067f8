"""Producers of the attention tests: run a FlashAttention-2 ``autograd.Function`` on given tensors.

Each producer takes the adapter module first, gets the class through it (``impl`` is ``"pytorch"``
or ``"triton"``), moves the inputs to the GPU when this process has one (compiled Triton kernels need
it; without one Triton runs its CPU interpreter) and returns plain CPU tensors. No expected values
here: the tests compute those themselves.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch
from torch import Tensor

ADAPTERS = {
    "pytorch": "get_flashattention_autograd_function_pytorch",
    "triton": "get_flashattention_autograd_function_triton",
}


def has_gpu(adapters: ModuleType) -> bool:
    """Whether the student's code runs on a GPU here (the tests pick their dtypes and sizes by it)."""
    return torch.cuda.is_available()


def attention_function(adapters: ModuleType, impl: str) -> Any:
    """The student's ``torch.autograd.Function`` class for ``impl``."""
    return getattr(adapters, ADAPTERS[impl])()


def leaf_inputs(*tensors: Tensor) -> list[Tensor]:
    """Copies on this process's device that require gradients."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return [t.to(device).requires_grad_() for t in tensors]


def attention_forward(
    adapters: ModuleType, impl: str, q: Tensor, k: Tensor, v: Tensor, is_causal: bool
) -> dict[str, Any]:
    """``apply(q, k, v, is_causal)``: the output and every tensor the forward saved for the backward."""
    q, k, v = leaf_inputs(q, k, v)
    out = attention_function(adapters, impl).apply(q, k, v, is_causal)
    return {"out": out.detach().cpu(), "saved": [t.detach().cpu() for t in out.grad_fn.saved_tensors]}


def attention_backward(
    adapters: ModuleType, impl: str, q: Tensor, k: Tensor, v: Tensor, grad_out: Tensor, is_causal: bool
) -> dict[str, Tensor | None]:
    """The output and the gradients of ``sum(out * grad_out)`` with respect to q, k and v."""
    q, k, v = leaf_inputs(q, k, v)
    out = attention_function(adapters, impl).apply(q, k, v, is_causal)
    out.backward(grad_out.to(out.device))
    grads = {name: None if t.grad is None else t.grad.cpu() for name, t in (("dq", q), ("dk", k), ("dv", v))}
    return {"out": out.detach().cpu(), **grads}
