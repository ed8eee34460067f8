"""The real backend on Slurm: real sbatch, real training jobs, a server restarted while one trains.

Needs slurmctld and slurmd on this host (``scripts/install-slurm.sh``, run by ``make services``);
without them the Slurm tests fail, naming that script. Two jobs in all, one CPU each: a tiny run
that a restarted service follows to completion, and a run over its one-minute limit.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from lmcourse.grader.scaling.backends import RealSettings
from lmcourse.grader.scaling.config import ExperimentConfig
from lmcourse.grader.scaling.db import Experiment, make_engine, upgrade
from lmcourse.grader.scaling.slurm_runs import SlurmBackend
from lmcourse.grader.slurm import Resources, Slurm

from ..helpers import REPO
from ..slurm_cluster import running_cluster
from .conftest import ServiceFactory
from .test_real_backend import CONTEXT, TINY, token_files, wait

# Far more steps than a CPU trains in the one-minute limit.
ENDLESS = {**TINY, "train_tokens": 10**9}


@pytest.fixture(scope="module")
def slurm() -> Slurm:
    return running_cluster(patience_s=120)


def backend(slurm: Slurm, tmp_path: Path, time_limit: str = "10") -> SlurmBackend:
    train, val = token_files(tmp_path)
    settings = RealSettings(train_data=train, val_data=val, vocab_size=256, device="cpu", workdir=REPO,
                            extra={"dtype": "float32", "compile": False})
    return SlurmBackend(settings, CONTEXT, resources=Resources(time_limit, mem_mb=2048, cpus=1),
                        work_dir=tmp_path / "runs", slurm=slurm, poll_s=0.5)


def job_of(service_engine: sa.Engine, experiment_id: int) -> tuple[str | None, str | None]:
    with Session(service_engine) as session:
        experiment = session.get_one(Experiment, experiment_id)
        return experiment.job_name, experiment.job_id


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_migration_adds_the_job_columns_to_existing_experiments(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine, "0001")
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO scaling_students (id, name, role, key_hash, created_at) VALUES (1, 'a', 'student', 'h', '2027-01-01')"))
        connection.execute(sa.text(
            "INSERT INTO scaling_experiments (id, student_id, config_hash, config, parameters, flops, cost, status,"
            " refunded, created_at) VALUES (7, 1, 'c', '{}', 1.0, 6.0, 6.0, 'running', 0, '2027-01-01')"))
    upgrade(engine)
    columns = {column["name"] for column in sa.inspect(engine).get_columns("scaling_experiments")}
    assert {"job_name", "job_id"} <= columns
    with engine.connect() as connection:
        row = connection.execute(sa.text("SELECT status, job_name, job_id FROM scaling_experiments WHERE id = 7")).one()
    assert tuple(row) == ("running", None, None)  # an old run has no job: a restarted server queues it again
    engine.dispose()


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_restarted_server_follows_the_job_to_its_losses(
    make_service: ServiceFactory, slurm: Slurm, tmp_path: Path, db_url: str
) -> None:
    engine = make_engine(db_url)
    first = make_service(backend=backend(slurm, tmp_path), context_length=CONTEXT, min_steps=5)
    me = first.authenticate(first.add_student("alice"))
    config = ExperimentConfig(**TINY)
    submitted = first.submit(me, config)
    deadline = time.monotonic() + 120
    while (job := job_of(engine, submitted.experiment.id))[1] is None:
        assert time.monotonic() < deadline, "the job's id was never recorded"
        time.sleep(0.2)
    first.close()  # the server stops while the job trains: the job goes on
    name, job_id = job
    state = slurm.states([job_id])[job_id]
    assert not state.ended, f"the job ended before the restart ({state.state}): the test proves nothing"
    assert first.experiment(me, submitted.experiment.id).status == "running"

    second = make_service(backend=backend(slurm, tmp_path), context_length=CONTEXT, min_steps=5)
    assert second.resume() == 1
    done = wait(second, me, submitted.experiment.id, timeout=400)
    assert done.status == "completed", done.failure_reason
    losses = [point.loss for point in done.losses]
    assert len(losses) == 10 and done.final_loss == losses[-1]
    assert losses[-1] < losses[0] < np.log(256) + 0.5  # it learned something about the stories
    assert done.losses[-1].tokens == config.train_tokens // (64 * CONTEXT) * 64 * CONTEXT
    assert job_of(engine, submitted.experiment.id) == (name, job_id)
    assert slurm.find(name) == job_id and slurm.states([job_id])[job_id].state == "COMPLETED"
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [name]  # one job, never a second
    assert second.budget(me).spent == pytest.approx(config.flops)
    engine.dispose()


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_run_over_its_time_limit_fails_with_slurms_reason_and_is_refunded(
    make_service: ServiceFactory, slurm: Slurm, tmp_path: Path
) -> None:
    service = make_service(backend=backend(slurm, tmp_path, time_limit="1"), context_length=CONTEXT, min_steps=5)
    me = service.authenticate(service.add_student("bob"))
    submitted = service.submit(me, ExperimentConfig(**ENDLESS))
    assert submitted.charged
    done = wait(service, me, submitted.experiment.id, timeout=400)  # Slurm stops it 60-90 s in
    assert done.status == "failed" and done.refunded
    assert re.fullmatch(r"Slurm job \d+ ended TIMEOUT: it ran past its time limit of 1:00", done.failure_reason or ""), (
        done.failure_reason)
    assert service.budget(me).spent == 0
