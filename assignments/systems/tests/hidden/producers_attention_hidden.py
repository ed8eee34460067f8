"""Producers of the hidden attention tests: strided inputs, and which PyTorch operators a forward calls.

Like ``tests/producers_attention.py``: the adapter module comes first, results are plain CPU tensors
or lists of names, and no expected value lives here.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

from tests.producers_attention import attention_function, leaf_inputs


def attention_backward_strided(
    adapters: ModuleType, impl: str, q: Tensor, k: Tensor, v: Tensor, is_causal: bool
) -> dict[str, Tensor | None]:
    """Like ``attention_backward`` with inputs that are not contiguous and the loss ``out.sum()``.

    Q, K and V are views of (batch, d, seq) tensors, as after moving a head dimension around; the
    sum hands the backward an expanded dO whose strides are all 0. Gradients come back contiguous.
    """
    leaves = leaf_inputs(*(t.transpose(1, 2).contiguous() for t in (q, k, v)))  # (batch, d, seq) each
    out = attention_function(adapters, impl).apply(*(t.transpose(1, 2) for t in leaves), is_causal)
    out.sum().backward()
    grads = [None if t.grad is None else t.grad.transpose(1, 2).contiguous().cpu() for t in leaves]
    return {"out": out.detach().cpu(), "dq": grads[0], "dk": grads[1], "dv": grads[2]}


class OperatorLog(TorchDispatchMode):
    """Records the name of every PyTorch operator run while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.names.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def operators_in_forward(adapters: ModuleType, impl: str, q: Tensor, k: Tensor, v: Tensor, is_causal: bool) -> list[str]:
    """The PyTorch operators one forward calls, after a first call (which may compile and autotune)."""
    q, k, v = leaf_inputs(q, k, v)
    function = attention_function(adapters, impl)
    function.apply(q, k, v, is_causal)
    with OperatorLog() as log:
        function.apply(q, k, v, is_causal)
    return sorted(log.names)
