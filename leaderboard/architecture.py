"""The reference Transformer LM, built from a :class:`ModelConfig`, with a submission's weights in it.

The model code is the course's own ``reference/<unit>/`` (not part of the installed toolkit).
:func:`reference_package` imports that folder as a private package, so the evaluator runs the very
code students are taught from, whatever packages are installed. Two knobs the reference does not
have are added here, without touching it:

- tied embeddings: ``lm_head.weight`` *is* ``token_embeddings.weight``, so the checkpoint omits it;
- post-norm: each block computes ``ln1(x + attn(x))``, then ``ln2(· + ffn(·))``. The parameters
  and their names are the reference's, ``ln_final`` included.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import sys
import threading
import types
from typing import Any

import torch
from torch import Tensor, nn

from ..grader.course import Course
from .config import ModelConfig

_PRIVATE_PREFIX = "_lmcourse_reference"
_import_lock = threading.Lock()


def reference_package(course: Course, unit: str = "basics") -> types.ModuleType:
    """``reference/<unit>/`` of ``course``, imported once as a private package.

    Its name (``_lmcourse_reference_<unit>_<hash of the folder>``) cannot clash with a student's
    ``lmc_basics`` or with another course's reference loaded in the same process. Submodules
    import as ``<name>.model``, ``<name>.train``, ...
    """
    folder = course.unit(unit, enabled_only=False).require_reference().resolve()
    name = f"{_PRIVATE_PREFIX}_{unit}_{hashlib.sha256(str(folder).encode()).hexdigest()[:12]}"
    with _import_lock:  # evaluations run in threads: none may see a half-imported package
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])
        assert spec is not None and spec.loader is not None  # a path ending in .py always has a loader
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package  # before running it: its relative imports look the package up
        try:
            spec.loader.exec_module(package)
        except BaseException:
            del sys.modules[name]
            raise
        return package


def tensor_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor a checkpoint of ``config`` holds (the reference's state dict)."""
    d, ff, vocab = config.d_model, config.d_ff, config.vocab_size
    shapes: dict[str, tuple[int, ...]] = {"token_embeddings.weight": (vocab, d)}
    for i in range(config.num_layers):
        block = f"layers.{i}"
        shapes[f"{block}.ln1.weight"] = (d,)
        for projection in ("q_proj", "k_proj", "v_proj", "output_proj"):
            shapes[f"{block}.attn.{projection}.weight"] = (d, d)
        shapes[f"{block}.ln2.weight"] = (d,)
        shapes[f"{block}.ffn.w1.weight"] = (ff, d)
        shapes[f"{block}.ffn.w2.weight"] = (d, ff)
        shapes[f"{block}.ffn.w3.weight"] = (ff, d)
    shapes["ln_final.weight"] = (d,)
    if not config.tie_embeddings:
        shapes["lm_head.weight"] = (vocab, d)
    return shapes


def parameter_count(config: ModelConfig) -> int:
    """Parameters of a model of ``config``; tied embeddings count once."""
    return sum(math.prod(shape) for shape in tensor_shapes(config).values())


def build_model(
    config: ModelConfig, course: Course, *, context_length: int | None = None, device: str | torch.device = "cpu"
) -> nn.Module:
    """A reference ``TransformerLM`` of ``config`` (freshly initialised) on ``device``, in fp32.

    ``context_length`` overrides the config's: it sizes the RoPE tables and caps the input length.
    """
    model_module = importlib.import_module(f"{reference_package(course).__name__}.model")
    model = model_module.TransformerLM(
        vocab_size=config.vocab_size,
        context_length=context_length or config.context_length,
        d_model=config.d_model,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        d_ff=config.d_ff,
        rope_theta=config.rope_theta,
        device=torch.device(device),
    )
    if config.tie_embeddings:
        model.lm_head.weight = model.token_embeddings.weight  # one Parameter under two names
    if config.norm == "post":
        for block in model.layers:
            block.forward = types.MethodType(_post_norm_forward, block)
    return model


def _post_norm_forward(block: Any, x: Tensor, token_positions: Tensor | None = None) -> Tensor:
    """The forward pass of a reference ``TransformerBlock`` ``block``, normalising *after* each residual addition.

    x: (..., seq, d_model); token_positions: (..., seq) or None -> (..., seq, d_model).
    """
    x = block.ln1(x + block.attn(x, token_positions))
    return block.ln2(x + block.ffn(x))


def load_weights(model: nn.Module, config: ModelConfig, tensors: dict[str, Tensor]) -> nn.Module:
    """Copy ``tensors`` (names and shapes as :func:`tensor_shapes`) into ``model``, as fp32, for inference only."""
    state = {name: tensor.to(torch.float32) for name, tensor in tensors.items()}
    if config.tie_embeddings:
        state["lm_head.weight"] = state["token_embeddings.weight"]  # the state dict lists the shared tensor twice
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False)

