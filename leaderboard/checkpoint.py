"""Reading an untrusted leaderboard submission, and refusing a bad one in one sentence.

A submission is a folder (or the same files uploaded)::

    model.safetensors   the weights: names and shapes as the reference TransformerLM's state dict
    model_config.json   a ModelConfig (what reference/basics/train.py's export_weights writes)
    vocab.json          optional: the tokenizer in GPT-2's formats, encoder.json ({token: id}, each
    merges.txt          byte spelled as GPT-2's printable character) and vocab.bpe (one merge a line)
    log.jsonl           optional: the training log train.py writes, for the learning curve
    code/               optional, where the board allows custom code: the model's own Python package
                        (code/model.py defines build_model(config: dict) -> torch.nn.Module); it
                        runs only in the grader's sandbox (see :mod:`.custom`)

Nothing here unpickles anything: the safetensors header is parsed by hand (a pickle or a
``torch.save`` zip is named as such), and tensors are read with safetensors' own loader, which
only copies bytes. :func:`check_submission` runs every check that needs no model run.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors

from ..grader.config import describe_validation_error
from ..grader.errors import LmcourseError
from .architecture import parameter_count, tensor_shapes
from .config import BoardRules, ModelConfig

WEIGHTS, CONFIG, VOCAB, MERGES, LOG = "model.safetensors", "model_config.json", "vocab.json", "merges.txt", "log.jsonl"
CODE = "code"
EOT = "<|endoftext|>"
"""The token the evaluator puts before every document; a submitted tokenizer must have it."""
MIB = 1 << 20
MAX_SIDE_FILE_BYTES = 32 * MIB  # vocab.json, merges.txt and log.jsonl each; GPT-2's encoder.json is 1 MiB
ITEM_BYTES = {"F32": 4, "F16": 2, "BF16": 2}
"""The dtypes weights may have, and their sizes in bytes. The evaluator computes in fp32."""
_EXPORT_HINT = "save the weights with safetensors.torch.save_file, as reference/basics/train.py's export_weights does"


class SubmissionRejected(LmcourseError):
    """A submission the board refuses; the message is one sentence saying why."""


@dataclass(frozen=True)
class SubmissionFiles:
    """The files of one submission, the config already validated."""

    weights: bytes = field(repr=False)
    config: ModelConfig
    vocab: bytes | None = field(default=None, repr=False)
    merges: bytes | None = field(default=None, repr=False)
    log: bytes | None = field(default=None, repr=False)
    code: dict[str, bytes] | None = field(default=None, repr=False)  # path under code/ -> content


@dataclass(frozen=True)
class TensorInfo:
    """One entry of a safetensors header; ``start``/``end`` are byte offsets into the data after the header."""

    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


def read_submission(folder: Path) -> SubmissionFiles:
    """The submission in ``folder`` (file names in the module docstring); other files are ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SubmissionRejected(f"{folder} is not a folder.")
    files = {name: (folder / name).read_bytes() if (folder / name).is_file() else None
             for name in (WEIGHTS, CONFIG, VOCAB, MERGES, LOG)}
    weights, config = files[WEIGHTS], files[CONFIG]
    if weights is None or config is None:
        raise SubmissionRejected(f"{folder} has no {WEIGHTS if weights is None else CONFIG}.")
    sub = submission_from_bytes(weights, config, files[VOCAB], files[MERGES], files[LOG])
    if (folder / CODE).is_dir():
        from .custom import read_code  # the custom-code rules live with the rest of custom code

        return replace(sub, code=read_code(folder / CODE))
    return sub


def submission_from_bytes(
    weights: bytes,
    config_json: bytes,
    vocab: bytes | None = None,
    merges: bytes | None = None,
    log: bytes | None = None,
) -> SubmissionFiles:
    """A submission from uploaded bytes; only the config is checked here (see :func:`check_submission`)."""
    if (vocab is None) != (merges is None):
        present, absent = (VOCAB, MERGES) if merges is None else (MERGES, VOCAB)
        raise SubmissionRejected(f"A tokenizer needs both {VOCAB} and {MERGES}, but the submission has {present} "
                                 f"without {absent}.")
    return SubmissionFiles(weights, parse_config(config_json), vocab, merges, log)


def parse_config(data: bytes) -> ModelConfig:
    """``model_config.json`` as a :class:`ModelConfig`; anything else is one sentence."""
    try:
        values = json.loads(data)
    except (UnicodeDecodeError, ValueError) as error:
        raise SubmissionRejected(f"{CONFIG} is not valid JSON ({error_clause(error)}).") from None
    if not isinstance(values, dict):
        raise SubmissionRejected(f"{CONFIG} must hold a JSON object of model settings, not {type(values).__name__}.")
    try:
        return ModelConfig.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        if not first["loc"]:  # a check across fields: its message names them
            raise SubmissionRejected(f"{CONFIG}: {first['msg'].removeprefix('Value error, ')}.") from None
        raise SubmissionRejected(describe_validation_error(CONFIG, error)) from None


def content_hash(sub: SubmissionFiles) -> str:
    """sha256 of the tensors (by name, dtype, shape and bytes), the canonical config and the tokenizer files.

    Identical weights give the identical hash whatever the tensor order or metadata in the file;
    the training log is left out, so re-submitting a model with another log is the same entry.
    Model code, when there is some, is part of the hash (other code is another model).
    Raises :class:`SubmissionRejected` when the weights are not safetensors.
    """
    header, data_start = read_header(sub.weights)
    data = memoryview(sub.weights)[data_start:]
    digest = hashlib.sha256()

    def part(label: list[Any], payload: bytes | memoryview | None) -> None:
        # A JSON line with the payload's length (null when absent) frames each part: no two inputs hash alike.
        digest.update(json.dumps([*label, None if payload is None else len(payload)]).encode() + b"\n")
        digest.update(payload or b"")

    for name in sorted(header):
        info = header[name]
        part(["tensor", name, info.dtype, list(info.shape)], data[info.start : info.end])
    part(["config"], json.dumps(sub.config.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode())
    part(["vocab"], sub.vocab)
    part(["merges"], sub.merges)
    for path in sorted(sub.code or {}):  # nothing at all without code: the hashes of older entries stand
        part(["code", path], sub.code[path])  # type: ignore[index]
    return digest.hexdigest()


def check_submission(sub: SubmissionFiles, rules: BoardRules) -> None:
    """Raise :class:`SubmissionRejected` unless ``sub`` may be evaluated under ``rules``; runs no model."""
    if sub.code is not None:
        from .custom import checked_custom_tensors

        checked_custom_tensors(sub, rules)
    else:
        checked_tensors(sub, rules)


def checked_tensors(sub: SubmissionFiles, rules: BoardRules) -> dict[str, torch.Tensor]:
    """The weights of ``sub`` after every check of :func:`check_submission`, as stored (dtype kept)."""
    size_mib = len(sub.weights) / MIB
    if size_mib > rules.max_checkpoint_mb:
        raise SubmissionRejected(f"{WEIGHTS} is {size_mib:,.1f} MiB, over the board's limit of "
                                 f"{rules.max_checkpoint_mb:g} MiB.")
    header, _ = read_header(sub.weights)
    parameters = parameter_count(sub.config)
    if parameters > rules.max_parameters:
        raise SubmissionRejected(f"The model has {parameters:,} parameters, over the board's limit of "
                                 f"{rules.max_parameters:,}.")
    _check_shapes(header, sub.config)
    if sub.config.context_length < rules.context_length:
        raise SubmissionRejected(f"The model's context_length is {sub.config.context_length}, shorter than the "
                                 f"{rules.context_length} tokens the board evaluates at.")
    if sub.vocab is not None and sub.merges is not None:  # a pair, see submission_from_bytes
        vocab_ids(sub.vocab, sub.config.vocab_size)
        if len(sub.merges) > MAX_SIDE_FILE_BYTES:
            raise SubmissionRejected(f"{MERGES} is over {MAX_SIDE_FILE_BYTES // MIB} MiB.")
    training_log(sub)
    try:
        tensors = load_safetensors(sub.weights)
    except SafetensorError as error:  # our header checks passed, so this is rare: say what safetensors says
        raise SubmissionRejected(f"{WEIGHTS} cannot be read ({error_clause(error)}).") from None
    for name, tensor in tensors.items():
        if not bool(torch.isfinite(tensor).all()):
            raise SubmissionRejected(f"Tensor '{name}' in {WEIGHTS} holds NaN or infinite values.")
    return tensors


def read_header(data: bytes) -> tuple[dict[str, TensorInfo], int]:
    """The tensors a safetensors file declares, and where its data starts; checked against the file's size.

    Format: an 8-byte little-endian header length ``n``, ``n`` bytes of JSON
    ``{name: {"dtype", "shape", "data_offsets": [start, end]}, "__metadata__": {...}}``, then the data.
    """
    if data[:4] == b"PK\x03\x04":
        raise SubmissionRejected(f"{WEIGHTS} is a zip archive (what torch.save writes), not safetensors: "
                                 f"{_EXPORT_HINT}.")
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise SubmissionRejected(f"{WEIGHTS} is a Python pickle, which is never loaded, not safetensors: "
                                 f"{_EXPORT_HINT}.")
    size = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if not 2 <= size <= len(data) - 8:
        raise SubmissionRejected(f"{WEIGHTS} is not a safetensors file (it does not start with a valid header length).")
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, ValueError):
        header = None
    if not isinstance(header, dict):
        raise SubmissionRejected(f"{WEIGHTS} is not a safetensors file (its header is not a JSON object).")
    header.pop("__metadata__", None)
    data_size = len(data) - 8 - size
    tensors = {name: _tensor_info(name, entry, data_size) for name, entry in header.items()}
    position = 0
    for info in sorted(tensors.values(), key=lambda t: t.start):
        if info.start != position:
            raise SubmissionRejected(f"{WEIGHTS} is not a valid safetensors file (its tensors overlap or leave gaps).")
        position = info.end
    if position != data_size:
        raise SubmissionRejected(f"{WEIGHTS} is not a valid safetensors file (its size does not match its header).")
    return tensors, 8 + size


def _tensor_info(name: str, entry: Any, data_size: int) -> TensorInfo:
    malformed = SubmissionRejected(f"{WEIGHTS} is not a valid safetensors file (the entry of tensor '{name}' is "
                                   f"malformed).")
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise malformed
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in ITEM_BYTES:
        raise SubmissionRejected(f"Tensor '{name}' in {WEIGHTS} is {dtype}; weights must be F32, F16 or BF16.")
    if not (_ints(shape) and _ints(offsets) and len(offsets) == 2 and min(shape, default=0) >= 0):
        raise malformed
    start, end = offsets
    if not (0 <= start <= end <= data_size and end - start == math.prod(shape) * ITEM_BYTES[dtype]):
        raise malformed
    return TensorInfo(dtype, tuple(shape), start, end)


def _ints(value: Any) -> bool:
    return isinstance(value, list) and all(type(item) is int for item in value)


def _check_shapes(header: dict[str, TensorInfo], config: ModelConfig) -> None:
    """Every tensor the config implies, each of its shape, and nothing else; the first problem is reported."""
    expected = tensor_shapes(config)
    problems = []
    for name, shape in expected.items():
        if name not in header:
            problems.append(f"Tensor '{name}' is missing from {WEIGHTS}, but {CONFIG} implies it"
                            + (" (set tie_embeddings to true if the output layer shares the embedding)"
                               if name == "lm_head.weight" else ""))
        elif header[name].shape != shape:
            problems.append(f"Tensor '{name}' has shape {_shape(header[name].shape)}, but {CONFIG} implies "
                            f"{_shape(shape)}")
    for name in header.keys() - expected.keys():
        hint = " (a tied model stores only token_embeddings.weight)" if name == "lm_head.weight" else ""
        problems.append(f"{WEIGHTS} has a tensor '{name}' that {CONFIG} does not imply{hint}")
    if problems:
        more = len(problems) - 1
        raise SubmissionRejected(problems[0] + (f"; and {more} more mismatch{'es' if more > 1 else ''}" if more else "")
                                 + ".")


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def vocab_ids(vocab: bytes, vocab_size: int) -> dict[str, int]:
    """``vocab.json`` as {token: id}, checked to fit a model of ``vocab_size`` and to hold ``<|endoftext|>``."""
    if len(vocab) > MAX_SIDE_FILE_BYTES:
        raise SubmissionRejected(f"{VOCAB} is over {MAX_SIDE_FILE_BYTES // MIB} MiB.")
    try:
        ids = json.loads(vocab)
    except (UnicodeDecodeError, ValueError) as error:
        raise SubmissionRejected(f"{VOCAB} is not valid JSON ({error_clause(error)}).") from None
    if not isinstance(ids, dict) or not all(type(i) is int for i in ids.values()):
        raise SubmissionRejected(f"{VOCAB} must map each token to an integer id, as GPT-2's encoder.json does.")
    if len(set(ids.values())) != len(ids):
        raise SubmissionRejected(f"{VOCAB} gives the same id to two tokens.")
    if ids and (min(ids.values()) < 0 or max(ids.values()) >= vocab_size):
        raise SubmissionRejected(f"{VOCAB} has ids from {min(ids.values())} to {max(ids.values())}, but the model's "
                                 f"vocab_size is {vocab_size} (ids 0 to {vocab_size - 1}).")
    if EOT not in ids:
        raise SubmissionRejected(f"{VOCAB} has no '{EOT}' token, which the evaluator puts between documents.")
    return ids


def training_log(sub: SubmissionFiles) -> list[dict[str, Any]]:
    """The records of ``log.jsonl`` (none without a log), each a JSON object with an integer ``step``."""
    if sub.log is None:
        return []
    if len(sub.log) > MAX_SIDE_FILE_BYTES:
        raise SubmissionRejected(f"{LOG} is over {MAX_SIDE_FILE_BYTES // MIB} MiB.")
    records = []
    for number, line in enumerate(sub.log.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (UnicodeDecodeError, ValueError):
            record = None
        if not isinstance(record, dict) or type(record.get("step")) is not int:
            raise SubmissionRejected(f"Line {number} of {LOG} is not a JSON object with an integer 'step', as "
                                     f"train.py writes.")
        records.append(record)
    return records


def tokenizer_files(vocab: dict[int, bytes], merges: list[tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
    """``vocab.json`` and ``merges.txt`` for a tokenizer of ``reference/basics/bpe.py``'s ``train_bpe``.

    GPT-2's formats, which the reference ``Tokenizer.from_files`` reads back: every byte is spelled
    as one printable character (``gpt2_bytes_to_unicode``), so tokens never contain spaces.
    """
    spell = _gpt2_byte_chars()
    encoder: dict[str, int] = {}
    for token_id, token in sorted(vocab.items()):
        text = "".join(spell[b] for b in token)
        if text in encoder:
            raise ValueError(f"token {token!r} has two ids, {encoder[text]} and {token_id}")
        encoder[text] = token_id
    lines = ["#version: 0.2"] + ["".join(spell[b] for b in left) + " " + "".join(spell[b] for b in right)
                                 for left, right in merges]
    return json.dumps(encoder, ensure_ascii=False).encode(), ("\n".join(lines) + "\n").encode()


def _gpt2_byte_chars() -> list[str]:
    """GPT-2's byte -> printable character map, as ``gpt2_bytes_to_unicode`` in reference/basics/tokenizer.py:
    printable Latin-1 bytes stand for themselves, the other 68 get U+0100 onwards in byte order."""
    printable = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)}
    others = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(others)) for b in range(256)]


def error_clause(error: Exception) -> str:
    """An exception's message as a clause: first line, no final period."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0].rstrip(".")
