"""The ``local`` backend: bubblewrap namespaces + cgroup v1 limits + rlimits, no daemon needed.

One sandbox is one chain of ``exec``s in a single host process (so killing its process group and
cgroup kills everything), then ``bwrap``'s namespaces::

    [root only]  unshare --mount   a private mount namespace for the steps below
                 sh -c SHIM        joins the sandbox's cgroups, bind-mounts each mount source under
                                   /run/lmcourse-sandbox/N (sources may sit under /root, mode 700,
                                   where the sandbox user could not reach them)
                 setpriv           drops to uid/gid 10001, no groups, no new privileges
    prlimit                        RLIMIT_CORE=0, RLIMIT_FSIZE=disk_mb (RLIMIT_DATA without cgroups)
    bwrap                          new user/pid/net/ipc/uts/cgroup/mount namespaces; a tmpfs root
                                   holding only /usr, /bin, /lib*, a minimal /etc, /proc, /dev, a
                                   sized tmpfs /tmp and /dev/shm, the spec's mounts; root remounted
                                   read-only; loopback only (not the host's)
    env -i -- K=V ...              exactly the spec's environment (bwrap adds PWD, docker adds more)
    prlimit --nproc=pids           RLIMIT_NPROC, counted per user namespace, so per sandbox
    argv

``bwrap`` itself runs unprivileged even when the grader is root: the namespaces are then created by
uid 10001 and nothing inside holds a capability of the host. Without root (a developer's laptop)
the same chain runs without the first three steps, and only the rlimits bound memory and
processes. Without bubblewrap the backend reports itself unavailable: an ``unshare``-only sandbox
would leave the host's files readable, which is exactly what it must prevent.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import IO

from ..errors import LmcourseError
from .base import PythonRuntime, Sandbox, SandboxProcess, SandboxResult, SandboxSpec
from .image import (
    SANDBOX_GID,
    SANDBOX_UID,
    group_text,
    hand_over_mounts,
    host_python_runtime,
    passwd_text,
    validate_spec,
)

CGROUP_ROOT = Path("/sys/fs/cgroup")
STAGE_DIR = Path("/run/lmcourse-sandbox")
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
MIN_BWRAP = (0, 8, 0)  # --size (sized tmpfs) and --disable-userns
SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "localtime", "alternatives")
HOSTS = "127.0.0.1 localhost\n::1 localhost\n"
SHIM = r"""set -e
stage=$1; shift
while [ "$1" != -- ]; do echo $$ > "$1"; shift; done; shift
mount -t tmpfs -o mode=0755,size=64k lmcourse-stage "$stage"
i=0
while [ "$1" != -- ]; do
  if [ -d "$1" ]; then mkdir "$stage/$i"; else : > "$stage/$i"; fi
  mount --bind "$1" "$stage/$i"
  i=$((i+1)); shift
done; shift
exec "$@"
"""


class OutputCollector:
    """Keeps the first ``cap`` bytes of a sandbox's output and drops the rest (both backends).

    The producer is never blocked: here a reader keeps draining the pipe past the cap, so a
    sandbox printing gigabytes neither stalls on a full pipe nor grows the grader's memory (the
    docker backend closes its stream instead and lets the daemon discard the rest).
    """

    CHUNK = 1 << 20

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._buf = bytearray()
        self._truncated = False
        self._lock = threading.Lock()

    def feed(self, data: bytes) -> bool:
        """Keep what fits; return False once the cap is reached (the caller may stop reading)."""
        with self._lock:
            room = self.cap - len(self._buf)
            if len(data) > room:
                self._truncated = True
            if room > 0:
                self._buf += data[:room]
            return not self._truncated

    def drain_fd(self, stream: IO[bytes]) -> None:
        fd = stream.fileno()
        try:
            while chunk := os.read(fd, self.CHUNK):
                self.feed(chunk)
        finally:
            stream.close()

    def result(self) -> tuple[str, bool]:
        with self._lock:
            return self._buf.decode("utf-8", errors="replace"), self._truncated


class CgroupV1:
    """One sandbox's memory, pids and cpu cgroups under ``/sys/fs/cgroup/<controller>/lmcourse``."""

    CONTROLLERS = ("memory", "pids", "cpu")

    def __init__(self, name: str, spec: SandboxSpec) -> None:
        self.dirs = {c: CGROUP_ROOT / c / "lmcourse" / name for c in self.CONTROLLERS}
        try:
            for d in self.dirs.values():
                d.mkdir(parents=True)
            mem = self.dirs["memory"]
            limit = str(spec.memory_mb * 1024 * 1024)
            (mem / "memory.limit_in_bytes").write_text(limit)
            if (mem / "memory.memsw.limit_in_bytes").exists():  # swap accounting on: no swap escape
                (mem / "memory.memsw.limit_in_bytes").write_text(limit)
            (self.dirs["pids"] / "pids.max").write_text(str(spec.pids))
            cpu = self.dirs["cpu"]
            (cpu / "cpu.cfs_period_us").write_text("100000")
            (cpu / "cpu.cfs_quota_us").write_text(str(max(1000, int(spec.cpus * 100000))))
        except OSError:
            self.remove()
            raise

    @staticmethod
    def usable() -> bool:
        return os.geteuid() == 0 and all(
            os.access(CGROUP_ROOT / c, os.W_OK) and (CGROUP_ROOT / c / "cgroup.procs").exists()
            for c in CgroupV1.CONTROLLERS
        )

    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.dirs["pids"] / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def kill_all(self, grace_s: float = 3.0) -> None:
        """SIGKILL every process until none is left (a fork bomb may race the first round)."""
        deadline = time.monotonic() + grace_s
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def oom_killed(self) -> bool:
        try:
            text = (self.dirs["memory"] / "memory.oom_control").read_text()
        except OSError:
            return False
        m = re.search(r"^oom_kill (\d+)$", text, re.MULTILINE)
        return bool(m and int(m.group(1)) > 0)

    def remove(self) -> None:
        """Delete the cgroups; if a dying task still holds one, keep trying in the background."""
        if not self._try_remove(tries=25, pause_s=0.04):
            threading.Thread(target=self._try_remove, args=(240, 0.5), name="lmcourse-cgroup-cleanup",
                             daemon=True).start()

    def _try_remove(self, tries: int, pause_s: float) -> bool:
        for _ in range(tries):
            left = []
            for d in self.dirs.values():
                try:
                    d.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:  # EBUSY: a task is still exiting (a loaded host can take seconds)
                    left.append(d)
            if not left:
                return True
            self.kill_all(grace_s=pause_s)
            time.sleep(pause_s)
        return False


class LocalProcess(SandboxProcess):
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
            try:
                os.killpg(self._popen.pid, signal.SIGKILL)  # the outer bwrap: its pid namespace dies
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


class LocalSandbox(Sandbox):
    name = "local"

    def __init__(self) -> None:
        self._bwrap = shutil.which("bwrap")
        self._probed = False
        self._problem: str | None = None

    # -- availability ------------------------------------------------------------------------

    def unavailable(self) -> str | None:
        if not self._probed:
            self._problem, self._probed = self._probe(), True
        return self._problem

    def _probe(self) -> str | None:
        if self._bwrap is None:
            return "the local sandbox needs bubblewrap (apt-get install bubblewrap): bwrap is not on PATH"
        out = subprocess.run([self._bwrap, "--version"], capture_output=True, text=True, check=False).stdout
        m = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
        if not m or tuple(map(int, m.groups())) < MIN_BWRAP:
            return f"the local sandbox needs bubblewrap >= 0.8.0 (for a sized /tmp), found {out.strip()!r}"
        tools = ["env", "prlimit"] + (["unshare", "setpriv", "mount"] if os.geteuid() == 0 else [])
        missing = [t for t in tools if not shutil.which(t, path=SYSTEM_PATH)]
        if missing:
            return f"the local sandbox needs {', '.join(missing)} from util-linux/coreutils in /usr/bin"
        # Probe what a real start does: a fresh /proc and /dev (a container may mask /proc), and
        # as root the private mount namespace the mounts are staged in (needs CAP_SYS_ADMIN).
        probe = subprocess.run(
            [self._bwrap, "--unshare-all", "--unshare-user", "--ro-bind", "/usr", "/usr",
             *self._system_dirs(), "--proc", "/proc", "--dev", "/dev", "--", "/usr/bin/true"],
            capture_output=True, text=True, env={}, check=False,
        )
        if probe.returncode != 0:
            return f"bubblewrap cannot create namespaces here: {probe.stderr.strip() or probe.returncode}"
        if os.geteuid() == 0:
            staged = subprocess.run(["unshare", "--mount", "/usr/bin/true"], capture_output=True, text=True, check=False)
            if staged.returncode != 0:
                return f"the local sandbox cannot make a private mount namespace here: {staged.stderr.strip() or staged.returncode}"
        return None

    def python(self) -> PythonRuntime:
        return host_python_runtime()

    # -- start -------------------------------------------------------------------------------

    def start(self, spec: SandboxSpec) -> SandboxProcess:
        problem = self.unavailable()
        if problem:
            raise LmcourseError(problem)
        validate_spec(spec)
        root = os.geteuid() == 0
        hand_over_mounts(spec.mounts)
        cgroup = CgroupV1(f"{os.getpid()}-{uuid.uuid4().hex[:12]}", spec) if CgroupV1.usable() else None
        data_fds: list[int] = []
        try:
            argv = self._command(spec, root, cgroup, data_fds)
            popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                env={"PATH": SYSTEM_PATH}, pass_fds=data_fds,
                start_new_session=True, close_fds=True,
            )
        except BaseException:
            if cgroup is not None:
                cgroup.remove()
            raise
        finally:
            for fd in data_fds:
                os.close(fd)
        return LocalProcess(popen, cgroup, spec.output_kb)

    def _command(self, spec: SandboxSpec, root: bool, cgroup: CgroupV1 | None, fds: list[int]) -> list[str]:
        def data(name: str, text: str) -> str:
            fd = os.memfd_create(f"lmcourse-{name}", 0)
            os.write(fd, text.encode())
            os.lseek(fd, 0, os.SEEK_SET)
            fds.append(fd)
            return str(fd)

        def tool(name: str) -> str:  # absolute: the sandbox's PATH is the spec's business
            return shutil.which(name, path=SYSTEM_PATH) or name

        mb = 1024 * 1024
        cmd: list[str] = []
        if root:  # see the module docstring: stage the sources, join cgroups, drop to 10001
            STAGE_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
            cmd += [tool("unshare"), "--mount", "--propagation", "private", "--",
                    "/bin/sh", "-c", SHIM, "lmcourse-sandbox", str(STAGE_DIR),
                    *(cgroup.procs_files() if cgroup else []), "--",
                    *(str(m.source) for m in spec.mounts), "--",
                    tool("setpriv"), f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_GID}",
                    "--clear-groups", "--no-new-privs", "--"]
            sources = [str(STAGE_DIR / str(i)) for i in range(len(spec.mounts))]
        else:
            sources = [str(m.source) for m in spec.mounts]
        cmd += [tool("prlimit"), "--core=0", f"--fsize={spec.disk_mb * mb}"]
        if cgroup is None:  # no memory cgroup: bound each process's heap at least
            cmd.append(f"--data={spec.memory_mb * mb}")
        cmd += ["--", self._bwrap or "bwrap",
                "--unshare-all", "--unshare-user", "--disable-userns",
                "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID), "--hostname", "sandbox",
                "--die-with-parent", "--new-session", "--clearenv",
                "--ro-bind", "/usr", "/usr", *self._system_dirs()]
        for name in ETC_FILES:
            if os.path.exists(f"/etc/{name}"):
                cmd += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
        cmd += ["--ro-bind-data", data("passwd", passwd_text()), "/etc/passwd",
                "--ro-bind-data", data("group", group_text()), "/etc/group",
                "--ro-bind-data", data("hosts", HOSTS), "/etc/hosts",
                "--proc", "/proc", "--dev", "/dev",
                "--perms", "1777", "--size", str(spec.disk_mb * mb), "--tmpfs", "/tmp",
                "--perms", "1777", "--size", str(spec.disk_mb * mb), "--tmpfs", "/dev/shm"]
        if spec.gpu:
            cmd += self._gpu_args()
        for m, src in zip(spec.mounts, sources):
            cmd += ["--bind" if m.writable else "--ro-bind", src, m.target]
        if self._needs_workdir(spec):  # as Docker does: a missing workdir is created (empty)
            cmd += ["--dir", spec.workdir]
        cmd += ["--remount-ro", "/", "--chdir", spec.workdir, "--",
                tool("env"), "-i", "--", *(f"{k}={v}" for k, v in spec.env.items()),
                tool("prlimit"), f"--nproc={spec.pids}", "--", *spec.argv]
        return cmd

    @staticmethod
    def _needs_workdir(spec: SandboxSpec) -> bool:
        """Whether ``workdir`` lies on the sandbox's own root (not in a mount or a system dir)."""
        taken = [m.target for m in spec.mounts] + [f"/{d}" for d in (*SYSTEM_DIRS, "etc", "proc", "dev")]
        path = os.path.normpath(spec.workdir)
        return not any(path == t or path.startswith(t.rstrip("/") + "/") for t in taken)

    @staticmethod
    def _system_dirs() -> list[str]:
        """``/bin``, ``/lib``... as on the host: symlinks into /usr (merged /usr) or read-only binds."""
        args: list[str] = []
        for name in SYSTEM_DIRS[1:]:
            path = Path("/") / name
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                args += ["--ro-bind", str(path), str(path)]
        return args

    @staticmethod
    def _gpu_args() -> list[str]:
        devices = sorted(str(p) for p in Path("/dev").glob("nvidia*") if not p.is_dir())
        if not devices:
            raise LmcourseError("the spec asks for a GPU but this host has no /dev/nvidia* device")
        args: list[str] = []
        for dev in devices:
            args += ["--dev-bind", dev, dev]
        return args + ["--ro-bind", "/sys", "/sys"]  # the CUDA driver reads PCI topology from /sys
