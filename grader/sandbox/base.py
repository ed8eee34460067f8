"""The interface every sandbox backend implements, and nothing more.

The grader runs untrusted code only through :meth:`Sandbox.start`. A backend must enforce every
field of :class:`SandboxSpec`: no network, a non-root user, the mounts exactly as given (read-only
unless ``writable``), a private writable ``/tmp`` of ``disk_mb``, memory (swap included), process
count, CPU share, a wall clock after which the whole process tree is killed, and a cap on
captured output.
"""

from __future__ import annotations

import abc
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Limits

#: For every sandboxed Python, and the grader's trusted pytest session too. OpenMP threads that
#: wait spin for ~3 ms after each parallel region by default. Each sandbox (and the pytest session)
#: is a session of its own, so with the kernel's autogroup scheduling its threads share one slice
#: of the CPU: a spinning thread burns the slice its sibling needs to reach the barrier, and on a
#: busy machine every small torch op waits for a scheduler tick (200 AdamW steps on a tiny model:
#: 4-12 s instead of 0.1 s). Passive threads sleep at once; a parallel op pays microseconds.
PASSIVE_OPENMP = {"OMP_WAIT_POLICY": "PASSIVE"}


@dataclass(frozen=True)
class Mount:
    source: Path  # on the host
    target: str  # absolute path inside the sandbox
    writable: bool = False


@dataclass(frozen=True)
class SandboxSpec:
    argv: list[str]
    mounts: list[Mount] = field(default_factory=list)
    workdir: str = "/tmp"
    env: dict[str, str] = field(default_factory=dict)
    memory_mb: int = 1024
    pids: int = 64
    cpus: float = 1.0
    disk_mb: int = 256  # size of the private /tmp
    output_kb: int = 1024  # stdout+stderr kept; the rest is dropped, the process is not stopped
    wall_clock_s: float = 600.0
    gpu: bool = False


@dataclass(frozen=True)
class SandboxResult:
    exit_code: int | None  # None when killed by the wall clock
    output: str  # stdout and stderr interleaved, at most output_kb, decoded with replacement
    output_truncated: bool
    timed_out: bool
    oom_killed: bool
    duration_s: float


@dataclass(frozen=True)
class PythonRuntime:
    """How to run the grader's own Python, with its installed packages, inside a sandbox."""

    argv: list[str]  # e.g. ["/usr/bin/python3"]; callers append "-I", a script and its arguments
    mounts: list[Mount]  # read-only mounts that make it work (interpreter, site-packages)
    env: dict[str, str]  # e.g. LD_LIBRARY_PATH for a relocated interpreter
    site_packages: list[str]  # paths (inside the sandbox) the script must put on sys.path itself,
    # because ``python -I`` ignores PYTHONPATH

    def spec(
        self, args: list[str], mounts: list[Mount], limits: Limits, *, wall_clock_s: float, gpu: bool,
        env: dict[str, str] | None = None,
    ) -> SandboxSpec:
        """This Python running ``args`` under a unit's grading ``limits``, in ``/tmp``, with ``mounts``
        beside the runtime's own; ``HOME`` is the private tmp and no bytecode is written."""
        base_env = {**self.env, "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1",
                    "OMP_NUM_THREADS": str(max(1, int(limits.cpus))), **PASSIVE_OPENMP}
        return SandboxSpec(
            argv=[*self.argv, *args],
            mounts=[*mounts, *self.mounts],
            workdir="/tmp",
            env=base_env | (env or {}),
            memory_mb=limits.memory_mb,
            pids=limits.pids,
            cpus=limits.cpus,
            disk_mb=limits.disk_mb,
            output_kb=limits.output_kb,
            wall_clock_s=wall_clock_s,
            gpu=gpu,
        )


class SandboxProcess(abc.ABC):
    """A command running in a sandbox."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._result: SandboxResult | None = None

    def wait(self, timeout: float | None = None) -> SandboxResult:
        """Block until it exits (or ``timeout``, then kill it) and return its result.

        The first call decides the result; later calls (from any thread) return it again.
        """
        with self._lock:
            if self._result is None:
                self._result = self._wait(timeout)
            return self._result

    @abc.abstractmethod
    def _wait(self, timeout: float | None) -> SandboxResult:
        """Wait, kill past ``timeout``, collect: called once."""

    @abc.abstractmethod
    def kill(self) -> None:
        """Kill every process of the sandbox now; idempotent."""

    @abc.abstractmethod
    def alive(self) -> bool: ...


class Sandbox(abc.ABC):
    name: str

    @abc.abstractmethod
    def unavailable(self) -> str | None:
        """None if this backend can run here, else one sentence saying why not."""

    @abc.abstractmethod
    def python(self) -> PythonRuntime:
        """The grader's interpreter as seen from inside this backend's sandboxes."""

    @abc.abstractmethod
    def start(self, spec: SandboxSpec) -> SandboxProcess:
        """Start ``spec.argv`` in a fresh sandbox and return at once."""

    def cleanup(self, under: Path) -> None:  # noqa: B027 - an optional hook, not abstract
        """Remove what sandboxes left behind whose mounts lie under ``under`` (e.g. containers of
        a run that was killed before it could close them). Nothing to do for most backends."""

    def run(self, spec: SandboxSpec) -> SandboxResult:
        """Start and wait, with the spec's wall clock."""
        return self.start(spec).wait(spec.wall_clock_s)
