"""``lmcourse bench``: time a submission's kernels on this machine's GPU against the staff's.

:mod:`.cli` adds this command at its end, after defining what this module imports from it. Exit
codes as everywhere: 0 every case earned all its points, 1 some case lost points or showed an
anomaly, 2 bad input. Without a CUDA GPU it says so in one sentence and exits 0: nothing to time.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import console
from .cli import _course, json_option
from .errors import LmcourseError

if TYPE_CHECKING:
    from .bench.verdict import BenchResult

FOUND_FAILURES = 1
NO_GPU = "no CUDA GPU is visible: lmcourse bench times kernels on a GPU and has nothing to do here"


@click.command("bench")
@click.argument("submission", type=click.Path(exists=True, path_type=Path))
@click.option("--unit", "unit_name", required=True, help="The unit whose benchmarks to run.")
@click.option("--problem", help="Only this benchmark problem (default: every one of the unit).")
@click.option("--iters", type=click.IntRange(min=5), help="Timed iterations per case (default: the unit's).")
@click.option(
    "--sandbox",
    type=click.Choice(["docker", "local", "none"]),
    default="docker",
    show_default=True,
    help="Where the submission runs; none: unsandboxed, for your own code only.",
)
@json_option
@click.pass_context
def bench(
    ctx: click.Context, submission: Path, unit_name: str, problem: str | None, iters: int | None, sandbox: str,
    as_json: bool,
) -> None:
    """Time SUBMISSION (a zip, a tar or a folder) on this GPU against the staff implementation.

    Each case is checked for correctness on fresh inputs before, during and after timing; the
    score is the ratio of median times, measured in the same run. See docs/bench.md.
    """
    from .bench.harness import cuda_available, prepare_submission, run_benchmarks
    from .bench.spec import unit_benchmarks

    unit = _course(ctx).unit(unit_name)
    if not cuda_available():
        if as_json:
            console.emit_json({"skipped": True, "reason": NO_GPU})
        else:
            console.out.print(NO_GPU, markup=False)
        return
    if not unit_benchmarks(unit.config, problem):
        raise LmcourseError(f"unit '{unit.name}' declares no benchmarks (a 'benchmarks:' list in its unit.yaml).")
    with tempfile.TemporaryDirectory(prefix="lmcourse-bench-submission-") as work:
        code = prepare_submission(unit, submission, Path(work))
        results = run_benchmarks(unit, code, sandbox=sandbox, problem=problem, iters=iters)
    if as_json:
        console.emit_json([r.model_dump(mode="json") for r in results])
    else:
        for result in results:
            _print(result)
    lost = any(c.fraction < 1.0 or c.anomalies for r in results for c in r.cases)
    if lost:
        ctx.exit(FOUND_FAILURES)


def _print(result: BenchResult) -> None:
    from rich.table import Table
    from rich.text import Text

    from .bench.verdict import SUBMISSION

    trusted = [name for name in result.cases[0].times if name != SUBMISSION] if result.cases else []
    title = f"{result.problem}: {round(result.earned, 2):g}/{result.points:g} points, ratio to {result.compare_to}"
    table = Table(title=title + (f" on {result.device}" if result.device else ""), title_justify="left")
    columns = ("case", "submission ms", "IQR ms", *(f"{name} ms" for name in trusted), "ratio", "TFLOP/s", "points", "verdict")
    for col in columns:
        table.add_column(col, justify="left" if col in ("case", "verdict") else "right")
    colour = {"full": "green", "partial": "yellow"}
    for case in result.cases:
        ours = case.times.get(SUBMISSION)
        table.add_row(
            f"{case.name}\n[dim]{case.label}[/]",
            f"{ours.median_ms:.3f}" if ours else "—",
            f"{ours.q1_ms:.3f}-{ours.q3_ms:.3f}" if ours else "—",
            *(f"{case.times[n].median_ms:.3f}" if n in case.times else "—" for n in trusted),
            f"{case.ratio:.2f}" if case.ratio is not None else "—",
            f"{case.tflops:.0f}" if case.tflops is not None else "—",
            f"{round(case.earned, 2):g}/{round(case.points, 2):g}",
            f"[{colour.get(case.verdict, 'red')}]{case.verdict}[/]",
        )
    console.out.print(table)
    for case in result.cases:  # reasons may quote the student's exception: never read as markup
        for line in case.reasons:
            console.out.print(Text(f"  {case.name}: {line}"))
        for line in case.anomalies:
            console.out.print(Text.assemble("  ", ("anomaly", "bold red"), f" {case.name}: {line}"))
