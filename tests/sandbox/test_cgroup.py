"""The sweep of cgroups that dead graders left behind: empty ones go, a live one stays."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from lmcourse.grader.sandbox.base import SandboxSpec
from lmcourse.grader.sandbox.cgroup import CgroupV1, sweep_stale

pytestmark = pytest.mark.skipif(not CgroupV1.usable(), reason="cgroup v1 controllers need root here")


def make_cgroup() -> CgroupV1:
    return CgroupV1(f"test-{uuid.uuid4().hex[:8]}", SandboxSpec(argv=["true"], memory_mb=64, pids=16))


def test_empty_leftovers_are_swept_and_a_live_cgroup_is_not():
    leftover, live = make_cgroup(), make_cgroup()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        for procs in live.procs_files():
            with open(procs, "w") as file:
                file.write(str(sleeper.pid))
        assert sweep_stale(min_age_s=0) >= len(CgroupV1.CONTROLLERS)
        assert not any(d.exists() for d in leftover.dirs.values())
        assert all(d.exists() for d in live.dirs.values()) and live.pids() == [sleeper.pid]
    finally:
        sleeper.kill()
        sleeper.wait()
        live.remove()


def test_young_cgroups_are_left_alone():
    """One being set up this very moment is empty too: the age keeps the sweep off it."""
    young = make_cgroup()
    try:
        sweep_stale()
        assert all(d.exists() for d in young.dirs.values())
    finally:
        young.remove()
