"""Small real submissions for the store and CLI tests: safetensors weights of a tiny reference model.

Where a test is about storage, not evaluation, the evaluator is a plain function returning a
fixed :class:`Evaluation` (the store takes the evaluator as an argument for exactly this). The
checks that run before evaluation -- format, shapes, sizes, NaN -- are the real ones.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from pathlib import Path

import torch
from safetensors.torch import save

from lmcourse.grader.course import Course
from lmcourse.grader.data.corpus import SEPARATOR
from lmcourse.leaderboard.architecture import tensor_shapes
from lmcourse.leaderboard.checkpoint import EOT, SubmissionFiles, tokenizer_files
from lmcourse.leaderboard.config import BoardRules, ModelConfig
from lmcourse.leaderboard.evaluate import Evaluation

REPO = Path(__file__).resolve().parents[2]
TINY = ModelConfig(vocab_size=257, context_length=16, d_model=16, num_layers=1, num_heads=2, d_ff=32,
                   rope_theta=10000.0)
RULES = BoardRules(context_length=16, stride=8, daily_quota=3, max_eval_bytes=2000)
DAY = dt.datetime(2027, 1, 20, 12, 0, tzinfo=dt.UTC)


def tensors(seed: int, config: ModelConfig = TINY) -> dict[str, torch.Tensor]:
    """Random weights with the reference state dict's names and shapes; each seed gives other weights."""
    generator = torch.Generator().manual_seed(seed)
    return {name: 0.1 * torch.randn(shape, generator=generator) for name, shape in tensor_shapes(config).items()}


def submission(seed: int, config: ModelConfig = TINY, *, log: bytes | None = None) -> SubmissionFiles:
    return SubmissionFiles(save(tensors(seed, config)), config, log=log)


def byte_tokenizer() -> tuple[bytes, bytes]:
    """vocab.json and merges.txt of a tokenizer with one token per byte and <|endoftext|> as id 256."""
    vocab = {i: bytes([i]) for i in range(256)} | {256: EOT.encode()}
    return tokenizer_files(vocab, [])


def write_run(folder: Path, seed: int) -> Path:
    """A run folder as train.py leaves it: weights, config, log, and the byte tokenizer."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").write_bytes(save(tensors(seed)))
    (folder / "model_config.json").write_text(TINY.model_dump_json(), encoding="utf-8")
    vocab, merges = byte_tokenizer()
    (folder / "vocab.json").write_bytes(vocab)
    (folder / "merges.txt").write_bytes(merges)
    records = [{"step": s, "train_loss": 5.5 - s / 100, "val_loss": None, "lr": 1e-3} for s in (10, 20, 30)]
    (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return folder


def write_validation_text(data_dir: Path, dataset: str = "prose") -> str:
    """A few documents as ``lmcourse data prepare`` writes a split; returns their text joined."""
    documents = ["The cat sat on the mat.", "Une phrase en français, avec des accents.", "Numbers: 3.14 and 42!"]
    (data_dir / dataset).mkdir(parents=True, exist_ok=True)
    (data_dir / dataset / "valid.txt").write_text(SEPARATOR.join(documents) + "\n", encoding="utf-8")
    return "".join(documents)


def course_with_board(root: Path) -> Course:
    """A course whose basics unit has a leaderboard, evaluating with the repository's reference model."""
    (root / "assignments" / "basics").mkdir(parents=True)
    (root / "reference").mkdir()
    (root / "reference" / "basics").symlink_to(REPO / "reference" / "basics")
    (root / "course.yaml").write_text(
        "name: Test course\nterm: Spring 2027\npackage_prefix: lmc\nunits:\n  basics: {}\n", encoding="utf-8"
    )
    rules = RULES.model_dump(mode="json")
    (root / "assignments" / "basics" / "unit.yaml").write_text(
        "name: basics\ntitle: Basics\nproblems:\n  - {name: leaderboard, points: 1, kind: leaderboard}\n"
        f"leaderboard: {json.dumps(rules)}\n",
        encoding="utf-8",
    )
    return Course.load(root)


class FixedEvaluator:
    """Scores every submission ``bits_per_byte`` (loss and perplexity follow), counting its calls."""

    def __init__(self, bits_per_byte: float = 1.5, *, seconds: float = 0.0) -> None:
        self.bits_per_byte = bits_per_byte
        self.sleep = seconds  # a slow evaluation widens the window in which submissions race
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, files: SubmissionFiles, rules: BoardRules) -> Evaluation:
        with self._lock:
            self.calls += 1
        if self.sleep:
            threading.Event().wait(self.sleep)
        loss = self.bits_per_byte * math.log(2) * 4  # as if each token were 4 bytes
        return Evaluation(loss=loss, perplexity=math.exp(loss), bits_per_byte=self.bits_per_byte,
                          tokens=1000, bytes=4000, parameters=123_456, seconds=0.5, device="cpu")
