"""Custom model code (a board's ``allow_custom_code``): the student's own architecture, run only in the sandbox.

A submission may bring ``code/``, a small Python package whose ``model.py`` defines
``build_model(config: dict) -> torch.nn.Module``; the config is ``model_config.json`` as a dict and
the weights must load into the model with ``load_state_dict(strict=True)``. Other modules of the
package are imported relatively (``from . import layers``).

The code is untrusted and never imported here. It runs in the grader's sandbox through the
carrier/worker mechanism (:mod:`lmcourse.grader.grading.carrier`): the trusted side reads the
held-out text, tokenizes it, cuts the windows exactly as :mod:`.evaluate` does, and sends them in
batches to :mod:`.custom_producer`, which returns the summed nats of each window; the trusted side
checks those numbers are well formed and derives loss, perplexity and bits per byte itself. Since
the student's code runs in the process that computes the nats, the numbers are only as honest as
the code: the :class:`Evaluation` says ``trusted=False`` and the entry is stored unverified until
staff re-run it (``lmcourse leaderboard verify --top K``) and read the code.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors

from ..grader.config import Limits
from ..grader.course import Course
from ..grader.grading.carrier import Carrier, CarrierConfig, SandboxTimeout
from .checkpoint import (
    CODE,
    MIB,
    WEIGHTS,
    SubmissionFiles,
    SubmissionRejected,
    error_clause,
    read_header,
    training_log,
    vocab_ids,
)
from .config import BoardRules
from .evaluate import LOGITS_PER_BATCH, Evaluation, load_tokenizer, sliding_windows, token_stream, validation_documents
from .store import UNVERIFIED_REASON  # noqa: F401  (re-exported: the reason entries of custom code carry)

PACKAGE = "custom_model"  # the student's package inside the sandbox
PRODUCER = "tests.lmcourse_custom_producer"
ENTRY = "model.py"
MAX_CODE_FILES = 64
MAX_CODE_BYTES = 2 * MIB  # all files together
CODE_SUFFIXES = (".py", ".json", ".txt")
_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


# ----------------------------------------------------------------------------- the files


def read_code(folder: Path) -> dict[str, bytes]:
    """The files under ``folder`` (a run's ``code/``) by relative path, checked by :func:`check_code`."""
    code: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_symlink() or not (path.is_dir() or path.is_file()):
            raise SubmissionRejected(f"{CODE}/{relative} is a link or a special file; send plain files only.")
        if path.is_file() and "__pycache__" not in path.parts:
            code[relative] = path.read_bytes()
    check_code(code)
    return code


def check_code(code: dict[str, bytes]) -> None:
    """Raise :class:`SubmissionRejected` unless ``code`` is a small package of plain files with ``model.py``."""
    if len(code) > MAX_CODE_FILES:
        raise SubmissionRejected(f"{CODE}/ holds {len(code)} files, more than the {MAX_CODE_FILES} accepted.")
    if sum(len(data) for data in code.values()) > MAX_CODE_BYTES:
        raise SubmissionRejected(f"{CODE}/ is over {MAX_CODE_BYTES // MIB} MiB in all.")
    for path in code:
        if not all(_PART.match(part) for part in path.split("/")) or path.count("/") > 4:
            raise SubmissionRejected(f"{CODE}/{path} is not an accepted file name (letters, digits, '_', '-', '.').")
        if not path.endswith(CODE_SUFFIXES):
            raise SubmissionRejected(f"{CODE}/{path} is not a {', '.join(CODE_SUFFIXES)} file.")
    if ENTRY not in code:
        raise SubmissionRejected(f"{CODE}/ has no {ENTRY} defining build_model(config) -> torch.nn.Module.")


def checked_custom_tensors(sub: SubmissionFiles, rules: BoardRules) -> int:
    """Every check that needs no model run, for a submission with code; returns its parameter count.

    Shapes are the code's business (``load_state_dict(strict=True)`` in the sandbox checks them);
    the size, parameter and context limits, the dtypes, the tokenizer and finite values are checked here.
    """
    if not rules.allow_custom_code:
        raise SubmissionRejected(f"This board does not accept model code: submit the reference architecture's "
                                 f"weights without a {CODE}/ folder.")
    check_code(sub.code or {})
    size_mib = len(sub.weights) / MIB
    if size_mib > rules.max_checkpoint_mb:
        raise SubmissionRejected(f"{WEIGHTS} is {size_mib:,.1f} MiB, over the board's limit of "
                                 f"{rules.max_checkpoint_mb:g} MiB.")
    header, _ = read_header(sub.weights)
    parameters = sum(math.prod(info.shape) for info in header.values())
    if parameters > rules.max_parameters:
        raise SubmissionRejected(f"The model has {parameters:,} parameters, over the board's limit of "
                                 f"{rules.max_parameters:,}.")
    if sub.config.context_length < rules.context_length:
        raise SubmissionRejected(f"The model's context_length is {sub.config.context_length}, shorter than the "
                                 f"{rules.context_length} tokens the board evaluates at.")
    if sub.vocab is not None and sub.merges is not None:
        vocab_ids(sub.vocab, sub.config.vocab_size)
    training_log(sub)
    try:
        tensors = load_safetensors(sub.weights)
    except SafetensorError as error:
        raise SubmissionRejected(f"{WEIGHTS} cannot be read ({error_clause(error)}).") from None
    for name, tensor in tensors.items():
        if not bool(torch.isfinite(tensor).all()):
            raise SubmissionRejected(f"Tensor '{name}' in {WEIGHTS} holds NaN or infinite values.")
    return parameters


# ------------------------------------------------------------------------------ evaluation


def evaluate_custom(
    sub: SubmissionFiles,
    rules: BoardRules,
    course: Course,
    *,
    data_dir: Path | None = None,
    sandbox: str = "local",
) -> Evaluation:
    """Score ``sub``'s own model in the sandbox on the board's held-out text; ``trusted=False`` (module docstring)."""
    started = time.perf_counter()
    deadline = started + rules.max_eval_seconds
    parameters = checked_custom_tensors(sub, rules)
    data_dir = data_dir if data_dir is not None else course.root / "data"
    tokenizer = load_tokenizer(sub, rules, course, data_dir)
    documents = validation_documents(data_dir / rules.dataset / f"{rules.split}.txt", rules.max_eval_bytes)
    stream, num_bytes = token_stream(tokenizer, documents)
    with tempfile.TemporaryDirectory(prefix="lmcourse-custom-") as tmp:
        carrier = Carrier(CarrierConfig(backend=sandbox, code_dir=str(code_folder(sub, Path(tmp))),
                                        limits=sandbox_limits(rules, len(sub.weights)),
                                        call_timeout_s=rules.max_eval_seconds))
        try:
            _call(carrier, "load_model", deadline, sub.weights, sub.config.model_dump(mode="json"))
            nats = _score(carrier, stream, rules, sub.config.vocab_size, deadline)
        finally:
            carrier.close()
    tokens = len(stream) - 1
    loss = nats / tokens
    return Evaluation(loss=loss, perplexity=math.exp(loss), bits_per_byte=nats / math.log(2) / num_bytes,
                      tokens=tokens, bytes=num_bytes, parameters=parameters,
                      seconds=time.perf_counter() - started, device=f"cpu ({sandbox} sandbox)", trusted=False)


def code_folder(sub: SubmissionFiles, root: Path) -> Path:
    """The folder mounted into the sandbox: ``custom_model/`` (the student's files) and ``tests/`` (ours)."""
    folder = root / "code"
    package = folder / PACKAGE
    for path, data in (sub.code or {}).items():
        (package / path).parent.mkdir(parents=True, exist_ok=True)
        (package / path).write_bytes(data)
    (package / "__init__.py").touch()
    tests = folder / "tests"
    tests.mkdir()
    (tests / "__init__.py").write_text("", encoding="utf-8")
    (tests / "adapters.py").write_text('"""No adapters: the leaderboard calls its producer."""\n', encoding="utf-8")
    shutil.copyfile(Path(__file__).with_name("custom_producer.py"), tests / "lmcourse_custom_producer.py")
    for path in [root, *root.rglob("*")]:  # the sandbox user (uid 10001) reads them
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def sandbox_limits(rules: BoardRules, weights_bytes: int) -> Limits:
    """Room for torch, the weights (as bytes, as tensors and as the model) and one batch of logits."""
    memory_mb = 2048 + 4 * math.ceil(weights_bytes / MIB) + 4 * LOGITS_PER_BATCH["cpu"] // MIB
    return Limits(memory_mb=memory_mb, cpus=1.0, pids=64, disk_mb=256,
                  total_timeout_s=rules.max_eval_seconds + 60)


def _score(carrier: Carrier, stream: torch.Tensor, rules: BoardRules, vocab: int, deadline: float) -> float:
    """Total nats of ``stream`` (int64, (n,)): windows as :func:`.evaluate.score_stream` cuts and batches them."""
    windows = sliding_windows(len(stream) - 1, rules.context_length, rules.stride)
    length = windows[0][1]
    per_batch = max(1, LOGITS_PER_BATCH["cpu"] // (length * vocab))
    positions = torch.arange(length)
    total = 0.0
    for first in range(0, len(windows), per_batch):
        batch = windows[first : first + per_batch]
        index = torch.tensor([start for start, _ in batch])[:, None] + positions  # (batch, length)
        scored = positions >= torch.tensor([length - count for _, count in batch])[:, None]  # (batch, length)
        nats = _call(carrier, "window_nats", deadline, stream[index], stream[index + 1], scored)
        if not (isinstance(nats, torch.Tensor) and nats.dtype == torch.float64 and tuple(nats.shape) == (len(batch),)
                and bool(torch.isfinite(nats).all()) and bool((nats >= 0).all())):
            raise SubmissionRejected("The custom model's sandbox returned window losses that are not one finite, "
                                     "non-negative float64 per window.")
        total += float(nats.sum())
    return total


def _call(carrier: Carrier, producer: str, deadline: float, *args: object) -> object:
    """One producer call within what is left of the evaluation's time; any failure is one sentence."""
    left = deadline - time.perf_counter()
    if left <= 0:
        raise SubmissionRejected("The custom model's evaluation ran past the board's time limit.")
    try:
        return carrier.call({"producer": [PRODUCER, producer]}, args, {}, timeout=left)
    except SandboxTimeout:
        raise SubmissionRejected("The custom model's evaluation ran past the board's time limit.") from None
    except Exception as error:  # SandboxCrash, SandboxCallError (SystemExit too), or the student's own
        raise SubmissionRejected(f"The custom model failed in the sandbox ({error_clause(error)}).") from None


def evaluate_any(
    sub: SubmissionFiles,
    rules: BoardRules,
    course: Course,
    *,
    data_dir: Path | None = None,
    device: str = "auto",
    sandbox: str = "local",
) -> Evaluation:
    """The evaluator every front end uses: the student's code in the sandbox when there is some, else the trusted one."""
    if sub.code is not None:
        return evaluate_custom(sub, rules, course, data_dir=data_dir, sandbox=sandbox)
    from .evaluate import evaluate_submission

    return evaluate_submission(sub, rules, course, data_dir=data_dir, device=device)

