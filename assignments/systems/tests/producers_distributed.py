"""Producers of the distributed tests (DDP, FSDP, optimizer sharding), and the problems they share with the tests.

A producer takes the adapter module first and runs a whole training scenario on several ranks
through :func:`tests.distributed.run_on_ranks`; on the grader that happens inside the sandbox and
only plain data comes out (final weights, shapes, dtypes, what each collective was called with).
Producers hold no expected values. The ``*_model``, ``*_weights`` and ``batch`` builders make the
same models and data from seeds on both sides, and the ``train_single_process*`` functions train
them on one process with plain PyTorch: the tests compute their expectations with those, on the
trusted side.

Two models: ``toy`` (torch.nn layers: an Embedding and Linear layers whose sizes do not divide
evenly by the world size, a LayerNorm, a bias, a frozen parameter and a buffer; ``toy_tied``
shares one weight between two layers) and ``lm``, the basics unit's ``TransformerLM``. The trusted
side cannot import the basics package, so it runs the same network as a functional model on the
same weights.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tests.distributed import run_on_ranks

#: The basics unit's package in this course (prefix from course.yaml, as in adapters.py).
BASICS_PACKAGE = "lmc_basics"
LM_CONFIG = {
    "vocab_size": 32,
    "context_length": 8,
    "d_model": 16,
    "num_layers": 2,
    "num_heads": 2,
    "d_ff": 24,
    "rope_theta": 10_000.0,
}
TOY_VOCAB, TOY_CLASSES, TOY_SEQ = 11, 7, 4
ROWS_PER_RANK = 3
SGD = {"lr": 0.2, "momentum": 0.9}


# ---- models and data (built the same way on both sides) ----


class ToyModel(nn.Module):
    """Classifies sequences of token ids (batch, seq) into 7 classes; logits (batch, 7).

    Sharded weights of 11×9, 15×9, 15×15 and 7×15: odd element counts, which two ranks cannot split evenly.
    """

    def __init__(self, tied: bool = False) -> None:
        super().__init__()
        self.embed = nn.Embedding(TOY_VOCAB, 9)
        self.fc1 = nn.Linear(9, 15)
        self.ln = nn.LayerNorm(15)
        self.fc2 = nn.Linear(15, 15, bias=False)
        self.fc3 = nn.Linear(15, 15, bias=False)
        self.head = nn.Linear(15, TOY_CLASSES, bias=False)
        self.frozen = nn.Parameter(torch.randn(TOY_CLASSES) * 0.1, requires_grad=False)
        self.register_buffer("scale", torch.tensor(0.5))
        if tied:
            self.fc3.weight = self.fc2.weight

    def forward(self, ids: Tensor) -> Tensor:
        x = F.relu(self.ln(self.fc1(self.embed(ids))))  # (batch, seq, 15)
        x = F.relu(self.fc3(F.relu(self.fc2(x)))) + x
        return self.head(x.mean(dim=-2)) * self.scale + self.frozen


def toy_model(seed: int, tied: bool = False) -> ToyModel:
    """A ToyModel initialised from ``seed`` (PyTorch's default initialisation, seeded)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return ToyModel(tied)


def lm_shapes() -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of ``TransformerLM(**LM_CONFIG)``, in registration order."""
    vocab, d, d_ff = LM_CONFIG["vocab_size"], LM_CONFIG["d_model"], LM_CONFIG["d_ff"]
    shapes: dict[str, tuple[int, ...]] = {"token_embeddings.weight": (vocab, d)}
    for i in range(LM_CONFIG["num_layers"]):
        prefix = f"layers.{i}."
        shapes[prefix + "ln1.weight"] = (d,)
        for proj in ("q_proj", "k_proj", "v_proj", "output_proj"):
            shapes[f"{prefix}attn.{proj}.weight"] = (d, d)
        shapes[prefix + "ln2.weight"] = (d,)
        shapes.update(
            {
                prefix + "ffn.w1.weight": (d_ff, d),
                prefix + "ffn.w2.weight": (d, d_ff),
                prefix + "ffn.w3.weight": (d_ff, d),
            }
        )
    shapes["ln_final.weight"] = (d,)
    shapes["lm_head.weight"] = (vocab, d)
    return shapes


def lm_weights(seed: int) -> dict[str, Tensor]:
    """Weights of the LM from ``seed``: matrices N(0, 1/fan_in), gains 1 ± 0.1."""
    generator = torch.Generator().manual_seed(seed)
    weights = {}
    for name, shape in lm_shapes().items():
        noise = torch.randn(shape, generator=generator)
        weights[name] = 1 + 0.1 * noise if len(shape) == 1 else noise / shape[-1] ** 0.5
    return weights


def basics_lm(seed: int) -> nn.Module:
    """The basics unit's ``TransformerLM`` holding :func:`lm_weights` (``seed``); sandbox side only."""
    basics = importlib.import_module(BASICS_PACKAGE)
    model = basics.TransformerLM(**LM_CONFIG)
    model.load_state_dict(lm_weights(seed))
    return model


def batch(kind: str, seed: int, step: int, rows: int) -> tuple[Tensor, Tensor]:
    """Inputs and targets of training step ``step``: ids (rows, 4) and labels (rows,) for the toy
    model; ids and the next ids (rows, 8) for the LM."""
    generator = torch.Generator().manual_seed(1000 * seed + step)
    if kind == "lm":
        tokens = torch.randint(LM_CONFIG["vocab_size"], (rows, LM_CONFIG["context_length"] + 1), generator=generator)
        return tokens[:, :-1], tokens[:, 1:]
    ids = torch.randint(TOY_VOCAB, (rows, TOY_SEQ), generator=generator)
    return ids, torch.randint(TOY_CLASSES, (rows,), generator=generator)


def loss_of(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy over every prediction, in fp32 whatever the logits' dtype."""
    return F.cross_entropy(logits.float().flatten(0, -2), targets.flatten())


def rank_rows(rank: int, world_size: int) -> slice:
    """The rows of a (ROWS_PER_RANK · world_size)-row batch that ``rank`` trains on."""
    return slice(rank * ROWS_PER_RANK, (rank + 1) * ROWS_PER_RANK)


# ---- single-process training: the trusted side's expectations ----


def rope(x: Tensor, theta: float) -> Tensor:
    """Rotate adjacent pairs of x (..., seq, d) at positions 0..seq-1 (complex float64)."""
    d, seq = x.shape[-1], x.shape[-2]
    angles = torch.arange(seq, dtype=torch.float64)[:, None] * theta ** (
        -torch.arange(0, d, 2, dtype=torch.float64) / d
    )
    pairs = torch.view_as_complex(x.double().unflatten(-1, (-1, 2)).contiguous())
    return torch.view_as_real(pairs * torch.polar(torch.ones_like(angles), angles)).flatten(-2).to(x.dtype)


def functional_lm(ids: Tensor, w: dict[str, Tensor]) -> Tensor:
    """The basics TransformerLM written with torch.nn.functional: logits (batch, seq, vocab)."""
    heads, theta = LM_CONFIG["num_heads"], LM_CONFIG["rope_theta"]

    def split(t: Tensor) -> Tensor:
        return t.unflatten(-1, (heads, -1)).transpose(-3, -2)

    def norm(t: Tensor, name: str) -> Tensor:
        return F.rms_norm(t, t.shape[-1:], w[name], eps=1e-5)

    x = F.embedding(ids, w["token_embeddings.weight"])
    for i in range(LM_CONFIG["num_layers"]):
        p = f"layers.{i}."
        h = norm(x, p + "ln1.weight")
        q, k = (rope(split(F.linear(h, w[f"{p}attn.{n}.weight"])), theta) for n in ("q_proj", "k_proj"))
        v = split(F.linear(h, w[p + "attn.v_proj.weight"]))
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(-3, -2).flatten(-2)
        x = x + F.linear(attended, w[p + "attn.output_proj.weight"])
        h = norm(x, p + "ln2.weight")
        x = x + F.linear(
            F.silu(F.linear(h, w[p + "ffn.w1.weight"])) * F.linear(h, w[p + "ffn.w3.weight"]), w[p + "ffn.w2.weight"]
        )
    return F.linear(norm(x, "ln_final.weight"), w["lm_head.weight"])


def single_process_model(kind: str, seed: int) -> tuple[dict[str, Tensor], Callable[[Tensor], Tensor]]:
    """Trainable leaf tensors by name and the forward function of ``kind`` built from ``seed``."""
    if kind == "lm":
        weights = {name: w.requires_grad_() for name, w in lm_weights(seed).items()}
        return weights, lambda ids: functional_lm(ids, weights)
    model = toy_model(seed, tied=kind == "toy_tied")
    return dict(model.named_parameters()), model


def train_single_process(kind: str, seed: int, steps: int, world_size: int = 2) -> dict[str, Tensor]:
    """The weights after ``steps`` SGD steps on the whole batch of every rank together: what data
    parallelism must reproduce."""
    weights, forward = single_process_model(kind, seed)
    optimizer = torch.optim.SGD([w for w in weights.values() if w.requires_grad], **SGD)
    for step in range(steps):
        ids, targets = batch(kind, seed, step, ROWS_PER_RANK * world_size)
        optimizer.zero_grad()
        loss_of(forward(ids), targets).backward()
        optimizer.step()
    return {name: w.detach().clone() for name, w in weights.items()}


def initial_weights(kind: str, seed: int) -> dict[str, Tensor]:
    """The weights of ``kind`` built from ``seed``, before any step."""
    weights, _ = single_process_model(kind, seed)
    return {name: w.detach().clone() for name, w in weights.items()}


# ---- what the ranks run ----


def build_model(kind: str, seed: int) -> nn.Module:
    """The model a rank trains: the toy model, or the basics TransformerLM holding :func:`lm_weights`."""
    return basics_lm(seed) if kind == "lm" else toy_model(seed, tied=kind == "toy_tied")


def first_weight(model: nn.Module) -> Tensor:
    """The weight backward reaches last (the embedding's): its gradient marks the end of backward."""
    return model.token_embeddings.weight if hasattr(model, "token_embeddings") else model.embed.weight


class AllReduceLog:
    """Replaces ``torch.distributed.all_reduce`` with a wrapper that records each call.

    Installed before the student's package is imported, so ``from torch.distributed import
    all_reduce`` picks up the wrapper too. For each call while ``recording``: the tensor's element
    and byte counts, whether it was asynchronous, and whether backward was still running
    (``watched``, the first layer's weight, had no gradient yet; the loop zeroes grads to None).
    """

    def __init__(self) -> None:
        import torch.distributed as dist

        self.calls: list[dict[str, Any]] = []
        self.recording = False
        self.watched: Tensor | None = None
        original = dist.all_reduce
        signature = inspect.signature(original)

        def all_reduce(tensor: Tensor, *args: Any, **kwargs: Any) -> Any:
            if self.recording:
                bound = signature.bind(tensor, *args, **kwargs).arguments
                self.calls.append({
                    "numel": tensor.numel(),
                    "bytes": tensor.numel() * tensor.element_size(),
                    "async": bool(bound.get("async_op", False)),
                    "during_backward": self.watched is not None and self.watched.grad is None,
                })  # fmt: skip
            return original(tensor, *args, **kwargs)

        dist.all_reduce = all_reduce
        dist.distributed_c10d.all_reduce = all_reduce


def ddp_rank(
    rank: int,
    world_size: int,
    adapters_name: str,
    flavour: str,
    kind: str,
    seed: int,
    steps: int,
    bucket_size_mb: float | None,
) -> dict[str, Any]:
    """Train ``kind`` with a DDP flavour (``individual``, ``ddp`` or ``bucketed``) on this rank's rows.

    Each rank initialises its model from ``seed + rank``: construction must hand every rank rank
    0's weights. Returns the final weights, the all-reduce log and the wrapper's shape.
    """
    log = AllReduceLog()
    adapters = importlib.import_module(adapters_name)
    model = build_model(kind, seed + rank)
    if flavour == "bucketed":
        wrapped = adapters.get_ddp_bucketed(model, bucket_size_mb)
        before_step, after_backward = (
            adapters.ddp_bucketed_on_train_batch_start,
            adapters.ddp_bucketed_on_after_backward,
        )
    else:
        get = adapters.get_ddp if flavour == "ddp" else adapters.get_ddp_individual_parameters
        wrapped = get(model)
        before_step = None
        after_backward = (
            adapters.ddp_on_after_backward if flavour == "ddp" else adapters.ddp_individual_parameters_on_after_backward
        )
    optimizer = torch.optim.SGD([p for p in wrapped.parameters() if p.requires_grad], **SGD)
    log.watched, log.recording = first_weight(model), True
    calls_per_step = []
    for step in range(steps):
        if before_step is not None:
            before_step(wrapped, optimizer)
        ids, targets = batch(kind, seed, step, ROWS_PER_RANK * world_size)
        rows = rank_rows(rank, world_size)
        optimizer.zero_grad(set_to_none=True)
        loss_of(wrapped(ids[rows]), targets[rows]).backward()
        after_backward(wrapped, optimizer)
        calls_per_step.append(len(log.calls))
        optimizer.step()
    log.recording = False
    own = {id(p) for p in model.parameters()}
    return {
        "weights": {name: p.detach().clone() for name, p in model.named_parameters()},
        "calls": log.calls,
        "calls_per_step": calls_per_step,
        "module_is_wrapped": getattr(wrapped, "module", None) is model,
        "extra_parameters": sum(1 for p in wrapped.parameters() if id(p) not in own),
    }


def ddp_training(
    adapters: ModuleType,
    flavour: str,
    kind: str,
    seed: int,
    steps: int,
    bucket_size_mb: float | None = None,
    world_size: int = 2,
) -> list[dict[str, Any]]:
    """Per rank: ``weights`` after training, ``calls`` (one dict per all-reduce during the steps),
    ``calls_per_step`` (cumulative counts), ``module_is_wrapped``, ``extra_parameters``."""
    return run_on_ranks(ddp_rank, adapters.__name__, flavour, kind, seed, steps, bucket_size_mb, world_size=world_size)


def fsdp_rank(
    rank: int, world_size: int, adapters_name: str, kind: str, seed: int, steps: int, bf16: bool
) -> dict[str, Any]:
    """Train ``kind`` under FSDP on this rank's rows (every rank starts from the same weights)."""
    adapters = importlib.import_module(adapters_name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build_model(kind, seed)
        wrapped = adapters.get_fsdp(model, torch.bfloat16 if bf16 else None)
        local = {name: {"numel": p.numel(), "dtype": str(p.dtype)} for name, p in wrapped.named_parameters()}
        optimizer = torch.optim.SGD([p for p in wrapped.parameters() if p.requires_grad], **SGD)
        for step in range(steps):
            ids, targets = batch(kind, seed, step, ROWS_PER_RANK * world_size)
            rows = rank_rows(rank, world_size)
            optimizer.zero_grad(set_to_none=True)
            logits = wrapped(ids[rows])
            loss_of(logits, targets[rows]).backward()
            adapters.fsdp_on_after_backward(wrapped, optimizer)
            grad_dtypes = {name: str(p.grad.dtype) for name, p in wrapped.named_parameters() if p.grad is not None}
            optimizer.step()
        full = adapters.fsdp_gather_full_params(wrapped)
    return {
        "full": {name: t.detach().float().clone() for name, t in full.items()},
        "local": local,
        "grad_dtypes": grad_dtypes,
        "logits_dtype": str(logits.dtype),
        "warnings": [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught],
    }


def fsdp_training(
    adapters: ModuleType, kind: str, seed: int, steps: int, bf16: bool = False, world_size: int = 2
) -> list[dict[str, Any]]:
    """Per rank: ``full`` (gather_full_params after training), ``local`` (numel and dtype of each
    of the wrapped model's named parameters), ``grad_dtypes``, ``logits_dtype``, ``warnings``."""
    return run_on_ranks(fsdp_rank, adapters.__name__, kind, seed, steps, bf16, world_size=world_size)


# ---- optimizer sharding ----

ADAMW = {"lr": 0.02, "weight_decay": 0.1, "betas": (0.9, 0.95), "eps": 1e-8}
_INNER_OPTIMIZERS: list[torch.optim.Optimizer] = []  # every RecordedAdamW made in this process


class RecordedAdamW(torch.optim.AdamW):
    """torch.optim.AdamW that remembers its instances: a rank's inner optimizers show what it owns."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _INNER_OPTIMIZERS.append(self)


def group_params(weights: dict[str, Tensor], groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Param groups from groups that name their parameters: ``{"params": [names], **hyper}``."""
    return [{**group, "params": [weights[name] for name in group["params"]]} for group in groups]


def train_adamw_single_process(
    seed: int,
    steps: int,
    groups: list[dict[str, Any]],
    late_group: dict[str, Any] | None = None,
    lr_factors: list[float] | None = None,
) -> dict[str, Tensor]:
    """torch.optim.AdamW on the toy model and the whole batch: what the sharded optimizer must reproduce.

    ``late_group`` is added before the second step; ``lr_factors[t]`` scales each group's
    learning rate at step t, as a scheduler would.
    """
    model = toy_model(seed)
    weights = dict(model.named_parameters())
    optimizer = torch.optim.AdamW(group_params(weights, groups), **ADAMW)
    train_toy(model, optimizer, seed, range(steps), [*groups, late_group] if late_group else groups, lr_factors)
    return {name: w.detach().clone() for name, w in weights.items()}


def train_toy(
    model: nn.Module, optimizer: torch.optim.Optimizer, seed: int, steps: range,
    groups: list[dict[str, Any]], lr_factors: list[float] | None,
) -> None:  # fmt: skip
    """The loop both sides run; every rank computes the gradient of the whole batch. ``groups``
    beyond those the optimizer has are added before step 1."""
    weights = dict(model.named_parameters())
    for step in steps:
        if step >= 1:
            for group in groups[len(optimizer.param_groups) :]:
                optimizer.add_param_group(group_params(weights, [group])[0])
        if lr_factors is not None:
            for group, spec in zip(optimizer.param_groups, groups):
                group["lr"] = spec.get("lr", ADAMW["lr"]) * lr_factors[step]
        ids, targets = batch("toy", seed, step, ROWS_PER_RANK * 2)
        optimizer.zero_grad(set_to_none=True)
        loss_of(model(ids), targets).backward()
        optimizer.step()


def sharded_optimizer_rank(
    rank: int, world_size: int, adapters_name: str, seed: int, steps: int,
    groups: list[dict[str, Any]], late_group: dict[str, Any] | None, lr_factors: list[float] | None,
) -> dict[str, Any]:  # fmt: skip
    """Train the toy model with the sharded optimizer wrapped around RecordedAdamW."""
    adapters = importlib.import_module(adapters_name)
    model = toy_model(seed)
    weights = dict(model.named_parameters())
    optimizer = adapters.get_sharded_optimizer(group_params(weights, groups), RecordedAdamW, **ADAMW)
    train_toy(model, optimizer, seed, range(steps), [*groups, late_group] if late_group else groups, lr_factors)
    name_of = {id(p): name for name, p in weights.items()}
    inner = [o for o in _INNER_OPTIMIZERS if o is not optimizer]
    return {
        "weights": {name: w.detach().clone() for name, w in weights.items()},
        "is_optimizer": isinstance(optimizer, torch.optim.Optimizer),
        "group_sizes": [len(group["params"]) for group in optimizer.param_groups],
        "owned": sorted({name_of[id(p)] for o in inner for g in o.param_groups for p in g["params"]}),
        "with_state": sorted({name_of[id(p)] for o in inner for p, s in o.state.items() if s}),
    }


def sharded_optimizer_training(
    adapters: ModuleType, seed: int, steps: int, groups: list[dict[str, Any]],
    late_group: dict[str, Any] | None = None, lr_factors: list[float] | None = None, world_size: int = 2,
) -> list[dict[str, Any]]:  # fmt: skip
    """Per rank: ``weights`` after training, ``is_optimizer``, ``group_sizes`` (parameters per
    group of the wrapper), ``owned`` (names of the parameters its inner optimizers hold) and
    ``with_state`` (those of them with optimizer state)."""
    return run_on_ranks(
        sharded_optimizer_rank, adapters.__name__, seed, steps, groups, late_group, lr_factors, world_size=world_size
    )


# ---- comparisons the tests share ----


def assert_weights_close(
    got: dict[str, Tensor], expected: dict[str, Tensor], where: str, rtol: float = 1e-4, atol: float = 1e-5
) -> None:
    """Every expected weight is present in ``got`` and equal to within the tolerances."""
    missing = sorted(set(expected) - set(got))
    assert not missing, f"{where}: no weights named {missing}"
    for name, weight in expected.items():
        torch.testing.assert_close(
            got[name].float(), weight, rtol=rtol, atol=atol, msg=lambda m, n=name: f"{where}, {n}: {m}"
        )
