"""Where an experiment's losses come from: the simulator, or a real training run.

Both backends turn an :class:`ExperimentConfig` into an :class:`Outcome` (validation losses along
the run, or why it failed); the service decides when to call them and records the result.

- ``simulated`` is instant: the hidden law gives the losses (:mod:`.law`). The service calls it
  inside the submit transaction, so an experiment is complete when the request returns.
- ``real`` trains the basics reference model: it writes a training config and runs the
  reference's training script (``python -m reference.basics.train``) in a child process, then
  reads the validation losses from the run's ``log.jsonl``. It takes minutes to days, so the
  service runs it on its executor (a pool of worker threads) after the submission is committed.
  Tiny configs train on the CPU in the tests; on a GPU machine the same script uses the GPU.
  On a cluster, :class:`.slurm_runs.SlurmBackend` runs the same script as one Slurm job per run.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .config import ExperimentConfig
from .law import CHECKPOINTS, HiddenLaw, simulate

OUTPUT_TAIL_CHARS = 300


@dataclass(frozen=True)
class Outcome:
    """How a run ended: validation losses ``(tokens, loss)``, and a reason when it failed."""

    losses: list[tuple[float, float]]
    failure: str | None = None
    refund: bool = False  # the failure is the system's, not the config's: the budget is given back

    @property
    def final_loss(self) -> float | None:
        return None if self.failure or not self.losses else self.losses[-1][1]


class Detached(Exception):  # noqa: N818  (not an error: the run goes on without this server)
    """The server is stopping while a batch job trains; the job goes on and the next server follows it."""


def _discard(name: str, job_id: str | None) -> None:
    """Nowhere to keep a job record: a run not started by the service."""


@dataclass
class JobRecord:
    """The batch job of one run, as the service stores it; a restarted server hands it back."""

    name: str | None = None
    job_id: str | None = None
    save: Callable[[str, str | None], None] = _discard  # persists (name, id) in the service's database

    def update(self, name: str, job_id: str | None = None) -> None:
        self.name, self.job_id = name, job_id
        self.save(name, job_id)


class Backend(ABC):
    name: str
    instant: bool  # True: cheap enough to run inside the submit transaction

    @abstractmethod
    def run(self, config: ExperimentConfig) -> Outcome:
        """Train (or simulate) ``config`` to the end; never raises for a failed run."""

    def run_job(self, config: ExperimentConfig, job: JobRecord) -> Outcome:
        """Like :meth:`run`, for a backend that trains in batch jobs: it keeps the job in ``job``,
        follows the job ``job`` already names, and may raise :class:`Detached` once :meth:`close` is called."""
        return self.run(config)

    def close(self) -> None:  # noqa: B027  (a hook: most backends have no jobs to let go of)
        """The server is stopping: stop waiting for batch jobs (a backend with none has nothing to do)."""


class SimulatedBackend(Backend):
    name = "simulated"
    instant = True

    def __init__(self, law: HiddenLaw, context_length: int) -> None:
        self.law = law
        self.context_length = context_length

    def run(self, config: ExperimentConfig) -> Outcome:
        run = simulate(self.law, config, self.context_length)
        return Outcome(run.losses, run.failure)


@dataclass(frozen=True)
class RealSettings:
    """How the real backend trains: which data, which script, on what."""

    train_data: Path  # uint16 token ids
    val_data: Path
    vocab_size: int
    device: str = "auto"
    workdir: Path = Path(".")  # where ``python -m <train_module>`` resolves (the course root)
    train_module: str = "reference.basics.train"
    timeout_s: float = 24 * 3600.0
    eval_batches: int = 4
    extra: dict[str, object] = field(default_factory=dict)  # more TrainConfig fields, e.g. {"dtype": "float32"}


class RealBackend(Backend):
    name = "real"
    instant = False

    def __init__(self, settings: RealSettings, context_length: int) -> None:
        self.settings = settings
        self.context_length = context_length  # the challenge's: what budgets and step counts assume

    def steps(self, config: ExperimentConfig) -> int:
        return max(1, config.train_tokens // (config.batch_size * self.context_length))

    def train_config(self, config: ExperimentConfig, out_dir: Path) -> dict[str, object]:
        """The reference training script's config for ``config``: a cosine schedule over its tokens."""
        s = self.settings
        steps = self.steps(config)
        return {
            "train_data": str(s.train_data),
            "val_data": str(s.val_data),
            "vocab_size": s.vocab_size,
            "context_length": self.context_length,
            "d_model": config.d_model,
            "num_layers": config.num_layers,
            "num_heads": config.num_heads,
            "d_ff": 64 * math.ceil(8 * config.d_model / 3 / 64),  # SwiGLU's 8/3 d, rounded up to 64
            "max_lr": config.learning_rate,
            "min_lr": config.learning_rate / 10,
            "warmup_steps": max(1, steps // 20),
            "batch_size": config.batch_size,
            "steps": steps,
            "eval_interval": math.ceil(steps / CHECKPOINTS),  # about CHECKPOINTS evaluations, the last at the end
            "log_interval": math.ceil(steps / CHECKPOINTS),
            "eval_batches": s.eval_batches,
            "checkpoint_interval": steps,
            "out_dir": str(out_dir),
            "device": s.device,
            **s.extra,
        }

    def run(self, config: ExperimentConfig) -> Outcome:
        with tempfile.TemporaryDirectory(prefix="lmcourse-scaling-run-") as tmp:
            out_dir = Path(tmp) / "run"
            train_config = self.train_config(config, out_dir)
            config_path = Path(tmp) / "config.yaml"
            config_path.write_text(yaml.safe_dump(train_config), encoding="utf-8")
            command = self.command(sys.executable, config_path)
            try:
                proc = subprocess.run(
                    command, cwd=self.settings.workdir, capture_output=True, text=True,
                    timeout=self.settings.timeout_s, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                return Outcome([], f"training ran past the server's limit of {self.settings.timeout_s:g} s", refund=True)
            losses, diverged, _ = self.read_run(config, out_dir)
            if diverged:
                return Outcome(losses, diverged)
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip()[-OUTPUT_TAIL_CHARS:].replace("\n", " | ")
                return Outcome(losses, f"the training process exited with status {proc.returncode}: {tail}", refund=True)
            if not losses:
                return Outcome([], "the training process reported no validation loss", refund=True)
            return Outcome(losses)

    def command(self, python: str, config_path: Path) -> list[str]:
        return [python, "-m", self.settings.train_module, "--config", str(config_path)]

    def read_run(self, config: ExperimentConfig, out_dir: Path) -> tuple[list[tuple[float, float]], str | None, bool]:
        """From the run's ``log.jsonl``: validation losses ``(tokens, loss)``, why it diverged (or
        None), and whether it logged its last step (it trained to the end)."""
        tokens_per_step = config.batch_size * self.context_length
        records = _read_log(out_dir / "log.jsonl")
        losses = [(r["step"] * tokens_per_step, r["val_loss"]) for r in records if r.get("val_loss") is not None]
        if records and not math.isfinite(records[-1]["train_loss"]):
            return losses, f"training diverged at step {records[-1]['step']} (the loss became NaN)", False
        finished = bool(records) and records[-1]["step"] == self.steps(config) and bool(losses)
        return losses, None, finished


def _read_log(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut short by a crash ends the log
    return records
