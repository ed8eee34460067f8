"""Run a function on several ranks joined into one gloo process group and collect what each returns.

The distributed tests call :func:`run_on_ranks` from their producers, so on the grader the whole
scenario runs inside the sandbox and only its results come out. It starts ``world_size`` CPU
processes, joins them through a file store in a fresh temporary folder (no TCP port to choose:
runs side by side never collide), calls ``function(rank, world_size, *args)`` in each and returns
the results in rank order. Results travel back in files written with ``torch.save`` and read with
``weights_only=True``: tensors, numbers, strings, lists, tuples and dicts.

A rank that raises fails the run with its message; a rank that hangs (typically in a collective
another rank never joined) fails it after ``timeout_s``; either way every rank is killed. Ranks
come from a fork server that has already imported torch (when the interpreter finds it on its own
path, as in a virtual environment), so a run costs about a second rather than a fresh interpreter
and a torch import per rank. ``function`` must be defined at the top level of an importable
module: the ranks look it up by name.
"""

from __future__ import annotations

import functools
import multiprocessing
import multiprocessing.connection
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

#: Imported by the fork server before it forks any rank (a missing one is skipped). Building the
#: first optimizer imports torch._dynamo (and sympy): seconds per rank if left to the ranks.
PRELOAD = ["numpy", "torch", "torch.distributed", "torch._dynamo", "triton"]


def run_on_ranks(function: Callable[..., Any], *args: Any, world_size: int = 2, timeout_s: float = 60.0) -> list[Any]:
    """``[function(rank, world_size, *args) for each rank]``, each run in its own process."""
    context = _context()
    with tempfile.TemporaryDirectory(prefix="lmcourse-ranks-") as name:
        folder = Path(name)
        ranks = [
            context.Process(target=_rank_main, args=(function, args, rank, world_size, folder, timeout_s), daemon=True)
            for rank in range(world_size)
        ]
        try:
            for process in ranks:
                process.start()
            _wait(ranks, folder, timeout_s)
        finally:
            for process in ranks:
                if process.is_alive():
                    process.kill()
                if process.pid is not None:
                    process.join()
        return [torch.load(folder / f"result{rank}.pt", weights_only=True) for rank in range(world_size)]


@functools.cache
def _context() -> Any:
    """A fork server that imported the heavy libraries once (where the platform has one), else spawn.

    Only libraries are preloaded, never the student's package: each rank imports that itself,
    so a test can instrument torch first and an import error shows as that rank's failure.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _wait(ranks: list[Any], folder: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        codes = [process.exitcode for process in ranks]
        if any(code not in (None, 0) for code in codes):
            raise RuntimeError(_first_failure(folder, codes))
        if all(code == 0 for code in codes):
            return
        left = deadline - time.monotonic()
        if left <= 0:
            stuck = [rank for rank, code in enumerate(codes) if code is None]
            raise TimeoutError(
                f"rank(s) {stuck} still running after {timeout_s:g} s: a collective that another rank "
                "never called (or called with other shapes) waits forever"
            )
        multiprocessing.connection.wait([p.sentinel for p in ranks if p.exitcode is None], timeout=left)


def _first_failure(folder: Path, codes: list[int | None]) -> str:
    """The message of the rank that failed first (the others often fail because it left)."""
    reports = sorted(folder.glob("error*.txt"), key=lambda path: path.stat().st_mtime_ns)
    if reports:
        return reports[0].read_text(encoding="utf-8")
    rank = next(rank for rank, code in enumerate(codes) if code not in (None, 0))
    return f"rank {rank} died with exit code {codes[rank]} before reporting an error"


def _rank_main(
    function: Callable[..., Any], args: tuple[Any, ...], rank: int, world_size: int, folder: Path, timeout_s: float
) -> None:
    """One rank: join the group, run ``function``, save its result or the error."""
    torch.set_num_threads(1)  # the ranks share the machine's cores: one thread each runs steadily
    # Gloo binds to the address the host name resolves to; sandboxes often have none but loopback.
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo0" if sys.platform == "darwin" else "lo")
    try:
        dist.init_process_group(
            "gloo", init_method=f"file://{folder / 'store'}", rank=rank, world_size=world_size,
            timeout=timedelta(seconds=timeout_s),
        )  # fmt: skip
        result = function(rank, world_size, *args)
        dist.destroy_process_group()
        torch.save(result, folder / f"partial{rank}.pt")
        (folder / f"partial{rank}.pt").rename(folder / f"result{rank}.pt")
    except BaseException as error:  # the parent reports it; leave without waiting for the other ranks
        (folder / f"error{rank}.txt").write_text(f"rank {rank}: {_describe(error)}", encoding="utf-8")
        sys.stderr.flush()
        os._exit(1)


def _describe(error: BaseException) -> str:
    """``Type: message (file:line)``, where the line is the innermost frame that raised."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(error).__name__}: {error}{where}"
