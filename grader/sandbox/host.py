"""What the two local launchers share: a sandbox that is one process tree on this host.

A launcher (:mod:`.bwrap`, :mod:`.unshare`) differs from the other only in the command line it
builds (:meth:`HostSandbox._command`). Everything else is here: checking the spec, handing the
mounts over to the sandbox user, the cgroup (as root), starting the command as the leader of a
new session, draining its output, and killing it -- its process group, then whatever is left in
its cgroup -- when the wall clock runs out.

Both launchers build the same file system from the constants below: a tmpfs root holding only
the system directories (read-only), a minimal ``/etc``, ``/proc`` of a new pid namespace, a
minimal ``/dev``, sized private tmpfs ``/tmp`` and ``/dev/shm`` and the spec's mounts.
"""

from __future__ import annotations

import abc
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

from ..errors import LmcourseError
from .base import PythonRuntime, Sandbox, SandboxProcess, SandboxResult, SandboxSpec
from .cgroup import CgroupV1
from .image import hand_over_mounts, host_python_runtime, validate_spec
from .output import OutputCollector

SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
STAGE_DIR = Path("/run/lmcourse-sandbox")  # as root: where a private mount namespace builds things
SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "localtime", "alternatives")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
HOSTS = "127.0.0.1 localhost\n::1 localhost\n"
MB = 1024 * 1024


def tool(name: str) -> str:
    """A system tool by absolute path: the sandbox's PATH is the spec's business."""
    return shutil.which(name, path=SYSTEM_PATH) or name


def missing_tools(names: list[str]) -> list[str]:
    return [name for name in names if not shutil.which(name, path=SYSTEM_PATH)]


def memfd(fds: list[int], name: str, data: str | bytes) -> str:
    """Put ``data`` in an anonymous file the command inherits; return its fd number as text."""
    fd = os.memfd_create(f"lmcourse-{name}", 0)
    os.write(fd, data.encode() if isinstance(data, str) else data)
    os.lseek(fd, 0, os.SEEK_SET)
    fds.append(fd)
    return str(fd)


def needs_workdir(spec: SandboxSpec) -> bool:
    """Whether ``workdir`` lies on the sandbox's own root (not in a mount or a system dir), so it
    must be created, empty, as Docker does."""
    taken = [m.target for m in spec.mounts] + [f"/{d}" for d in (*SYSTEM_DIRS, "etc", "proc", "dev")]
    path = os.path.normpath(spec.workdir)
    return not any(path == t or path.startswith(t.rstrip("/") + "/") for t in taken)


def gpu_devices() -> list[str]:
    devices = sorted(str(p) for p in Path("/dev").glob("nvidia*") if not p.is_dir())
    if not devices:
        raise LmcourseError("the spec asks for a GPU but this host has no /dev/nvidia* device")
    return devices


class HostProcess(SandboxProcess):
    """A sandbox started by a local launcher: a session leader, maybe a cgroup, a pipe to drain."""

    def __init__(self, popen: subprocess.Popen[bytes], cgroup: CgroupV1 | None, output_kb: int) -> None:
        super().__init__()
        self._popen = popen
        self._cgroup = cgroup
        self._started = time.monotonic()
        assert popen.stdout is not None
        self._output = OutputCollector(output_kb * 1024)
        self._reader = threading.Thread(
            target=self._output.drain_fd, args=(popen.stdout,), name="lmcourse-sandbox-output", daemon=True
        )
        self._reader.start()

    def alive(self) -> bool:
        return self._popen.poll() is None

    def kill(self) -> None:
        if self._popen.poll() is None:  # once reaped, its pid may belong to someone else
            try:  # the launcher and the first process of the pid namespace: the namespace dies with it
                os.killpg(self._popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._cgroup is not None:
            self._cgroup.kill_all()

    def _wait(self, timeout: float | None) -> SandboxResult:
        timed_out = False
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.kill()
            self._popen.wait()
        duration = time.monotonic() - self._started
        if self._cgroup is not None:
            self._cgroup.kill_all()  # whatever outlived its parent
        self._reader.join(5)
        oom = self._cgroup.oom_killed() if self._cgroup is not None else False
        if self._cgroup is not None:
            self._cgroup.remove()
        text, truncated = self._output.result()
        code = self._popen.returncode
        return SandboxResult(
            exit_code=None if timed_out else (128 - code if code < 0 else code),  # shell style, as Docker
            output=text,
            output_truncated=truncated,
            timed_out=timed_out,
            oom_killed=oom,
            duration_s=duration,
        )


class HostSandbox(Sandbox):
    """A launcher: :meth:`_probe` says whether it can run here, :meth:`_command` builds its chain."""

    def __init__(self) -> None:
        self._probed = False
        self._problem: str | None = None

    def unavailable(self) -> str | None:
        if not self._probed:
            self._problem, self._probed = self._probe(), True
        return self._problem

    @abc.abstractmethod
    def _probe(self) -> str | None:
        """None if this launcher can start a sandbox here, else one sentence saying why not."""

    @abc.abstractmethod
    def _command(self, spec: SandboxSpec, cgroup: CgroupV1 | None, fds: list[int]) -> list[str]:
        """The command line that runs ``spec`` sandboxed; data it needs goes in ``fds`` (inherited)."""

    def python(self) -> PythonRuntime:
        return host_python_runtime()

    def start(self, spec: SandboxSpec) -> SandboxProcess:
        problem = self.unavailable()
        if problem:
            raise LmcourseError(problem)
        validate_spec(spec)
        hand_over_mounts(spec.mounts)
        cgroup = CgroupV1(f"{os.getpid()}-{uuid.uuid4().hex[:12]}", spec) if CgroupV1.usable() else None
        return self._spawn(spec, cgroup)

    def _spawn(self, spec: SandboxSpec, cgroup: CgroupV1 | None) -> HostProcess:
        fds: list[int] = []
        try:
            argv = self._command(spec, cgroup, fds)
            popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                env={"PATH": SYSTEM_PATH}, pass_fds=fds, start_new_session=True, close_fds=True,
            )
        except BaseException:
            if cgroup is not None:
                cgroup.remove()
            raise
        finally:
            for fd in fds:
                os.close(fd)
        return HostProcess(popen, cgroup, spec.output_kb)
