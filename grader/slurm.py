"""Slurm through its own commands: write a job script, ``sbatch`` it, poll ``squeue``, ``scancel``.

A small library for every part of lmcourse that runs work on a cluster (batch grading, leaderboard
verification, the scaling API's training runs)::

    slurm = Slurm()
    script = render_script(Resources("2:00:00", mem_mb=8000, gpus=1), command=["python", "train.py"],
                           name=..., log=..., workdir=...)
    job = slurm.submit(script_path, name=name)        # -> "4242"
    state = slurm.states([job])[job]                   # JobState("4242", "RUNNING", ...)
    slurm.cancel([job])

The controller (``slurmctld``) may be restarted at any time; Slurm keeps its jobs across the
restart. While it is away every command here retries with backoff instead of failing, for up to
``patience_s``. There is no accounting database to ask, so the state of a finished job comes from
``squeue --states=all``, which knows it for ``MinJobAge`` seconds after it ended; callers keep their
own record of results (a file the job writes) for what Slurm has forgotten.
"""

from __future__ import annotations

import math
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import SlurmConfig
from .errors import LmcourseError
from .templating import render_template

INSTALL_HINT = "start it (on one machine: scripts/install-slurm.sh) or see docs/slurm.md"
#: States after which a job never runs again (``--no-requeue``); any other state may still change.
ENDED = frozenset({
    "COMPLETED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "CANCELLED", "NODE_FAIL", "PREEMPTED",
    "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED",
})
#: Ended through no fault of the job's own work: running it again is the right answer.
INFRASTRUCTURE = frozenset({"NODE_FAIL", "PREEMPTED", "BOOT_FAIL"})
_WHY = {
    "FAILED": "its program exited with an error",
    "TIMEOUT": "it ran past its time limit of {time_limit}",
    "OUT_OF_MEMORY": "it used more than its {memory} of memory",
    "CANCELLED": "it was cancelled",
    "NODE_FAIL": "its node failed",
    "PREEMPTED": "it was preempted",
    "BOOT_FAIL": "its node did not boot",
    "DEADLINE": "it missed its deadline",
}
# What Slurm's commands print while the controller is down, restarting, or too busy to answer.
_TRANSIENT = re.compile(
    r"Unable to contact slurm controller|Socket timed out|Connection refused|Communication connection failure"
    r"|Zero Bytes were transmitted|backup controller in standby|Resource temporarily unavailable"
    r"|Transport endpoint|temporarily unable to accept job|Slurmctld.* is DOWN|Connection reset",
    re.IGNORECASE,
)
_UNKNOWN_JOB = "Invalid job id specified"


class SlurmError(LmcourseError):
    """Slurm refused a request (a bad partition, an unknown account) or is not there."""


class SlurmUnavailable(SlurmError):
    """The controller did not answer within the caller's patience; jobs keep their state meanwhile."""


@dataclass(frozen=True)
class Resources:
    """What one job asks for; ``time_limit`` in Slurm's format (``'90'``, ``'1:30:00'``, ``'1-00:00:00'``)."""

    time_limit: str
    mem_mb: int
    cpus: int = 1
    gpus: int = 0
    gpu_type: str | None = None
    partition: str | None = None
    account: str | None = None
    extra_args: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()  # shell lines run before the command, e.g. "module load cuda"

    @property
    def gres(self) -> str | None:
        if not self.gpus:
            return None
        return f"gpu:{self.gpu_type}:{self.gpus}" if self.gpu_type else f"gpu:{self.gpus}"


def resources(config: SlurmConfig, *, time_limit: str, mem_mb: int, cpus: int, gpus: int = 0) -> Resources:
    """``course.yaml``'s ``slurm:`` section, with the caller's defaults for what it leaves unset."""
    return Resources(
        time_limit=config.time_limit or time_limit,
        mem_mb=config.mem_mb or mem_mb,
        cpus=config.cpus or cpus,
        gpus=config.gpus if config.gpus is not None else gpus,
        gpu_type=config.gpu_type,
        partition=config.partition,
        account=config.account,
        extra_args=tuple(config.extra_args),
        setup=tuple(config.setup),
    )


def minutes(seconds: float) -> str:
    """A Slurm time limit of whole minutes covering ``seconds`` (Slurm counts in minutes)."""
    return str(max(1, math.ceil(seconds / 60)))


@dataclass(frozen=True)
class JobState:
    job_id: str
    state: str  # Slurm's long name: PENDING, RUNNING, COMPLETING, COMPLETED, TIMEOUT, OUT_OF_MEMORY, ...
    reason: str = ""
    time_limit: str = ""  # as squeue prints it, e.g. 1:00:00
    memory: str = ""  # what the job asked for, e.g. 400M
    name: str = ""  # ids are reused after a slurmctld crash loses its counter: the name tells jobs apart

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    @property
    def succeeded(self) -> bool:
        return self.state == "COMPLETED"

    def failure(self) -> str:
        """Why the job did not complete, naming Slurm's state: ``Slurm job 7 ended TIMEOUT: it ran ...``."""
        why = _WHY.get(self.state, "it did not complete").format(time_limit=self.time_limit, memory=self.memory)
        return f"Slurm job {self.job_id} ended {self.state}: {why}"


def render_script(
    resources: Resources,
    *,
    name: str,
    log: Path,
    workdir: Path,
    command: list[str] | None = None,
    purpose: str = "a job",
    template: str = "slurm/job.sbatch.j2",
    **context: Any,
) -> str:
    """A batch script: ``#SBATCH`` lines for ``resources``, the setup lines, then ``exec command``.

    ``template`` may extend ``slurm/job.sbatch.j2`` and override its ``body`` block (then
    ``command`` is not needed, and ``context`` fills the template).
    """
    for label, value in (("job name", name), ("log", str(log)), ("work folder", str(workdir))):
        if not value or re.search(r"\s", value):
            raise SlurmError(f"the Slurm {label} {value!r} must be non-empty and have no spaces.")
    return render_template(
        template, command=shlex.join(command or []), resources=resources, job_name=name, log=log, workdir=workdir,
        purpose=purpose, **context,
    )


class Slurm:
    """The cluster, through ``sbatch``/``squeue``/``scancel``; commands retry while the controller is away."""

    def __init__(self, *, patience_s: float = 900.0, command_timeout_s: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.patience_s = patience_s
        self.command_timeout_s = command_timeout_s
        self.sleep = sleep

    def check(self, patience_s: float = 30.0) -> None:
        """Raise one sentence unless Slurm's commands are installed and the controller answers
        within ``patience_s`` (long enough for a restart, short enough to fail fast without one)."""
        if shutil.which("sbatch") is None or shutil.which("squeue") is None:
            raise SlurmError(f"Slurm's commands (sbatch, squeue) are not on PATH: install Slurm and {INSTALL_HINT}.")
        deadline = time.monotonic() + patience_s
        delay = 0.5
        while (done := self._once(["sinfo", "--noheader", "--format=%P"])).returncode != 0:
            if not _TRANSIENT.search(done.stderr) or time.monotonic() + delay > deadline:
                raise SlurmError(f"Slurm's controller does not answer ({_last_line(done.stderr)}): {INSTALL_HINT}.")
            self.sleep(delay)
            delay = min(delay * 2, 15.0)

    def submit(self, script: Path, *, name: str) -> str:
        """``sbatch`` the script; returns the job id.

        ``name`` must be unique to this submission: when ``sbatch`` fails in a way that leaves it
        unclear whether the controller took the job, the name finds it before trying again, so a
        retry never starts the job twice.
        """
        deadline = time.monotonic() + self.patience_s
        delay = 0.5
        while True:
            done = self._once(["sbatch", "--parsable", str(script)])
            if done.returncode == 0:
                return done.stdout.strip().split(";")[0]
            while True:  # wait for the controller, then look for the job before submitting again
                if not _TRANSIENT.search(done.stderr):
                    raise SlurmError(f"sbatch refused {script}: {_last_line(done.stderr)}.")
                delay = self._wait(deadline, delay, done.stderr)
                done = self._once(["squeue", "--noheader", "--states=all", "--format=%i", f"--name={name}"])
                if done.returncode == 0:
                    break
            if ids := done.stdout.split():
                return ids[-1]

    def states(self, job_ids: Iterable[str]) -> dict[str, JobState]:
        """The current state of each job Slurm still knows; forgotten ids are absent.

        Check the name too: a slurmctld that crashed may give a lost job's id to a new job.
        """
        ids = sorted(set(job_ids))
        found: dict[str, JobState] = {}
        for start in range(0, len(ids), 500):
            chunk = ",".join(ids[start : start + 500])
            out = self._query(["squeue", "--noheader", "--states=all", "--format=%i|%T|%r|%l|%m|%j", f"--jobs={chunk}"])
            for line in out.splitlines():
                job_id, state, reason, limit, memory, name = (line.split("|", 5) + [""] * 5)[:6]
                job_id = job_id.strip()
                found[job_id] = JobState(job_id, state.strip(), reason.strip(), limit.strip(), memory.strip(), name)
        return found

    def find(self, name: str) -> str | None:
        """The id of the job called ``name``, if Slurm still knows one."""
        out = self._query(["squeue", "--noheader", "--states=all", "--format=%i", f"--name={name}"])
        ids = out.split()
        return ids[-1] if ids else None

    def cancel(self, job_ids: Iterable[str]) -> None:
        """``scancel`` the jobs (those already ended are left as they are)."""
        ids = sorted(set(job_ids))
        for start in range(0, len(ids), 500):
            self._query(["scancel", *ids[start : start + 500]])

    # -- commands with retries ------------------------------------------------------------------

    def _query(self, argv: list[str]) -> str:
        """Run a read or a cancel, retrying while the controller is away.

        ``squeue --jobs=ID`` fails for a single id Slurm has forgotten (for several, it lists the
        others): that is an empty answer, not an error.
        """
        deadline = time.monotonic() + self.patience_s
        delay = 0.5
        while True:
            done = self._once(argv)
            if done.returncode == 0 or _UNKNOWN_JOB in done.stderr:
                return done.stdout
            if not _TRANSIENT.search(done.stderr):
                raise SlurmError(f"{argv[0]} failed: {_last_line(done.stderr)}.")
            delay = self._wait(deadline, delay, done.stderr)

    def _wait(self, deadline: float, delay: float, stderr: str) -> float:
        if time.monotonic() + delay > deadline:
            raise SlurmUnavailable(
                f"Slurm's controller has not answered for {self.patience_s:g} s ({_last_line(stderr)}); "
                "its jobs keep running: run the same command again once it is back."
            )
        self.sleep(delay)
        return min(delay * 2, 15.0)

    def _once(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=self.command_timeout_s, check=False)
        except subprocess.TimeoutExpired:
            why = f"Socket timed out: {argv[0]} took over {self.command_timeout_s:g} s"  # counts as transient
            return subprocess.CompletedProcess(argv, 124, "", why)
        except FileNotFoundError:
            raise SlurmError(f"{argv[0]} is not on PATH: install Slurm and {INSTALL_HINT}.") from None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1].rstrip(".") if lines else "no message"
