"""Start one benchmark probe process: in a sandbox backend, or (``none``) as a plain child process.

Inside a sandbox the probe sees::

    /lmcourse/boot   the probe package (_lmcourse_bench) and plan.json      read-only
    /lmcourse/code   the code under test (student's, or the staff's)       read-only
    /lmcourse/out    report.json and the saved outputs                      writable
    /lmcourse/peer   the submission's /lmcourse/out (reference role only)   read-only

``none`` runs the same command on the host with host paths and no limits but the wall clock: for
staff timing their own code, or a student on their own GPU. Never for grading.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Limits
from ..errors import LmcourseError

BACKENDS = ("docker", "local", "none")
PACKAGE = "_lmcourse_bench"
PROBE = Path(__file__).resolve().parent / "probe"
BOOT, CODE, OUT, PEER = "/lmcourse/boot", "/lmcourse/code", "/lmcourse/out", "/lmcourse/peer"
BOOTSTRAP = "import runpy, sys; sys.path.insert(0, %r); runpy.run_module(%r, run_name='__main__', alter_sys=True)"
#: Host variables a probe needs to find the GPU and its libraries; nothing else crosses into a sandbox.
PASSED_ENV = ("CUDA_VISIBLE_DEVICES", "TRITON_LIBCUDA_PATH", "TRITON_PTXAS_PATH")
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"  # Triton compiles its launcher with the system C compiler


@dataclass(frozen=True)
class ProbeRun:
    exit_code: int | None  # None when the wall clock killed it
    output: str  # stdout and stderr, the last output_kb of them
    timed_out: bool
    oom_killed: bool
    duration_s: float

    def failure(self) -> str | None:
        """Why the process did not finish normally, in a few words; None when it did."""
        if self.timed_out:
            return "it ran past its time limit and was stopped"
        if self.oom_killed:
            return "it was killed by the memory limit"
        if self.exit_code != 0:
            lines = [ln for ln in self.output.strip().splitlines() if ln.strip()][-2:]
            return f"it exited with status {self.exit_code}" + (f": {' | '.join(lines)}" if lines else "")
        return None


def write_boot(folder: Path, plan: dict[str, Any]) -> Path:
    """The probe package and its plan, readable by the sandbox user."""
    shutil.copytree(PROBE, folder / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "plan.json").write_text(json.dumps(plan, indent=1), encoding="utf-8")
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def launch(
    backend: str,
    *,
    boot: Path,
    code: Path,
    out: Path,
    peer: Path | None,
    limits: Limits,
    timeout_s: float,
    gpu: bool = True,
) -> ProbeRun:
    """Run the probe described by ``boot/plan.json`` on ``code``, writing into ``out``; wait for it.

    ``gpu`` gives a sandbox the machine's GPUs (off only for the CPU runs of the toolkit's tests).
    """
    boot, code, out = boot.resolve(), code.resolve(), out.resolve()
    peer = peer.resolve() if peer is not None else None
    if backend == "none":
        return _run_unsandboxed(boot=boot, code=code, out=out, peer=peer, timeout_s=timeout_s)
    if backend not in BACKENDS:
        raise LmcourseError(f"unknown sandbox {backend!r}: choose one of {', '.join(BACKENDS)}.")
    return _run_sandboxed(backend, boot=boot, code=code, out=out, peer=peer, limits=limits, timeout_s=timeout_s,
                          gpu=gpu)


def _probe_args(boot: str, code: str, out: str, peer: str | None, site: list[str]) -> list[str]:
    # -B: no bytecode written beside the code under test (-I ignores PYTHONDONTWRITEBYTECODE)
    args = ["-I", "-B", "-c", BOOTSTRAP % (boot, PACKAGE), "--plan", f"{boot}/plan.json", "--code", code, "--out", out]
    if peer is not None:
        args += ["--peer", peer]
    return args + [arg for path in site for arg in ("--site", path)]


def _run_sandboxed(
    backend: str, *, boot: Path, code: Path, out: Path, peer: Path | None, limits: Limits, timeout_s: float, gpu: bool
) -> ProbeRun:
    from ..sandbox.base import Mount
    from ..sandbox.registry import get_sandbox

    sandbox = get_sandbox(backend)
    runtime = sandbox.python()
    mounts = [Mount(boot, BOOT), Mount(code, CODE), Mount(out, OUT, writable=True)]
    if peer is not None:
        mounts.append(Mount(peer, PEER))
    env = {"PATH": SANDBOX_PATH} | {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    args = _probe_args(BOOT, CODE, OUT, PEER if peer else None, runtime.site_packages)
    spec = runtime.spec(args, mounts, limits, wall_clock_s=timeout_s, gpu=gpu, env=env)
    result = sandbox.run(spec)
    return ProbeRun(result.exit_code, result.output, result.timed_out, result.oom_killed, result.duration_s)


def _run_unsandboxed(*, boot: Path, code: Path, out: Path, peer: Path | None, timeout_s: float) -> ProbeRun:
    argv = [sys.executable, *_probe_args(str(boot), str(code), str(out), str(peer) if peer else None, [])]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lmcourse-probe-") as cwd:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            timed_out = True
    text = output.decode("utf-8", errors="replace")[-256 * 1024:]
    return ProbeRun(None if timed_out else proc.returncode, text, timed_out, False, time.monotonic() - started)
