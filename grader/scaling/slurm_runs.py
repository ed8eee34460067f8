"""The real backend on a Slurm cluster: each experiment trains in one batch job.

Per run, the backend makes a folder named after the job in its work folder (on the filesystem
the nodes share): ``config.yaml`` (the training config), ``job.sbatch``, ``job.log`` and ``run/``
(the training script's ``out_dir``, holding ``log.jsonl``). It submits the script with ``sbatch``,
polls ``squeue`` until the job has ended and reads the losses from ``log.jsonl`` as the local real
backend does. How the job ended decides the outcome::

    COMPLETED                                     the losses (or "diverged", charged, if the loss became NaN)
    TIMEOUT, OUT_OF_MEMORY, CANCELLED, FAILED, …  failed, naming Slurm's state, refunded
    forgotten by Slurm (ended over MinJobAge ago)  the losses if the log reached the last step, else refunded

The job's name is stored (through :class:`~.backends.JobRecord`) before ``sbatch`` and its id
right after, so a server stopped at any point never loses a job nor starts a second one: the next
server finds the run ``running`` with its job and follows it (:meth:`SlurmBackend.run_job`).
"""

from __future__ import annotations

import logging
import secrets
import sys
import threading
import time
from pathlib import Path

import yaml

from ..config import SlurmConfig
from ..slurm import JobState, Resources, Slurm, SlurmError, SlurmUnavailable, minutes, render_script, resources
from .backends import OUTPUT_TAIL_CHARS, Detached, JobRecord, Outcome, RealBackend, RealSettings
from .config import ExperimentConfig

log = logging.getLogger(__name__)

#: Defaults for what ``course.yaml``'s ``slurm:`` section leaves unset (one GPU unless training on the CPU).
MEM_MB = 16384
CPUS = 4
#: How long a job may be unknown to Slurm before it is settled anyway: a job lost by a crashed
#: slurmctld but still running on its node has been killed by then.
LINGER_S = 60.0


def slurm_resources(config: SlurmConfig, settings: RealSettings) -> Resources:
    """What each training job asks for: ``course.yaml``'s ``slurm:`` section, then our defaults."""
    return resources(config, time_limit=minutes(settings.timeout_s), mem_mb=MEM_MB, cpus=CPUS,
                     gpus=0 if settings.device == "cpu" else 1)


class SlurmBackend(RealBackend):
    """Trains each run as a Slurm job; a failure of the job (not of the config) is refunded."""

    def __init__(self, settings: RealSettings, context_length: int, *, resources: Resources, work_dir: Path,
                 python: str | None = None, slurm: Slurm | None = None, poll_s: float = 5.0) -> None:
        super().__init__(settings, context_length)
        self.resources = resources
        self.work_dir = work_dir.resolve()
        self.python = python or sys.executable
        self.slurm = slurm or Slurm()
        self.poll_s = poll_s
        self.stopping = threading.Event()

    def close(self) -> None:
        self.stopping.set()

    def run(self, config: ExperimentConfig) -> Outcome:
        return self.run_job(config, JobRecord())

    def run_job(self, config: ExperimentConfig, job: JobRecord) -> Outcome:
        """Follow the job ``job`` names if it has one, else submit one; wait for it and read its run."""
        if job.name is None:
            try:
                self._submit(config, job)
            except SlurmError as exc:  # refused (a bad partition, say): SlurmUnavailable is handled within
                return Outcome([], str(exc), refund=True)
        return self._follow(config, job)

    def _submit(self, config: ExperimentConfig, job: JobRecord) -> None:
        name = f"lmc-scaling-{secrets.token_hex(6)}"  # unique, so a retried sbatch never starts it twice
        folder = self.work_dir / name
        folder.mkdir(parents=True)
        config_path = folder / "config.yaml"
        config_path.write_text(yaml.safe_dump(self.train_config(config, folder / "run")), encoding="utf-8")
        script = folder / "job.sbatch"
        script.write_text(render_script(
            self.resources, command=self.command(self.python, config_path), name=name, log=folder / "job.log",
            workdir=self.settings.workdir.resolve(), purpose=f"a scaling run, {config.canonical_json()}",
        ), encoding="utf-8")  # fmt: skip
        job.update(name)
        try:
            job.update(name, self.slurm.submit(script, name=name))
        except SlurmUnavailable:
            log.warning("slurmctld did not answer sbatch for %s; looking for the job by name", name)

    def _follow(self, config: ExperimentConfig, job: JobRecord) -> Outcome:
        """Poll the job until it has ended (or Slurm has not known it for ``LINGER_S``), then settle it."""
        assert job.name is not None
        unknown_since: float | None = None
        while True:
            try:
                if job.job_id is None and (found := self.slurm.find(job.name)):
                    job.update(job.name, found)
                state = self.slurm.states([job.job_id]).get(job.job_id) if job.job_id else None
            except SlurmUnavailable as exc:  # the job goes on meanwhile: keep following it
                log.warning("following %s: %s", job.name, exc)
            else:
                if state is not None and state.name != job.name:
                    state = None  # a crashed slurmctld handed this id to a later job
                if state is not None and state.ended:
                    return self._settle(config, job, state)
                now = time.monotonic()
                unknown_since = (unknown_since or now) if state is None else None
                if unknown_since is not None and now - unknown_since >= LINGER_S:
                    return self._settle(config, job, None)
            if self.stopping.wait(self.poll_s):
                raise Detached(f"the server stopped following Slurm job {job.name}")

    def _settle(self, config: ExperimentConfig, job: JobRecord, state: JobState | None) -> Outcome:
        folder = self.work_dir / str(job.name)
        losses, diverged, finished = self.read_run(config, folder / "run")
        if diverged:
            return Outcome(losses, diverged)  # the config's fault: charged, however the job then ended
        if state is None:
            if finished:
                return Outcome(losses)  # it ended long enough ago for Slurm to forget it
            return Outcome(losses, f"Slurm lost job {job.name} before it finished", refund=True)
        if state.succeeded:
            if not losses:
                return Outcome([], f"Slurm job {job.job_id} completed without a validation loss", refund=True)
            return Outcome(losses)
        why = state.failure()
        if state.state == "FAILED":
            why += ": " + _tail(folder / "job.log")
        return Outcome(losses, why, refund=True)


def _tail(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "its log is missing"
    return text.strip()[-OUTPUT_TAIL_CHARS:].replace("\n", " | ")
