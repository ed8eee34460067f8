"""The attention workload: inputs from a seed, the timed pass, the outputs checked, and the truth.

An implementation is the adapter's ``torch.autograd.Function`` class, called as
``apply(Q, K, V, is_causal)`` with Q, K, V of shape (batch * heads, seq, head_dim). One timed pass
is its forward, and with ``passes: forward_backward`` also its backward for an upstream gradient
dO. The truth is PyTorch's ``scaled_dot_product_attention`` in fp32 on the same inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .guards import Primitives

Tensors = dict[str, Any]  # name -> torch.Tensor
Attend = Callable[[Any, Any, Any, bool], Any]


class WrongOutput(Exception):
    """The implementation returned something that is not the output the contract asks for."""


def as_attend(impl: Any) -> Attend:
    """The adapter's Function class is called through ``apply``; a plain function is called as is."""
    apply = getattr(impl, "apply", None)
    if callable(apply):
        return apply  # type: ignore[no-any-return]
    if callable(impl):
        return impl  # type: ignore[no-any-return]
    raise WrongOutput(f"the adapter returned {type(impl).__name__}, not an autograd Function class or a function")


class Attention:
    def __init__(self, params: dict[str, Any], prims: Primitives) -> None:
        import torch

        self.prims = prims
        self.batch, self.heads = params["batch"], params["heads"]
        self.shape = (self.batch * self.heads, params["seq"], params["head_dim"])
        self.causal = bool(params["causal"])
        self.dtype = getattr(torch, params["dtype"])
        self.backward = params["passes"] == "forward_backward"
        self.names = ("O", "dQ", "dK", "dV") if self.backward else ("O",)

    def inputs(self, seed: int) -> Tensors:
        """Q, K, V and dO drawn from N(0, 1) by a generator seeded with ``seed``: the same on both sides."""
        generator = self.prims.generator(device=self.prims.device)
        generator.manual_seed(seed)
        q, k, v, d_o = (
            self.prims.randn(self.shape, generator=generator, device=self.prims.device, dtype=self.dtype)
            for _ in range(4)
        )
        if self.backward:
            for t in (q, k, v):
                t.requires_grad_(True)
        return {"Q": q, "K": k, "V": v, "dO": d_o}

    def step(self, attend: Attend, inputs: Tensors) -> Any:
        """The timed pass: forward, and backward through the returned tensor when asked."""
        out = attend(inputs["Q"], inputs["K"], inputs["V"], self.causal)
        if self.backward:
            self.prims.backward((out,), (inputs["dO"],))
        return out

    def outputs(self, inputs: Tensors, out: Any) -> Tensors:
        """O (and dQ, dK, dV) after a pass, each checked to be a plain tensor of Q's shape.

        A tensor subclass is refused: one could compute its values lazily, when they are read
        after the timed region, instead of inside it.
        """
        import torch

        found = {"O": out}
        if self.backward:
            found |= {"dQ": inputs["Q"].grad, "dK": inputs["K"].grad, "dV": inputs["V"].grad}
        for name, tensor in found.items():
            what = "the output" if name == "O" else f"the gradient of {name[1:]}"
            if tensor is None:
                raise WrongOutput(f"{what} is missing (None)")
            if type(tensor) is not torch.Tensor:
                raise WrongOutput(f"{what} is a {type(tensor).__name__}, not a plain torch.Tensor")
            if tuple(tensor.shape) != self.shape:
                raise WrongOutput(f"{what} has shape {tuple(tensor.shape)}, expected {self.shape}")
        return {name: t.detach() for name, t in found.items()}

    def check(self, inputs: Tensors, out: Any) -> None:
        """Run after every timed iteration (untimed): the same checks as :meth:`outputs`."""
        self.outputs(inputs, out)

    def truth(self, inputs: Tensors) -> Tensors:
        """The same pass in fp32 through PyTorch's scaled_dot_product_attention."""
        import torch
        import torch.nn.functional as F

        four = (self.batch, self.heads, *self.shape[1:])
        with torch.enable_grad():
            q, k, v = (inputs[n].detach().float().reshape(four).requires_grad_(self.backward) for n in "QKV")
            out = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
            found = {"O": out.detach().reshape(self.shape)}
            if self.backward:
                grads = torch.autograd.grad(out, (q, k, v), inputs["dO"].float().reshape(four))
                found |= {f"d{n}": g.reshape(self.shape) for n, g in zip("QKV", grads, strict=True)}
        return found

    def sdpa(self) -> Attend:
        """PyTorch's own fused attention (the flash backend for 16-bit inputs on a GPU): a baseline."""
        import torch.nn.functional as F
        from torch.nn.attention import SDPBackend, sdpa_kernel

        # (batch * heads, 1, seq, d): the same work as (batch, heads, seq, d), and the output, which the
        # flash kernel lays out as (batch, seq, heads, d), folds back to (batch * heads, seq, d) without a copy.
        four = (self.shape[0], 1, *self.shape[1:])

        def attend(q: Any, k: Any, v: Any, causal: bool) -> Any:
            out = F.scaled_dot_product_attention(q.reshape(four), k.reshape(four), v.reshape(four), is_causal=causal)
            return out.reshape(q.shape)

        if self.prims.device != "cuda" or self.dtype.itemsize != 2:
            return attend  # fp32 or the CPU: whichever backend PyTorch picks

        def flash(q: Any, k: Any, v: Any, causal: bool) -> Any:
            with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
                return attend(q, k, v, causal)

        return flash


def compare(got: Tensors, want: Tensors) -> dict[str, dict[str, float]]:
    """Per tensor: ||got - want|| / ||want|| and max|got - want| / max|want|, computed in fp32."""
    errors = {}
    for name, truth in want.items():
        if name not in got:
            raise WrongOutput(f"{name} is missing from the saved outputs")
        tensor = got[name]
        if tuple(tensor.shape) != tuple(truth.shape):
            raise WrongOutput(f"{name} has shape {tuple(tensor.shape)}, expected {tuple(truth.shape)}")
        diff = tensor.to(truth.device).float() - truth
        scale_l2 = float(truth.norm()) or 1.0
        scale_max = float(truth.abs().max()) or 1.0
        errors[name] = {
            "rel_l2": _finite(float(diff.norm()) / scale_l2),
            "rel_max": _finite(float(diff.abs().max()) / scale_max),
        }
    return errors


def _finite(value: float) -> float:
    """NaN and infinity become a huge error: JSON carries them, and any tolerance rejects them."""
    return value if value == value and abs(value) != float("inf") else 1e30
