"""One sandbox's cgroup v1 limits (memory = swap, pids, CPU quota) and the sweep that kills it.

Both local launchers use it when the grader is root and the v1 controllers are mounted; without
it they fall back to rlimits alone (see :mod:`.host`).
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

from .base import SandboxSpec

CGROUP_ROOT = Path("/sys/fs/cgroup")


class CgroupV1:
    """One sandbox's memory, pids and cpu cgroups under ``/sys/fs/cgroup/<controller>/lmcourse``."""

    CONTROLLERS = ("memory", "pids", "cpu")
    swept = False  # this process has removed the cgroups earlier graders left behind

    def __init__(self, name: str, spec: SandboxSpec) -> None:
        if not CgroupV1.swept:
            CgroupV1.swept = True
            sweep_stale()
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


def sweep_stale(min_age_s: float = 600.0) -> int:
    """Remove the empty sandbox cgroups older than ``min_age_s``; returns how many went.

    A cgroup is left behind when its grader dies before the cleanup thread of :meth:`CgroupV1.remove`
    finishes (a pytest process killed at its wall clock, say); over thousands of submissions they
    pile up. ``rmdir`` refuses a cgroup that still holds a task, and the age keeps a sandbox that
    is being set up this very moment out of reach, so the sweep never touches a live one.
    """
    removed, cutoff = 0, time.time() - min_age_s
    for controller in CgroupV1.CONTROLLERS:
        parent = CGROUP_ROOT / controller / "lmcourse"
        try:
            stale = [d for d in parent.iterdir() if d.is_dir() and d.stat().st_mtime < cutoff]
        except OSError:
            continue
        for d in stale:
            try:
                d.rmdir()
                removed += 1
            except OSError:  # still in use, or gone already
                pass
    return removed

