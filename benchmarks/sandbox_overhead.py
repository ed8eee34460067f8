"""Sandbox overhead: a unit's whole test suite graded through each sandbox ÷ bare pytest.

Bare: pytest runs the staff tree (reference + public + hidden tests) in-process, as `handout
verify` does. Sandboxed: the same reference, submitted as a student would, graded by
`lmcourse grade` (trusted pytest + a sandboxed worker per test process). Same machine, same
worker count, in --repeat rounds of one run each, medians. Goal: ratio <= 1.3.

The grader runs its pytest session and its workers with OpenMP threads that sleep when idle
(``PASSIVE_OPENMP``, see sandbox/base.py); bare pytest as `handout verify` runs it does not.
That setting alone makes bare ~10% faster too, so a second bare row runs with it, and the ratio
against that row is the cost of the sandbox itself.

    python benchmarks/sandbox_overhead.py --unit basics --repeat 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from lmcourse.grader.course import Course
from lmcourse.grader.grading.engine import grade_one
from lmcourse.grader.handout.build import build
from lmcourse.grader.runner import run_pytest
from lmcourse.grader.sandbox.base import PASSIVE_OPENMP
from lmcourse.grader.sandbox.registry import get_sandbox

REPO = Path(__file__).resolve().parent.parent


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--course", type=Path, default=REPO)
    parser.add_argument("--unit", default="basics")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sandboxes", nargs="+", default=["local", "docker"])
    args = parser.parse_args()
    unit = Course.load(args.course).unit(args.unit)
    with tempfile.TemporaryDirectory() as tmp:
        staff = build(unit, Path(tmp), solutions=True).folder
        paths = [p for p in ("tests/public", "tests/hidden") if (staff / p).is_dir()]

        def bare(env: dict[str, str] | None = None) -> None:
            run = run_pytest(staff, paths, workers=args.workers, env=env)
            assert run.returncode == 0, run.output[-2000:]

        def sandboxed(name: str) -> None:
            graded = grade_one(staff, unit, Path(tmp) / f"out-{name}", sandbox=name, workers=args.workers)
            assert graded.scored.score == graded.scored.possible, graded.results.output

        for name in args.sandboxes:
            get_sandbox(name)  # an unavailable backend stops the run before any timing
        runs = {"bare": bare, "bare-passive": lambda: bare(PASSIVE_OPENMP)}
        runs |= {name: (lambda name=name: sandboxed(name)) for name in args.sandboxes}
        results: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeat):  # in rounds, so a change in the machine's load hits every row alike
            for name, run in runs.items():
                results[name].append(timed(run))
    medians = {k: statistics.median(v) for k, v in results.items()}
    for name in args.sandboxes:
        ratios = "   ".join(f"÷ {b} {medians[b]:6.2f} s = {medians[name] / medians[b]:.2f}" for b in ("bare", "bare-passive"))
        print(f"{name:>7}: {medians[name]:6.2f} s   {ratios}")
    print(json.dumps({"unit": args.unit, "workers": args.workers, "runs": results, "median": medians}))


if __name__ == "__main__":
    main()
