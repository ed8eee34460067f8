"""The one-node Slurm cluster the tests submit real jobs to (scripts/install-slurm.sh starts it)."""

from __future__ import annotations

import re
import subprocess

import pytest

from lmcourse.grader.slurm import Slurm, SlurmError


def running_cluster(patience_s: float) -> Slurm:
    """A client of the cluster; the calling test fails (never skips) when no node can run jobs."""
    client = Slurm(patience_s=patience_s)
    try:
        client.check()
    except SlurmError as exc:
        pytest.fail(f"{exc} Run scripts/install-slurm.sh as root (make services does).", pytrace=False)
    nodes = subprocess.run(["sinfo", "--noheader", "--Node", "--format=%N %T"], capture_output=True, text=True).stdout
    if not re.search(r" (idle|mixed|allocated|completing)$", nodes, re.MULTILINE):
        pytest.fail(f"no Slurm node can run jobs ({nodes.strip() or 'none'}); see sinfo -R, then "
                    "scontrol update NodeName=NODE State=RESUME, or run scripts/install-slurm.sh.", pytrace=False)
    return client
