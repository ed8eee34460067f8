"""The service on SQLite and PostgreSQL: budgets, duplicates, concurrency, refunds, predictions.

Concurrency is real: threads submit through separate connections at once, and the database's
locks (BEGIN IMMEDIATE on SQLite, SELECT ... FOR UPDATE on PostgreSQL) must keep the books.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from lmcourse.grader.scaling.backends import Backend, Outcome
from lmcourse.grader.scaling.config import ExperimentConfig, FinalPrediction
from lmcourse.grader.scaling.db import VERSION_TABLE, Base, Experiment
from lmcourse.grader.scaling.server import open_database
from lmcourse.grader.scaling.service import Conflict, Forbidden, Invalid, NotFound, ScalingService, Unauthorized

from .conftest import ServiceFactory

GOOD = {"d_model": 256, "num_layers": 4, "num_heads": 4, "batch_size": 32, "learning_rate": 2e-3, "train_tokens": 20_000_000}


def config(**changes: Any) -> ExperimentConfig:
    return ExperimentConfig(**{**GOOD, **changes})


def target_prediction(target: float, loss: float = 3.0) -> FinalPrediction:
    """A 1e19-FLOP config (d 1024, 16 layers: N = 2.01e8)."""
    shape = {"d_model": 1024, "num_layers": 16, "num_heads": 16}
    n = 12 * 16 * 1024**2
    return FinalPrediction(config=config(**shape, train_tokens=int(target / (6 * n)), batch_size=512), predicted_loss=loss)


def in_parallel(count: int, job: Callable[[int], Any]) -> list[Any]:
    """Run ``job(i)`` for i < count in as many threads, released together; exceptions are returned."""
    start = threading.Barrier(count)

    def run(i: int) -> Any:
        start.wait()
        try:
            return job(i)
        except Exception as exc:  # noqa: BLE001  (the caller inspects what each thread got)
            return exc

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_migrations_create_exactly_the_models(db_url: str) -> None:
    engine = open_database(db_url)
    open_database(db_url).dispose()  # a second start finds the schema current and changes nothing
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}), Base.metadata)
    engine.dispose()
    assert diff == []


def test_submit_charges_runs_and_reports(make_service: ServiceFactory) -> None:
    service = make_service()
    me = service.authenticate(service.add_student("alice"))
    result = service.submit(me, config())
    assert result.charged and result.experiment.status == "completed"
    assert result.experiment.final_loss == result.experiment.losses[-1].loss
    assert result.budget.spent == pytest.approx(config().flops)
    assert service.budget(me).remaining == pytest.approx(service.challenge.budget - config().flops)
    assert [e.id for e in service.experiments(me)] == [result.experiment.id]
    assert service.experiment(me, result.experiment.id) == result.experiment


def test_a_duplicate_is_returned_and_not_charged(make_service: ServiceFactory) -> None:
    service = make_service()
    me = service.authenticate(service.add_student("alice"))
    first = service.submit(me, config())
    again = service.submit(me, config(learning_rate=0.002, train_tokens=2e7))  # the same config, spelt otherwise
    assert not again.charged and again.experiment == first.experiment
    assert service.budget(me).spent == pytest.approx(config().flops)
    other = service.authenticate(service.add_student("bob"))
    assert service.submit(other, config()).charged  # budgets and duplicates are per student


def test_over_budget_is_refused_and_nothing_is_charged(make_service: ServiceFactory) -> None:
    service = make_service(budget=1.5 * config().flops)
    me = service.authenticate(service.add_student("alice"))
    service.submit(me, config())
    with pytest.raises(Conflict, match="only .* of your budget remain"):
        service.submit(me, config(batch_size=64))
    assert service.budget(me).spent == pytest.approx(config().flops)
    assert len(service.experiments(me)) == 1


@pytest.mark.parametrize(
    ("changes", "reason"),
    [({"train_tokens": 10**11, "d_model": 1024}, "more than the largest allowed run"),
     ({"train_tokens": 200_000, "batch_size": 64}, "at least 20 are needed")],
)
def test_rules_of_the_challenge_are_enforced(make_service: ServiceFactory, changes: dict[str, Any], reason: str) -> None:
    service = make_service()
    me = service.authenticate(service.add_student("alice"))
    with pytest.raises(Invalid, match=reason):
        service.submit(me, config(**changes))


def test_concurrent_submissions_never_overspend(make_service: ServiceFactory) -> None:
    # 24 different configs at once against room for 10: exactly 10 run, 14 are refused.
    unit = config().flops
    service = make_service(budget=10.5 * unit)
    key = service.add_student("alice")
    me = service.authenticate(key)
    results = in_parallel(24, lambda i: service.submit(me, config(learning_rate=1e-3 + i * 1e-5)))
    charged = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(charged) == 10 and all(isinstance(r, Conflict) for r in refused), refused
    budget = service.budget(me)
    assert budget.spent <= budget.total
    assert budget.spent == pytest.approx(sum(e.cost for e in service.experiments(me)), rel=1e-12)


def test_concurrent_duplicates_are_charged_once(make_service: ServiceFactory) -> None:
    service = make_service()
    me = service.authenticate(service.add_student("alice"))
    results = in_parallel(12, lambda i: service.submit(me, config()))
    assert not any(isinstance(r, Exception) for r in results), results
    assert sum(r.charged for r in results) == 1
    assert len({r.experiment.id for r in results}) == 1
    assert service.budget(me).spent == pytest.approx(config().flops)


def test_diverged_runs_fail_with_a_reason_and_stay_charged(make_service: ServiceFactory) -> None:
    service = make_service()
    me = service.authenticate(service.add_student("alice"))
    result = service.submit(me, config(learning_rate=0.9))
    assert result.experiment.status == "failed" and "diverged" in (result.experiment.failure_reason or "")
    assert result.experiment.final_loss is None and not result.experiment.refunded
    assert service.budget(me).spent == pytest.approx(config().flops)
    assert not service.submit(me, config(learning_rate=0.9)).charged  # a duplicate, like any other


class Flaky(Backend):
    """A backend whose infrastructure fails on the first call and works after: the system's fault."""

    name, instant = "flaky", True

    def __init__(self) -> None:
        self.calls = 0

    def run(self, config: ExperimentConfig) -> Outcome:
        self.calls += 1
        if self.calls == 1:
            return Outcome([], "the node running it went away", refund=True)
        return Outcome([(config.train_tokens / 2, 4.0), (float(config.train_tokens), 3.5)])


def test_system_failures_are_refunded_and_can_be_run_again(make_service: ServiceFactory) -> None:
    service = make_service(backend=Flaky())
    me = service.authenticate(service.add_student("alice"))
    failed = service.submit(me, config())
    assert failed.experiment.status == "failed" and failed.experiment.refunded
    assert service.budget(me).spent == 0
    retried = service.submit(me, config())
    assert retried.charged and retried.experiment.id == failed.experiment.id
    assert retried.experiment.status == "completed" and retried.experiment.final_loss == 3.5
    assert service.budget(me).spent == pytest.approx(config().flops)


def test_keys_and_access(make_service: ServiceFactory) -> None:
    service = make_service()
    alice = service.authenticate(service.add_student("alice"))
    bob = service.authenticate(service.add_student("bob"))
    with pytest.raises(Unauthorized):
        service.authenticate("lmcs_not-a-key")
    with pytest.raises(Conflict, match="already exists"):
        service.add_student("alice")
    with pytest.raises(Invalid):
        service.add_student("no spaces allowed")
    mine = service.submit(alice, config()).experiment
    with pytest.raises(NotFound):
        service.experiment(bob, mine.id)  # another student's experiment does not exist for bob
    with pytest.raises(Forbidden):
        service.overview(alice)


def test_prediction_last_write_wins(make_service: ServiceFactory) -> None:
    service = make_service()
    me = service.authenticate(service.add_student("alice"))
    with pytest.raises(NotFound):
        service.prediction(me)
    target = service.challenge.target_compute
    first = service.record_prediction(me, target_prediction(target, 3.2))
    second = service.record_prediction(me, target_prediction(target, 3.1))
    assert (first.revision, second.revision) == (1, 2)
    assert service.prediction(me).predicted_loss == 3.1
    with pytest.raises(Invalid, match="but the target is"):
        service.record_prediction(me, target_prediction(target / 2))
    assert service.prediction(me).predicted_loss == 3.1  # a refused prediction changes nothing


def test_concurrent_first_predictions_keep_one_row(make_service: ServiceFactory) -> None:
    service = make_service()
    me = service.authenticate(service.add_student("alice"))
    target = service.challenge.target_compute
    results = in_parallel(8, lambda i: service.record_prediction(me, target_prediction(target, 3.0 + i / 100)))
    assert not any(isinstance(r, Exception) for r in results), results
    assert sorted(r.revision for r in results) == list(range(1, 9))
    final = service.prediction(me)
    assert final.revision == 8 and final.predicted_loss == next(r.predicted_loss for r in results if r.revision == 8)


def test_instructor_sees_everyone_with_scores(make_service: ServiceFactory) -> None:
    service = make_service()
    teacher = service.authenticate(service.add_student("prof", instructor=True))
    alice = service.authenticate(service.add_student("alice", budget=1e18))
    service.authenticate(service.add_student("bob"))
    service.submit(alice, config())
    service.submit(alice, config(learning_rate=0.9))
    service.record_prediction(alice, target_prediction(service.challenge.target_compute))
    rows = {row.name: row for row in service.overview(teacher)}
    assert set(rows) == {"alice", "bob", "prof"}
    assert rows["alice"].experiments == {"queued": 0, "running": 0, "completed": 1, "failed": 1}
    assert rows["alice"].budget is not None and rows["alice"].budget.total == 1e18
    assert rows["alice"].score is not None and 0 <= rows["alice"].score.fraction <= 1
    assert set(rows["alice"].score.metrics) == {"loss_error", "size_error", "excess_loss"}
    assert rows["bob"].prediction is None and rows["bob"].score is None


def test_budgets_in_gpu_seconds(make_service: ServiceFactory) -> None:
    service = make_service()
    me = service.authenticate(service.add_student("alice", budget=3600.0, unit="gpu_seconds"))
    result = service.submit(me, config())
    assert result.budget.unit == "gpu_seconds"
    assert result.experiment.cost == pytest.approx(config().flops / service.gpu_flops_per_second)
    assert math.isclose(result.budget.remaining, 3600.0 - result.experiment.cost)


def test_resume_queues_unfinished_runs_again(make_service: ServiceFactory) -> None:
    # A real-backend server stopped mid-run leaves rows queued or running; the next one picks them up.
    class Slow(Flaky):
        instant = False

        def run(self, config: ExperimentConfig) -> Outcome:
            return Outcome([(float(config.train_tokens), 3.25)])

    service = make_service(backend=Slow())
    me = service.authenticate(service.add_student("alice"))
    experiment_id = service.submit(me, config()).experiment.id
    service.close()  # waits for the run
    assert service.experiment(me, experiment_id).status == "completed"
    with service._write.begin() as session:  # noqa: SLF001  (simulate a crash mid-run)
        session.execute(select(Experiment)).scalar_one().status = "running"
    restarted: ScalingService = make_service(backend=Slow())
    assert restarted.resume() == 1
    restarted.close()
    assert restarted.experiment(me, experiment_id).final_loss == 3.25
