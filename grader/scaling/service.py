"""The training API's logic, below HTTP: keys, budgets, experiments, predictions.

Budget accounting is transactional. A submission runs in one write transaction that first
locks the student's budget row (``SELECT … FOR UPDATE`` on PostgreSQL; ``BEGIN IMMEDIATE`` on
SQLite, see :mod:`.db`), then looks for the same config, checks the cost against what is left,
charges it and inserts the experiment. Concurrent submissions of one student therefore queue
on that lock: none can read a remaining budget another is about to spend, so the budget is
never overspent, and a config submitted twice (even at the same instant) is found by the second
request and returned without a second charge.

A run trained in a batch job (the real backend on Slurm) keeps the job's name and id on its
experiment (:class:`.backends.JobRecord`): a server stopped while it trains leaves it ``running``,
and the next one follows that job instead of starting another.

An experiment whose run fails through the system's fault (the training process crashed) is
refunded, and submitting it again runs it again. One that fails through its config (it
diverged) keeps its charge, as a real cluster would, and stays a duplicate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Literal

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from ..database import writer
from ..errors import LmcourseError
from .backends import Backend, Detached, JobRecord, Outcome
from .challenge import Challenge, compute_problem, score_prediction
from .config import ExperimentConfig, FinalPrediction
from .db import STATUSES, Budget, Experiment, Loss, Prediction, Student, utcnow
from .law import HiddenLaw
from .schemas import (
    BudgetView,
    ExperimentView,
    InfoView,
    LossPoint,
    PredictionView,
    ScoreView,
    StudentOverview,
    SubmitResult,
)

log = logging.getLogger(__name__)

KEY_PREFIX = "lmcs_"
NAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,64}$")
BudgetUnit = Literal["flops", "gpu_seconds"]


class ServiceError(LmcourseError):
    """A request the service refuses; ``status`` is its HTTP status code."""

    status = 400


class Unauthorized(ServiceError):
    status = 401


class Forbidden(ServiceError):
    status = 403


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class Invalid(ServiceError):
    status = 422


@dataclass(frozen=True)
class Caller:
    id: int
    name: str
    role: str


def hash_key(key: str) -> str:
    """API keys are long random strings, so a plain sha256 stores them safely (no salt or stretching needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def add_student(
    sessions: sessionmaker[Session], name: str, budget: float, unit: BudgetUnit = "flops", instructor: bool = False
) -> str:
    """Create a user and return their API key; it is stored hashed, so this is the only time it is seen."""
    if not NAME.match(name):
        raise Invalid(f"name {name!r} must be 1-64 letters, digits or . _ @ + -")
    if not budget >= 0:
        raise Invalid(f"the budget must be a non-negative number, got {budget}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    try:
        with sessions.begin() as session:
            student = Student(name=name, role="instructor" if instructor else "student", key_hash=hash_key(key))
            student.budget = Budget(unit=unit, total=float(budget), spent=0.0)
            session.add(student)
    except IntegrityError:
        raise Conflict(f"a user named {name!r} already exists") from None
    return key


class ScalingService:
    def __init__(
        self,
        engine: Engine,
        backend: Backend,
        challenge: Challenge,
        law: HiddenLaw | None = None,
        gpu_flops_per_second: float = 4e14,
        workers: int = 1,
    ) -> None:
        self.backend = backend
        self.challenge = challenge
        self.law = law  # scores predictions in the instructor view, when known
        self.gpu_flops_per_second = gpu_flops_per_second
        self._read = sessionmaker(engine, expire_on_commit=False)
        self._write = sessionmaker(writer(engine), expire_on_commit=False)
        self.executor = None if backend.instant else ThreadPoolExecutor(workers, thread_name_prefix="scaling-run")

    def close(self) -> None:
        """Stop: wait for local runs, stop following batch jobs (they go on; the next server follows them)."""
        self.backend.close()
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        with self._write.begin() as session:
            yield session

    # ---- staff ----

    def add_student(
        self, name: str, budget: float | None = None, unit: BudgetUnit = "flops", instructor: bool = False
    ) -> str:
        """Create a user with ``budget`` (default: the challenge's) and return their API key."""
        return add_student(self._write, name, self.challenge.budget if budget is None else budget, unit, instructor)

    def authenticate(self, key: str) -> Caller:
        with self._read() as session:
            student = session.execute(select(Student).where(Student.key_hash == hash_key(key))).scalar_one_or_none()
        if student is None:
            raise Unauthorized("unknown API key")
        return Caller(student.id, student.name, student.role)

    # ---- experiments ----

    def cost(self, config: ExperimentConfig, unit: str) -> float:
        return config.flops if unit == "flops" else config.flops / self.gpu_flops_per_second

    def _check_limits(self, config: ExperimentConfig) -> None:
        rules = self.challenge
        if config.flops > rules.max_run_flops:
            raise Invalid(f"this experiment needs {config.flops:.3g} FLOPs, more than the largest allowed run ({rules.max_run_flops:.3g})")
        steps = config.train_tokens // (config.batch_size * rules.context_length)
        if steps < rules.min_steps:
            raise Invalid(
                f"train_tokens={config.train_tokens} makes only {steps} optimizer steps of batch_size={config.batch_size} "
                f"x {rules.context_length} tokens; at least {rules.min_steps} are needed"
            )

    def submit(self, caller: Caller, config: ExperimentConfig) -> SubmitResult:
        """Charge and start ``config``, or return the experiment already run with it (uncharged)."""
        self._check_limits(config)
        config_hash = config.config_hash()
        with self._writing() as session:
            budget = self._locked_budget(session, caller.id)
            experiment = session.execute(
                select(Experiment)
                .where(Experiment.student_id == caller.id, Experiment.config_hash == config_hash)
                .options(selectinload(Experiment.losses))
            ).scalar_one_or_none()
            if experiment is not None and not experiment.refunded:
                return SubmitResult(experiment=_experiment_view(experiment), charged=False, budget=_budget_view(budget))
            cost = self.cost(config, budget.unit)
            spent = budget.spent + cost
            if spent > budget.total:
                raise Conflict(
                    f"this experiment costs {cost:.4g} {budget.unit} but only {budget.total - budget.spent:.4g} "
                    "of your budget remain"
                )
            budget.spent = spent
            if experiment is None:
                experiment = Experiment(student_id=caller.id, config_hash=config_hash, losses=[])
                session.add(experiment)
            _reset(experiment, config, cost)
            if self.backend.instant:
                _record(experiment, budget, self._run(config))
            session.flush()
            result = SubmitResult(experiment=_experiment_view(experiment), charged=True, budget=_budget_view(budget))
        if self.executor is not None:
            self.executor.submit(self._execute, result.experiment.id)
        return result

    def _locked_budget(self, session: Session, student_id: int) -> Budget:
        """The student's budget row, locked until the transaction ends: one writer per student at a time."""
        return session.execute(select(Budget).where(Budget.student_id == student_id).with_for_update()).scalar_one()

    def _run(self, config: ExperimentConfig, job: JobRecord | None = None) -> Outcome:
        try:
            return self.backend.run(config) if job is None else self.backend.run_job(config, job)
        except Detached:
            raise
        except Exception as exc:  # a backend bug must not lose the experiment or the student's budget
            log.exception("backend %s failed on %s", self.backend.name, config.canonical_json())
            return Outcome([], f"the {self.backend.name} backend failed ({type(exc).__name__})", refund=True)

    def _execute(self, experiment_id: int) -> None:
        """Executor job: mark running (or follow the batch job a stopped server left running), train
        outside any transaction, record the outcome."""
        with self._writing() as session:
            experiment = session.get(Experiment, experiment_id)
            if experiment is None or not (experiment.status == "queued" or _in_job(experiment)):
                return
            if experiment.status == "queued":
                experiment.status, experiment.started_at = "running", utcnow()
            config = ExperimentConfig.model_validate(experiment.config)
            job = JobRecord(experiment.job_name, experiment.job_id, partial(self._keep_job, experiment_id))
        try:
            outcome = self._run(config, job)
        except Detached:
            return  # the server is stopping; the experiment stays running with its job, for the next one
        with self._writing() as session:
            experiment = session.get_one(Experiment, experiment_id, options=[selectinload(Experiment.losses)])
            _record(experiment, self._locked_budget(session, experiment.student_id), outcome)

    def _keep_job(self, experiment_id: int, name: str, job_id: str | None) -> None:
        with self._writing() as session:
            experiment = session.get_one(Experiment, experiment_id)
            experiment.job_name, experiment.job_id = name, job_id

    def resume(self) -> int:
        """Take up the experiments a stopped server left unfinished: follow those in a batch job, queue
        the others again; returns how many."""
        if self.executor is None:
            return 0
        with self._writing() as session:
            pending = session.execute(select(Experiment).where(Experiment.status.in_(("queued", "running")))).scalars().all()
            for experiment in pending:
                if not _in_job(experiment):
                    experiment.status, experiment.started_at = "queued", None
            ids = [experiment.id for experiment in pending]
        for experiment_id in ids:
            self.executor.submit(self._execute, experiment_id)
        return len(ids)

    def experiments(self, caller: Caller, status: str | None = None) -> list[ExperimentView]:
        query = select(Experiment).where(Experiment.student_id == caller.id).options(selectinload(Experiment.losses))
        if status is not None:
            query = query.where(Experiment.status == status)
        with self._read() as session:
            return [_experiment_view(e) for e in session.execute(query.order_by(Experiment.id)).scalars()]

    def experiment(self, caller: Caller, experiment_id: int) -> ExperimentView:
        with self._read() as session:
            experiment = session.get(Experiment, experiment_id, options=[selectinload(Experiment.losses)])
            if experiment is None or experiment.student_id != caller.id:
                raise NotFound(f"you have no experiment {experiment_id}")
            return _experiment_view(experiment)

    def budget(self, caller: Caller) -> BudgetView:
        with self._read() as session:
            return _budget_view(session.get_one(Budget, caller.id))

    # ---- the final prediction ----

    def record_prediction(self, caller: Caller, prediction: FinalPrediction) -> PredictionView:
        """Store ``prediction``, replacing any earlier one (last write wins)."""
        if problem := compute_problem(prediction, self.challenge):
            raise Invalid(problem)
        with self._writing() as session:
            self._locked_budget(session, caller.id)  # two first recordings cannot both insert
            row = session.get(Prediction, caller.id)
            if row is None:
                row = Prediction(student_id=caller.id, revision=0)
                session.add(row)
            row.config = prediction.config.model_dump(mode="json")
            row.predicted_loss = prediction.predicted_loss
            row.revision += 1
            row.updated_at = utcnow()
            session.flush()
            return _prediction_view(row)

    def prediction(self, caller: Caller) -> PredictionView:
        with self._read() as session:
            row = session.get(Prediction, caller.id)
            if row is None:
                raise NotFound("you have not recorded a final prediction yet")
            return _prediction_view(row)

    # ---- everyone ----

    def info(self) -> InfoView:
        rules = self.challenge
        return InfoView(
            backend=self.backend.name,
            target_compute=rules.target_compute,
            compute_tolerance=rules.compute_tolerance,
            max_run_flops=rules.max_run_flops,
            context_length=rules.context_length,
            min_steps=rules.min_steps,
        )

    def overview(self, caller: Caller) -> list[StudentOverview]:
        """Every user's budget, experiments by status and prediction (scored when the law is known)."""
        if caller.role != "instructor":
            raise Forbidden("only an instructor key may see every student")
        with self._read() as session:
            counts: dict[int, dict[str, int]] = {}
            grouped = select(Experiment.student_id, Experiment.status, func.count()).group_by(
                Experiment.student_id, Experiment.status
            )
            for student_id, status, count in session.execute(grouped):
                counts.setdefault(student_id, {})[status] = count
            predictions = {p.student_id: p for p in session.execute(select(Prediction)).scalars()}
            students = session.execute(select(Student).options(selectinload(Student.budget)).order_by(Student.name)).scalars()
            return [self._overview(s, counts.get(s.id, {}), predictions.get(s.id)) for s in students]

    def _overview(self, student: Student, counts: dict[str, int], prediction: Prediction | None) -> StudentOverview:
        score = None
        if prediction is not None and self.law is not None:
            final = FinalPrediction.model_validate({"config": prediction.config, "predicted_loss": prediction.predicted_loss})
            result = score_prediction(final, self.law, self.challenge)
            score = ScoreView(metrics={str(k): v for k, v in result.metrics.items()}, earned=result.earned, possible=result.possible, fraction=result.fraction)
        return StudentOverview(
            name=student.name,
            role=student.role,
            budget=_budget_view(student.budget) if student.budget else None,
            experiments={status: counts.get(status, 0) for status in STATUSES},
            prediction=_prediction_view(prediction) if prediction else None,
            score=score,
        )


def _in_job(experiment: Experiment) -> bool:
    """Running in a batch job that may still train: to be followed, not started again."""
    return experiment.status == "running" and experiment.job_name is not None


def _reset(experiment: Experiment, config: ExperimentConfig, cost: float) -> None:
    """A fresh queued run of ``config`` (a new row, or a refunded one tried again)."""
    experiment.config = config.model_dump(mode="json")
    experiment.parameters, experiment.flops, experiment.cost = config.parameters, config.flops, cost
    experiment.status, experiment.failure_reason, experiment.final_loss = "queued", None, None
    experiment.refunded, experiment.started_at, experiment.finished_at = False, None, None
    experiment.job_name, experiment.job_id = None, None
    experiment.created_at = utcnow()
    experiment.losses.clear()


def _record(experiment: Experiment, budget: Budget, outcome: Outcome) -> None:
    """Store how the run ended; a run that failed through the system's fault gives its cost back."""
    experiment.losses = [Loss(tokens=float(tokens), loss=float(loss)) for tokens, loss in outcome.losses]
    experiment.status = "failed" if outcome.failure else "completed"
    experiment.failure_reason = outcome.failure
    experiment.final_loss = outcome.final_loss
    experiment.started_at = experiment.started_at or utcnow()
    experiment.finished_at = utcnow()
    if outcome.failure and outcome.refund:
        experiment.refunded = True
        budget.spent = max(0.0, budget.spent - experiment.cost)


def _utc(when: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return when.replace(tzinfo=dt.UTC) if when is not None and when.tzinfo is None else when


def _experiment_view(e: Experiment) -> ExperimentView:
    return ExperimentView(
        id=e.id,
        config=ExperimentConfig.model_validate(e.config),
        config_hash=e.config_hash,
        parameters=e.parameters,
        flops=e.flops,
        cost=e.cost,
        status=e.status,  # type: ignore[arg-type]
        failure_reason=e.failure_reason,
        final_loss=e.final_loss,
        refunded=e.refunded,
        losses=[LossPoint(tokens=point.tokens, loss=point.loss) for point in e.losses],
        created_at=_utc(e.created_at),  # type: ignore[arg-type]
        started_at=_utc(e.started_at),
        finished_at=_utc(e.finished_at),
    )


def _budget_view(b: Budget) -> BudgetView:
    return BudgetView(unit=b.unit, total=b.total, spent=b.spent, remaining=max(0.0, b.total - b.spent))


def _prediction_view(p: Prediction) -> PredictionView:
    config = ExperimentConfig.model_validate(p.config)
    return PredictionView(
        config=config,
        predicted_loss=p.predicted_loss,
        parameters=config.parameters,
        flops=config.flops,
        revision=p.revision,
        updated_at=_utc(p.updated_at),  # type: ignore[arg-type]
    )
