"""Producers: functions the tests run against student code, returning plain data.

A producer takes the adapter module as its first argument, builds objects through it, runs
them (optimizer steps, a checkpoint round trip, sampling) and returns tensors, numbers,
lists or dicts. Tests call ``student.run(producers.name, ...)``; at home that is a plain
call, under the grader it runs in the sandbox. Producers hold no expected values.
"""

from __future__ import annotations

# ---- tokenizer producers ----
# A tokenizer cannot leave the sandbox, so each producer builds one through the adapters, uses
# it and returns ids, strings or counts. Errors come back as data: the names of the exception
# classes and the message.
import tempfile  # noqa: E402  (each section of this file keeps its own imports)
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

Vocab = dict[int, bytes]
Merges = list[tuple[bytes, bytes]]


def encode_texts(
    adapters: ModuleType, vocab: Vocab, merges: Merges, special_tokens: list[str] | None, texts: list[str]
) -> list[list[int]]:
    """``encode(text)`` for each text."""
    tokenizer = adapters.get_tokenizer(vocab, merges, special_tokens)
    return [[int(i) for i in tokenizer.encode(text)] for text in texts]


def encode_texts_from_files(
    adapters: ModuleType, vocab_path: str, merges_path: str, special_tokens: list[str] | None, texts: list[str]
) -> list[list[int]]:
    """``encode(text)`` for each text, with a tokenizer loaded from GPT-2's file formats."""
    tokenizer = adapters.get_tokenizer_from_files(vocab_path, merges_path, special_tokens)
    return [[int(i) for i in tokenizer.encode(text)] for text in texts]


def decode_ids(
    adapters: ModuleType, vocab: Vocab, merges: Merges, special_tokens: list[str] | None, id_lists: list[list[int]]
) -> list[str]:
    """``decode(ids)`` for each list of ids."""
    tokenizer = adapters.get_tokenizer(vocab, merges, special_tokens)
    return [tokenizer.decode(ids) for ids in id_lists]


def encode_and_decode(
    adapters: ModuleType, vocab: Vocab, merges: Merges, special_tokens: list[str] | None, texts: list[str]
) -> list[dict[str, Any]]:
    """For each text: its ids, ``decode(ids)``, and each id decoded on its own."""
    tokenizer = adapters.get_tokenizer(vocab, merges, special_tokens)
    results = []
    for text in texts:
        ids = [int(i) for i in tokenizer.encode(text)]
        results.append({"ids": ids, "decoded": tokenizer.decode(ids), "pieces": [tokenizer.decode([i]) for i in ids]})
    return results


def encode_iterable_and_whole(
    adapters: ModuleType, vocab: Vocab, merges: Merges, special_tokens: list[str] | None, chunks: list[str]
) -> dict[str, list[int]]:
    """The ids of ``encode_iterable(chunks)`` and of ``encode("".join(chunks))``."""
    tokenizer = adapters.get_tokenizer(vocab, merges, special_tokens)
    return {
        "iterable": [int(i) for i in tokenizer.encode_iterable(iter(chunks))],
        "whole": [int(i) for i in tokenizer.encode("".join(chunks))],
    }


def encode_file_iterable_and_whole(
    adapters: ModuleType, vocab: Vocab, merges: Merges, special_tokens: list[str] | None, path: str
) -> dict[str, list[int]]:
    """The ids of ``encode_iterable`` over the open text file (its lines) and of ``encode``
    of the whole file."""
    tokenizer = adapters.get_tokenizer(vocab, merges, special_tokens)
    with open(path, encoding="utf-8") as file:
        streamed = [int(i) for i in tokenizer.encode_iterable(file)]
    with open(path, encoding="utf-8") as file:
        whole = [int(i) for i in tokenizer.encode(file.read())]
    return {"iterable": streamed, "whole": whole}


def lines_read_before_first_id(
    adapters: ModuleType, vocab: Vocab, merges: Merges, special_tokens: list[str] | None, line: str, num_lines: int
) -> int:
    """Feed ``encode_iterable`` a generator of ``num_lines`` copies of ``line``; return how many
    it had pulled when it yielded its first id."""
    tokenizer = adapters.get_tokenizer(vocab, merges, special_tokens)
    pulled = 0

    def lines() -> Iterator[str]:
        nonlocal pulled
        for _ in range(num_lines):
            pulled += 1
            yield line

    next(iter(tokenizer.encode_iterable(lines())))
    return pulled


def train_bpe_on_text(
    adapters: ModuleType, text: str, vocab_size: int, special_tokens: list[str]
) -> tuple[Vocab, Merges]:
    """Write ``text`` to a file in a private folder and train on it; returns ``(vocab, merges)``."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "corpus.txt"
        path.write_text(text, encoding="utf-8")
        vocab, merges = adapters.run_train_bpe(str(path), vocab_size, special_tokens)
    return {int(i): bytes(token) for i, token in vocab.items()}, [(bytes(a), bytes(b)) for a, b in merges]


def train_bpe_error(
    adapters: ModuleType, input_path: str, vocab_size: int, special_tokens: list[str]
) -> dict[str, Any]:
    """Train, expecting a failure: the exception's class names and message, or no error."""
    try:
        adapters.run_train_bpe(input_path, vocab_size, special_tokens)
    except Exception as error:  # the test judges which errors are acceptable
        return {"error": _error_names(error), "message": str(error)}
    return {"error": None, "message": ""}


# ---- model and training producers ----
# Each producer takes the adapter module first and returns plain data. The `*_problem` and
# `train_*` helpers build the same inputs from a seed on both sides, so the tests can compute
# their expectations with PyTorch built-ins without trusting anything the producer returns.

# tempfile, Path, ModuleType and Any are imported by the tokenizer section above.
import io  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402


def _error_names(error: BaseException) -> list[str]:
    """The class names of an exception and its bases, e.g. ['ValueError', 'Exception', ...].

    Shared with the tokenizer producers above.
    """
    return [cls.__name__ for cls in type(error).__mro__]


def clipping_problem(seed: int) -> list[nn.Parameter]:
    """Parameters with seeded gradients; the third one has none."""
    generator = torch.Generator().manual_seed(seed)
    params = [nn.Parameter(torch.randn(shape, generator=generator)) for shape in [(5, 4), (3,), (2, 3, 2), (4,)]]
    for i, p in enumerate(params):
        if i != 2:
            p.grad = torch.randn(p.shape, generator=generator) * 3
    return params


def clipped_gradients(adapters: ModuleType, seed: int, max_l2_norm: float) -> dict[str, Any]:
    """Clip the gradients of :func:`clipping_problem` through the student's code."""
    params = clipping_problem(seed)
    adapters.run_gradient_clipping(params, max_l2_norm)
    return {
        "grads": [p.grad.clone() for p in params if p.grad is not None],
        "missing_grad_still_none": params[2].grad is None,
    }


def optimizer_problem(seed: int) -> tuple[dict[str, Tensor], Tensor, Tensor]:
    """Initial weights of a two-layer network and a regression batch (inputs, targets)."""
    generator = torch.Generator().manual_seed(seed)
    weights = {
        "w1": torch.randn(16, 8, generator=generator) * 0.5,
        "b1": torch.zeros(16),
        "w2": torch.randn(4, 16, generator=generator) * 0.5,
    }
    inputs = torch.randn(32, 8, generator=generator)
    targets = torch.randn(32, 4, generator=generator)
    return weights, inputs, targets


def train_with_optimizer(
    optimizer_cls: type[torch.optim.Optimizer], seed: int, steps: int, groups: bool, **hyper: Any
) -> dict[str, Tensor]:
    """Minimise a regression loss for ``steps`` steps; returns the final weights.

    With ``groups``, the bias gets its own parameter group without weight decay and at half
    the learning rate.
    """
    weights, inputs, targets = optimizer_problem(seed)
    params = {name: nn.Parameter(value) for name, value in weights.items()}
    if groups:
        param_groups: Any = [
            {"params": [params["w1"], params["w2"]]},
            {"params": [params["b1"]], "weight_decay": 0.0, "lr": hyper["lr"] / 2},
        ]
    else:
        param_groups = list(params.values())
    optimizer = optimizer_cls(param_groups, **hyper)
    for _ in range(steps):
        hidden = torch.tanh(inputs @ params["w1"].T + params["b1"])
        loss = ((hidden @ params["w2"].T - targets) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {name: p.detach().clone() for name, p in params.items()}


def adamw_trajectory(adapters: ModuleType, seed: int, steps: int, groups: bool = False, **hyper: Any) -> dict[str, Any]:
    """Train with the student's AdamW; also reports whether it subclasses torch.optim.Optimizer."""
    adamw_cls = adapters.get_adamw_cls()
    return {
        "is_optimizer": isinstance(adamw_cls, type) and issubclass(adamw_cls, torch.optim.Optimizer),
        "weights": train_with_optimizer(adamw_cls, seed, steps, groups, **hyper),
    }


def get_batch_samples(
    adapters: ModuleType, seed: int, dataset_size: int, batch_size: int, context_length: int, num_batches: int, memmap: bool
) -> dict[str, Tensor]:
    """``num_batches`` batches over the tokens ``0, 1, ..., dataset_size-1``, stacked.

    With ``memmap`` the tokens come from a uint16 file opened with ``np.memmap``, as in training.
    """
    tokens = np.arange(dataset_size, dtype=np.uint16)
    torch.manual_seed(seed)
    np.random.seed(seed)
    with tempfile.TemporaryDirectory() as folder:
        if memmap:
            path = Path(folder) / "tokens.bin"
            tokens.tofile(path)
            tokens = np.memmap(path, dtype=np.uint16, mode="r")
        batches = [adapters.run_get_batch(tokens, batch_size, context_length, "cpu") for _ in range(num_batches)]
        del tokens  # release the memmap before its folder goes
    return {
        "x": torch.stack([x for x, _ in batches]),
        "y": torch.stack([y for _, y in batches]),
        "x_dtype": str(batches[0][0].dtype),
        "y_dtype": str(batches[0][1].dtype),
        "device": str(batches[0][0].device),
    }


def get_batch_outcome(adapters: ModuleType, dataset_size: int, context_length: int, device: str) -> dict[str, Any]:
    """Call get_batch once; returns the batch shape, or the exception it raised."""
    try:
        x, y = adapters.run_get_batch(np.arange(dataset_size), 2, context_length, device)
    except Exception as error:  # the test judges which errors are acceptable
        return {"error": _error_names(error), "message": str(error)}
    return {"error": None, "shape": list(x.shape), "device": str(x.device)}


def checkpoint_problem(seed: int) -> tuple[nn.Module, torch.optim.Optimizer, list[tuple[Tensor, Tensor]]]:
    """A small network, its optimizer (torch's AdamW) and eight seeded batches."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 3))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    generator = torch.Generator().manual_seed(seed + 1)
    batches = [(torch.randn(16, 6, generator=generator), torch.randn(16, 3, generator=generator)) for _ in range(8)]
    return model, optimizer, batches


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, batches: list[tuple[Tensor, Tensor]]) -> None:
    for inputs, targets in batches:
        optimizer.zero_grad()
        ((model(inputs) - targets) ** 2).mean().backward()
        optimizer.step()


def checkpoint_round_trip(adapters: ModuleType, seed: int, save_at: int, via: str) -> dict[str, Any]:
    """Train ``save_at`` steps, save; load into a fresh model and optimizer, train the rest.

    ``via`` is "path" (a file name) or "file" (an in-memory binary file object).
    Returns the loaded iteration and the final weights of the resumed run.
    """
    model, optimizer, batches = checkpoint_problem(seed)
    train_steps(model, optimizer, batches[:save_at])
    fresh_model, fresh_optimizer, _ = checkpoint_problem(seed + 100)  # different initial weights
    with tempfile.TemporaryDirectory() as folder:
        target: Any = Path(folder) / "checkpoint.pt" if via == "path" else io.BytesIO()
        adapters.run_save_checkpoint(model, optimizer, save_at, target)
        if via == "file":
            target.seek(0)
        iteration = adapters.run_load_checkpoint(target, fresh_model, fresh_optimizer)
    train_steps(fresh_model, fresh_optimizer, batches[save_at:])
    return {"iteration": iteration, "weights": {k: v.detach().clone() for k, v in fresh_model.state_dict().items()}}


class BigramModel(nn.Module):
    """A stand-in language model whose next-token logits depend on the last token only.

    logits: (vocab, vocab), row ``t`` scoring the token after ``t``. Like a TransformerLM it
    has a ``context_length`` and refuses longer inputs.
    """

    def __init__(self, logits: Tensor, context_length: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(logits.clone())
        self.context_length = context_length

    def forward(self, token_ids: Tensor) -> Tensor:
        """token_ids: (batch, seq) -> (batch, seq, vocab)."""
        if token_ids.shape[-1] > self.context_length:
            raise ValueError(f"{token_ids.shape[-1]} tokens exceed the context length {self.context_length}")
        return self.logits[token_ids]


def generated_tokens(
    adapters: ModuleType,
    logits: Tensor,
    prompt: list[int],
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    eos_id: int | None,
    context_length: int = 64,
    seed: int = 0,
) -> list[int]:
    """One generation from :class:`BigramModel` ``logits``."""
    model = BigramModel(logits, context_length)
    generator = torch.Generator().manual_seed(seed)
    return [int(t) for t in adapters.run_generate(model, prompt, max_new_tokens, temperature, top_p, eos_id, generator)]


def sampled_first_tokens(
    adapters: ModuleType, logits: Tensor, prompt: list[int], temperature: float, top_p: float, samples: int, seed: int
) -> list[int]:
    """The first generated token of ``samples`` one-token generations, sharing one seeded generator."""
    model = BigramModel(logits, context_length=64)
    generator = torch.Generator().manual_seed(seed)
    return [
        int(adapters.run_generate(model, prompt, 1, temperature, top_p, None, generator)[0]) for _ in range(samples)
    ]
