"""The sandbox side of a custom-code evaluation: build the student's model and score the windows it is sent.

This file is copied into the sandbox as ``tests/lmcourse_custom_producer.py`` beside the student's
package ``custom_model/`` and called through the grader's worker (:mod:`lmcourse.grader.grading.worker`),
which passes the (empty) adapters module first. It imports only torch and safetensors: nothing of
lmcourse is mounted in the sandbox. Everything it returns is untrusted data -- the student's code
runs in this same process and could change any of it -- which is why custom entries stay
unverified until staff re-run them; the trusted side only checks that the numbers are well formed.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load

_loaded: dict[str, Any] = {}


def load_model(adapters: Any, weights: bytes, config: dict[str, Any]) -> int:
    """Build ``custom_model.model.build_model(config)``, load ``weights`` strictly; returns its parameter count."""
    from custom_model.model import build_model  # the student's package, importable from the code folder

    model = build_model(dict(config))
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"build_model returned {type(model).__name__}, not a torch.nn.Module")
    model.load_state_dict(load(weights), strict=True)
    model.float().eval()
    _loaded["model"], _loaded["vocab"] = model, int(config["vocab_size"])
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def window_nats(adapters: Any, inputs: torch.Tensor, targets: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
    """Summed nats of the scored targets of each window: float64, shape (windows,).

    inputs, targets: (windows, length) int64; scored: (windows, length) bool.
    """
    model, vocab = _loaded["model"], _loaded["vocab"]
    logits = model(inputs)
    if tuple(logits.shape) != (*inputs.shape, vocab):
        raise ValueError(f"the model returned logits of shape {tuple(logits.shape)}, not {(*inputs.shape, vocab)}")
    nats = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none").view(targets.shape)
    return torch.where(scored, nats.double(), 0.0).sum(dim=1)
