"""The real backend: the service trains the basics reference model in a child process (tiny, on the
CPU) and records its validation losses; a run whose process crashes fails and is refunded."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from lmcourse.grader.data.stories import generate_stories
from lmcourse.grader.scaling.backends import RealBackend, RealSettings
from lmcourse.grader.scaling.config import ExperimentConfig
from lmcourse.grader.scaling.schemas import ExperimentView
from lmcourse.grader.scaling.service import Caller, ScalingService

from ..helpers import REPO
from .conftest import ServiceFactory

CONTEXT = 32
TINY = {"d_model": 32, "num_layers": 1, "num_heads": 2, "batch_size": 64, "learning_rate": 1e-2, "train_tokens": 100_000}


def token_files(folder: Path) -> tuple[Path, Path]:
    """Children's stories as bytes (vocabulary 256), as uint16 token files."""
    text = "\n".join(generate_stories(120, seed=0)).encode()
    tokens = np.frombuffer(text, dtype=np.uint8).astype(np.uint16)
    split = int(0.9 * len(tokens))
    train, val = folder / "train.bin", folder / "val.bin"
    tokens[:split].tofile(train)
    tokens[split:].tofile(val)
    return train, val


def wait(service: ScalingService, me: Caller, experiment_id: int, timeout: float = 240) -> ExperimentView:
    deadline = time.monotonic() + timeout
    while (experiment := service.experiment(me, experiment_id)).status in ("queued", "running"):
        assert time.monotonic() < deadline, f"experiment still {experiment.status} after {timeout} s"
        time.sleep(0.2)
    return experiment


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_trains_the_reference_model_and_refunds_crashes(make_service: ServiceFactory, tmp_path: Path) -> None:
    train, val = token_files(tmp_path)
    settings = RealSettings(train_data=train, val_data=val, vocab_size=256, device="cpu", workdir=REPO,
                            extra={"dtype": "float32", "compile": False})
    service = make_service(backend=RealBackend(settings, CONTEXT), context_length=CONTEXT, min_steps=5)
    me = service.authenticate(service.add_student("alice"))
    config = ExperimentConfig(**TINY)

    submitted = service.submit(me, config)
    assert submitted.charged and submitted.experiment.status == "queued"  # trained after the request returns
    done = wait(service, me, submitted.experiment.id)
    assert done.status == "completed", done.failure_reason
    losses = [point.loss for point in done.losses]
    assert len(losses) == 10 and done.final_loss == losses[-1]
    assert losses[-1] < losses[0] < np.log(256) + 0.5  # it learned something about the stories
    assert done.losses[-1].tokens == config.train_tokens // (64 * CONTEXT) * 64 * CONTEXT

    broken = RealBackend(RealSettings(train_data=tmp_path / "missing.bin", val_data=val, vocab_size=256, device="cpu",
                                      workdir=REPO), CONTEXT)
    crashing = make_service(backend=broken, context_length=CONTEXT, min_steps=5)
    other = crashing.authenticate(crashing.add_student("bob"))
    failed = wait(crashing, other, crashing.submit(other, config).experiment.id)
    assert failed.status == "failed" and failed.refunded
    assert "exited with status" in (failed.failure_reason or "")
    assert crashing.budget(other).spent == 0
