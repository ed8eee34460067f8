"""The trusted evaluator: loss, perplexity and bits per byte of a submission on held-out text.

What is scored, exactly (docs/leaderboard-evaluation.md says it for students):

1. **Text.** The documents of ``DATA/<dataset>/<split>.txt`` as ``lmcourse data prepare`` wrote
   them, ordered by the sha256 of their UTF-8 text (a fixed shuffle, so a cap still samples every
   source, where file order would give only the first), then the longest run of whole documents
   from the start whose UTF-8 size stays within ``max_eval_bytes`` (a first document larger than
   that is cut at a character boundary).
2. **Tokens.** The stream ``EOT d1 EOT d2 EOT … dn EOT``: each document encoded by the
   submission's tokenizer (the board's when it brings none), ``<|endoftext|>`` around each. Every
   token but the first is a target, so each document's tokens and the end of each document count.
3. **Windows.** Windows of ``context_length`` tokens, each ``stride`` tokens after the last (the
   final one flush with the end). A window scores only the targets no earlier one scored, so
   every target is scored exactly once, after the first window from at least
   ``context_length - stride + 1`` tokens of context.
4. **Numbers.** ``loss`` = total nats / targets; ``perplexity`` = exp(loss); ``bits_per_byte`` =
   total nats / ln 2 / B, where B counts the UTF-8 bytes of the documents' text (separators
   excluded). Each document's ids must decode back to it exactly, so B is the same for every
   tokenizer and bits per byte compare fairly across vocabularies.

Computation is fp32 throughout (bf16/fp16 weights are widened) with TF32 off, and on a GPU with
deterministic kernels where torch has them: two runs on one machine give the same digits. The
GPU is used when present, else the CPU.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..grader.course import Course
from ..grader.data.corpus import read_documents
from ..grader.errors import LmcourseError
from .architecture import build_model, load_weights, parameter_count, reference_package
from .checkpoint import (
    EOT,
    MERGES,
    VOCAB,
    SubmissionFiles,
    SubmissionRejected,
    checked_tensors,
    error_clause,
    vocab_ids,
)
from .config import BoardRules

log = logging.getLogger(__name__)

LOGITS_PER_BATCH = {"cpu": 1 << 25, "cuda": 1 << 28}
"""How many logits (windows x positions x vocab) one forward pass may produce: 128 MiB of fp32 on
the CPU, 1 GiB on a GPU. It fixes the batches, so a given board and model always batch alike."""


@dataclass(frozen=True)
class Evaluation:
    """The result of one evaluation; ``tokens`` counts scored targets, ``bytes`` the text's UTF-8 bytes."""

    loss: float
    perplexity: float
    bits_per_byte: float
    tokens: int
    bytes: int
    parameters: int
    seconds: float
    device: str
    trusted: bool = True  # False: the student's own model code produced the numbers (see .custom)


def evaluate_submission(
    sub: SubmissionFiles,
    rules: BoardRules,
    course: Course,
    *,
    data_dir: Path | None = None,
    device: str = "auto",
) -> Evaluation:
    """Check ``sub``, then score it on the board's held-out text (module docstring).

    ``data_dir`` holds the prepared datasets (default: ``data/`` at the course root, where
    ``lmcourse data prepare`` writes when run there). Raises :class:`SubmissionRejected` for a
    bad submission or one that runs past ``max_eval_seconds``, :class:`LmcourseError` when the
    board's data is missing.
    """
    started = time.perf_counter()
    target = resolve_device(device)
    data_dir = data_dir if data_dir is not None else course.root / "data"
    tensors = checked_tensors(sub, rules)
    tokenizer = load_tokenizer(sub, rules, course, data_dir)
    documents = validation_documents(data_dir / rules.dataset / f"{rules.split}.txt", rules.max_eval_bytes)
    stream, num_bytes = token_stream(tokenizer, documents)
    with exact_fp32(target):
        model = build_model(sub.config, course, context_length=rules.context_length, device=target)
        load_weights(model, sub.config, tensors)
        try:
            nats = score_stream(model, stream, rules.context_length, rules.stride,
                                deadline=started + rules.max_eval_seconds)
        except TimeoutError as progress:
            raise SubmissionRejected(f"The evaluation ran past the board's limit of {rules.max_eval_seconds:g} s "
                                     f"after {progress}.") from None
    tokens = len(stream) - 1
    loss = nats / tokens
    evaluation = Evaluation(
        loss=loss,
        perplexity=math.exp(loss),
        bits_per_byte=nats / math.log(2) / num_bytes,
        tokens=tokens,
        bytes=num_bytes,
        parameters=parameter_count(sub.config),
        seconds=time.perf_counter() - started,
        device=describe_device(target),
    )
    log.info("evaluated %s parameters on %s tokens (%s bytes): loss %.4f, %.4f bits/byte, %.1f s on %s",
             evaluation.parameters, tokens, num_bytes, loss, evaluation.bits_per_byte, evaluation.seconds,
             evaluation.device)
    return evaluation


# ----------------------------------------------------------------------- text and tokens


def load_tokenizer(sub: SubmissionFiles, rules: BoardRules, course: Course, data_dir: Path) -> Any:
    """The reference ``Tokenizer`` of ``sub``'s vocab.json and merges.txt, or the board's default one."""
    if sub.vocab is not None and sub.merges is not None:
        vocab, merges = sub.vocab, sub.merges
        vocab_ids(vocab, sub.config.vocab_size)
    else:
        folder = data_dir / rules.tokenizer
        if not (folder / "encoder.json").is_file() or not (folder / "vocab.bpe").is_file():
            raise LmcourseError(f"The board's tokenizer is not in {folder}; run `lmcourse data prepare "
                                f"{rules.tokenizer} --out {data_dir}`.")
        vocab, merges = (folder / "encoder.json").read_bytes(), (folder / "vocab.bpe").read_bytes()
        size = max(json.loads(vocab).values()) + 1  # the board's own file: trusted
        if size > sub.config.vocab_size:
            raise SubmissionRejected(f"The submission brings no tokenizer, and the board's ({rules.tokenizer}) has "
                                     f"{size:,} ids, more than the model's vocab_size of {sub.config.vocab_size:,}; "
                                     f"submit your {VOCAB} and {MERGES}.")
    tokenizer_class = importlib.import_module(f"{reference_package(course).__name__}.tokenizer").Tokenizer
    with tempfile.TemporaryDirectory(prefix="lmcourse-tokenizer-") as tmp:
        vocab_path, merges_path = Path(tmp, VOCAB), Path(tmp, MERGES)
        vocab_path.write_bytes(vocab)
        merges_path.write_bytes(merges)
        try:
            return tokenizer_class.from_files(vocab_path, merges_path, [EOT])
        except (ValueError, KeyError, UnicodeDecodeError) as error:  # ValueError includes bad JSON
            raise SubmissionRejected(f"{VOCAB} and {MERGES} do not make a byte-level BPE tokenizer "
                                     f"({error_clause(error)}).") from None


def validation_documents(path: Path, max_bytes: int) -> list[str]:
    """The documents of the split file ``path`` in sha256 order, as many as fit in ``max_bytes`` of UTF-8."""
    if not path.is_file():
        raise LmcourseError(f"The board's held-out text {path} does not exist; run `lmcourse data prepare "
                            f"{path.parent.name} --out {path.parent.parent}`.")
    encoded = sorted((document.encode("utf-8") for document in read_documents(path)),
                     key=lambda data: hashlib.sha256(data).digest())
    if not encoded:
        raise LmcourseError(f"The board's held-out text {path} holds no documents.")
    documents: list[str] = []
    total = 0
    for data in encoded:
        if total + len(data) > max_bytes:
            if not documents:  # cutting inside a character would leave invalid UTF-8: drop the partial one
                documents.append(data[:max_bytes].decode("utf-8", errors="ignore"))
                if not documents[0]:
                    raise LmcourseError(f"max_eval_bytes={max_bytes} is smaller than the first character of {path}.")
            break
        documents.append(data.decode("utf-8"))
        total += len(data)
    return documents


def token_stream(tokenizer: Any, documents: list[str]) -> tuple[Tensor, int]:
    """``EOT d1 EOT … dn EOT`` as int64 ids (shape (n,)), and the UTF-8 bytes of the documents."""
    (eot,) = tokenizer.encode(EOT)
    ids = [eot]
    num_bytes = 0
    for number, document in enumerate(documents, start=1):
        encoded = tokenizer.encode(document)
        if tokenizer.decode(encoded) != document:
            raise SubmissionRejected(f"The tokenizer does not give the held-out text back: document {number} "
                                     f"decodes differently from how it reads.")
        ids += encoded
        ids.append(eot)
        num_bytes += len(document.encode("utf-8"))
    return torch.tensor(ids, dtype=torch.int64), num_bytes


# ----------------------------------------------------------------------- scoring


def sliding_windows(num_targets: int, context_length: int, stride: int) -> list[tuple[int, int]]:
    """``(start, scored)`` per window: it reads ``stream[start : start + L]`` (``L = min(context_length,
    num_targets)``) and scores its last ``scored`` targets. Together they score targets
    ``0 .. num_targets-1`` once each (target ``j`` is ``stream[j + 1]``)."""
    if num_targets < 1:
        raise ValueError("a stream of one token has nothing to predict")
    length = min(context_length, num_targets)
    windows = [(0, length)]
    end = length
    while end < num_targets:
        new_end = min(end + stride, num_targets)
        windows.append((new_end - length, new_end - end))
        end = new_end
    return windows


def score_stream(
    model: nn.Module,
    stream: Tensor,
    context_length: int,
    stride: int,
    *,
    deadline: float | None = None,
) -> float:
    """Total nats of every target of ``stream`` (int64, (n,)) under ``model``, scored by :func:`sliding_windows`.

    Raises ``TimeoutError("<done> of <all> windows")`` once ``time.perf_counter()`` passes ``deadline``.
    """
    device = next(model.parameters()).device
    windows = sliding_windows(len(stream) - 1, context_length, stride)
    length = windows[0][1]
    vocab = model.get_parameter("lm_head.weight").shape[0]
    per_batch = max(1, LOGITS_PER_BATCH.get(device.type, LOGITS_PER_BATCH["cpu"]) // (length * vocab))
    positions = torch.arange(length)
    total = 0.0
    for first in range(0, len(windows), per_batch):
        batch = windows[first : first + per_batch]
        index = torch.tensor([start for start, _ in batch])[:, None] + positions  # (batch, length)
        unscored = torch.tensor([length - scored for _, scored in batch])[:, None]  # (batch, 1)
        total += window_nats(model, stream[index].to(device), stream[index + 1].to(device),
                             (positions >= unscored).to(device))
        if deadline is not None and time.perf_counter() > deadline:
            raise TimeoutError(f"{first + len(batch):,} of {len(windows):,} windows")
    return total


@torch.no_grad()
def window_nats(model: nn.Module, inputs: Tensor, targets: Tensor, scored: Tensor) -> float:
    """Summed negative log-likelihood (nats) of ``targets`` where ``scored`` is True.

    inputs, targets: (batch, length) int64, ``targets`` = the next tokens of ``inputs``;
    scored: (batch, length) bool. Summed in float64, in a fixed order.
    """
    logits = model(inputs)  # (batch, length, vocab)
    nats = F.cross_entropy(logits[scored], targets[scored], reduction="none")  # (scored positions,)
    return float(nats.double().sum())


# ----------------------------------------------------------------------- device and numerics


def resolve_device(name: str) -> torch.device:
    """``"auto"``: the GPU when there is one, else the CPU; anything else as torch names it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise LmcourseError(f"'{name}' is not a device name; use auto, cpu or cuda.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LmcourseError(f"Device '{name}' was asked for, but torch sees no CUDA GPU.")
    if device.type not in ("cpu", "cuda"):
        raise LmcourseError(f"The evaluator runs on cpu or cuda, not {device.type}.")
    return device


def describe_device(device: torch.device) -> str:
    """``cpu``, or ``cuda (NVIDIA H200)``: recorded with each result."""
    return f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "cpu"


_switches_lock = threading.Lock()
_switches_users = 0  # evaluations inside exact_fp32 now (the web server runs several in threads)
_switches_saved: tuple[str, bool, bool, bool] | None = None


@contextmanager
def exact_fp32(device: torch.device) -> Iterator[None]:
    """fp32 matrix products without TF32; on a GPU, also deterministic kernels where torch has them.

    CPU kernels are deterministic already (and torch's switch imports its compiler: seconds).
    The switches are process-wide: the first evaluation to enter sets them, the last to leave puts
    the previous settings back, so concurrent evaluations never see them change under them.
    """
    global _switches_users, _switches_saved
    with _switches_lock:
        if _switches_users == 0:
            _switches_saved = (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32,
                               torch.are_deterministic_algorithms_enabled(),
                               torch.is_deterministic_algorithms_warn_only_enabled())
            torch.set_float32_matmul_precision("highest")
            torch.backends.cudnn.allow_tf32 = False
        if device.type == "cuda":
            # cuBLAS is deterministic only with a fixed workspace; read when its first handle is made.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            # warn_only: an op without a deterministic kernel warns instead of failing the evaluation.
            torch.use_deterministic_algorithms(True, warn_only=True)
        _switches_users += 1
    try:
        yield
    finally:
        with _switches_lock:
            _switches_users -= 1
            if _switches_users == 0 and _switches_saved is not None:
                precision, cudnn_tf32, deterministic, warn_only = _switches_saved
                torch.set_float32_matmul_precision(precision)
                torch.backends.cudnn.allow_tf32 = cudnn_tf32
                if torch.are_deterministic_algorithms_enabled() != deterministic:
                    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
