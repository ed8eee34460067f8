"""``lmcourse leaderboard``: boards, students, submissions, the web server and the README table.

Staff work on the database directly (``--db URL`` or ``$LMCOURSE_LEADERBOARD_DB``; default
``./leaderboard.db``); students talk to a served board (``--server URL --token T``, or
``$LMCOURSE_LEADERBOARD_SERVER`` and ``$LMCOURSE_LEADERBOARD_TOKEN``). A ``--db`` on the command line
wins over a server named in the environment. The student side needs only ``httpx``: the database
and evaluator modules are imported by the verbs that use them.

:mod:`.cli` adds this group at its end, after defining what this module imports from it.
"""

from __future__ import annotations

import datetime as dt
import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape
from rich.table import Table

from . import console
from .cli import LmcourseGroup, _course, json_option
from .errors import LmcourseError

if TYPE_CHECKING:
    from lmcourse.leaderboard.store import Store

DB_ENV = "LMCOURSE_LEADERBOARD_DB"  # as lmcourse.leaderboard.db (not imported: the server side is an extra)
SERVER_ENV = "LMCOURSE_LEADERBOARD_SERVER"
TOKEN_ENV = "LMCOURSE_LEADERBOARD_TOKEN"

db_option = click.option(
    "--db", metavar="URL", envvar=DB_ENV,
    help=f"Database: sqlite:///PATH or postgresql://USER@HOST/DB. Default: ${DB_ENV}, else ./leaderboard.db.",
)
server_option = click.option(
    "--server", metavar="URL", envvar=SERVER_ENV,
    help=f"A served leaderboard, e.g. https://lb.example.edu (or ${SERVER_ENV}).",
)
token_option = click.option(
    "--token", metavar="TOKEN", envvar=TOKEN_ENV, help=f"Your token from the staff (or ${TOKEN_ENV})."
)
data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path),
    help="Folder of prepared datasets (`lmcourse data prepare`) the held-out text is read from.",
)
device_option = click.option(
    "--device", default="auto", show_default=True, help="Where the evaluator runs: auto (a GPU if present), cpu, cuda."
)


@click.group(cls=LmcourseGroup)
def leaderboard() -> None:
    """Perplexity leaderboards: submit a trained model, see the ranking, run the board.

    \b
    Staff:     lmcourse leaderboard boards add basics
               lmcourse leaderboard students add jdoe "Jane Doe"      (prints her token)
               lmcourse leaderboard serve --port 8000
               lmcourse leaderboard export basics --out LEADERBOARD.md
    Students:  lmcourse leaderboard submit basics runs/final --server URL --token TOKEN
               lmcourse leaderboard show basics --server URL
    """


# ------------------------------------------------------------------------------- submissions


@leaderboard.command()
@click.argument("board")
@click.argument("run_dir", metavar="RUN", type=click.Path(file_okay=False, path_type=Path))
@server_option
@token_option
@db_option
@data_dir_option
@device_option
@json_option
@click.pass_context
def submit(ctx: click.Context, board: str, run_dir: Path, server: str | None, token: str | None, db: str | None,
           data_dir: Path | None, device: str, as_json: bool) -> None:
    """Submit the model of training run RUN to BOARD and print its entry.

    RUN is the folder a training run writes: model.safetensors and model_config.json, and, if
    present, vocab.json + merges.txt (your tokenizer) and log.jsonl (for the learning curve).
    Identical weights sent again give back the same entry and do not count against the quota.

    \b
    Students:  lmcourse leaderboard submit basics runs/final --server https://lb.example.edu --token TOKEN
    Staff (evaluates here, writes the database directly):
               lmcourse leaderboard submit basics runs/final --db sqlite:///leaderboard.db --token TOKEN
    """
    if not token:
        raise LmcourseError(f"submitting needs a token: pass --token or set ${TOKEN_ENV}.")
    if _uses_server(ctx, server):
        from lmcourse.leaderboard.client import LeaderboardClient, read_run

        with LeaderboardClient(server, token) as client:  # type: ignore[arg-type]
            entry, created = client.submit(board, read_run(run_dir))
    else:
        from lmcourse.leaderboard.checkpoint import read_submission
        from lmcourse.leaderboard.custom import evaluate_any

        course = _course(ctx)
        files = read_submission(run_dir)
        now = dt.datetime.now(dt.UTC)
        with _store(db) as store:
            view = store.submit(
                board, token, files,
                lambda sub, rules: evaluate_any(sub, rules, course, data_dir=data_dir, device=device),
                now=now,
            )
        entry, created = _entry_json(view), view.submitted_at == now
    if as_json:
        console.emit_json({**entry, "new": created})
        return
    again = "" if created else " (these weights were already on the board: nothing new was stored)"
    console.out.print(f"[green]entry {entry['id']}[/] on {board}{again}")
    console.out.print(_ranking_table(board, [entry]))


@leaderboard.command()
@click.argument("board")
@server_option
@token_option
@db_option
@click.option("--all", "include_hidden", is_flag=True, help="Staff, with --db: list hidden entries too.")
@json_option
@click.pass_context
def show(ctx: click.Context, board: str, server: str | None, token: str | None, db: str | None,
         include_hidden: bool, as_json: bool) -> None:
    """Print BOARD's ranking: each student's best entry, lowest bits per byte first.

    \b
    lmcourse leaderboard show basics --server https://lb.example.edu
    lmcourse leaderboard show basics --db postgresql://lb@dbhost/leaderboard --all --json
    """
    if _uses_server(ctx, server):
        from lmcourse.leaderboard.client import LeaderboardClient

        with LeaderboardClient(server, token) as client:  # type: ignore[arg-type]
            entries = client.ranking(board)["entries"]
    else:
        with _store(db) as store:
            entries = [_entry_json(e) for e in store.ranking(board, include_hidden=include_hidden)]
    if as_json:
        console.emit_json({"board": board, "entries": entries})
    elif entries:
        console.out.print(_ranking_table(board, entries))
    else:
        console.out.print(f"board '{board}' has no entries yet.")


@leaderboard.command()
@click.argument("board")
@db_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the table to this file.")
@json_option
def export(board: str, db: str | None, out: Path | None, as_json: bool) -> None:
    """Print BOARD's ranking as the Markdown table a course keeps in its README.

    \b
    | Rank | Name | bpb | Loss | Perplexity | Params | Date | Verified |
    lmcourse leaderboard export basics --out LEADERBOARD.md
    """
    with _store(db) as store:
        table = store.export_markdown(board)
    if out is not None:
        out.write_text(table, encoding="utf-8")
    if as_json:
        console.emit_json({"board": board, "markdown": table, "out": None if out is None else str(out)})
    elif out is not None:
        console.out.print(f"[green]wrote[/] {out}")
    else:
        click.echo(table, nl=False)  # verbatim: rich would re-wrap and colour it


# ------------------------------------------------------------------------------------- staff


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no $USER and no passwd entry, as in some containers
        return "staff"


def _switch_options(command: Any) -> Any:
    """The options ``verify`` and ``hide`` share (``verify --top`` names no ENTRY: it checks for one itself)."""
    for option in reversed((
        click.argument("entries", metavar="ENTRY...", nargs=-1, type=int, required=command.__name__ == "hide"),
        click.option("--undo", is_flag=True, help="Take the mark back."),
        click.option("--by", default=_login, show_default="your login",
                     help="Who made the change, as recorded with --db (a server records the token's owner)."),
        server_option, token_option, db_option, json_option, click.pass_context,
    )):
        command = option(command)
    return command


@leaderboard.command()
@_switch_options
@click.option("--top", type=click.IntRange(1), metavar="K", help="Re-run BOARD's K best entries instead of naming them.")
@click.option("--board", help="With --top: the board.")
@click.option("--all", "every", is_flag=True, help="With --top: re-run verified entries too.")
@click.option("--runs", type=click.Path(file_okay=False, path_type=Path),
              help="With --top: the entries' files, as RUNS/<content hash>/ or RUNS/<entry id>/.")
@click.option("--executor", type=click.Choice(["inline", "slurm"]), default="inline", show_default=True,
              help="With --top: re-run here, or one Slurm job per entry.")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=Path(".lmcourse-verify"),
              show_default=True, help="With --executor slurm: a folder the nodes share, for scripts, logs, results.")
@click.option("--sandbox", default="local", show_default=True, help="With --top: the sandbox custom code runs in.")
@data_dir_option
@device_option
def verify(ctx: click.Context, entries: tuple[int, ...], undo: bool, by: str, server: str | None, token: str | None,
           db: str | None, as_json: bool, top: int | None, board: str | None, every: bool, runs: Path | None,
           executor: str, work: Path, sandbox: str, data_dir: Path | None, device: str) -> None:
    """Mark ENTRY... verified: staff re-ran the model and got its numbers (--undo withdraws the mark).

    Entries scored by the trusted evaluator start verified; entries of custom code start unverified.
    --top K re-runs BOARD's K best unverified entries itself (custom code in the sandbox) and marks
    those whose loss matches within 1e-4 relative; any mismatch or failure exits 1.

    \b
    lmcourse leaderboard verify 12 15
    lmcourse leaderboard verify 12 --undo --server https://lb.example.edu --token STAFF_TOKEN
    lmcourse leaderboard verify --top 10 --board basics --runs submissions/ --executor slurm
    """
    if top is None:
        if not entries:
            raise LmcourseError("name the entries to verify, or pass --top K --board BOARD --runs DIR.")
        _flip(ctx, "verified", entries, not undo, by, server, token, db, as_json)
        return
    if entries or undo or board is None or runs is None:
        raise LmcourseError("--top K needs --board and --runs, and takes no ENTRY and no --undo.")
    _verify_top(ctx, top, board, every, runs, executor, work, sandbox, data_dir, device, by, db, as_json)


def _verify_top(ctx: click.Context, top: int, board: str, every: bool, runs: Path, executor: str, work: Path,
                sandbox: str, data_dir: Path | None, device: str, by: str, db: str | None, as_json: bool) -> None:
    """Re-run the best entries (see lmcourse.leaderboard.verify_top) and mark the ones that match."""
    from functools import partial

    from lmcourse.leaderboard import verify_top
    from lmcourse.leaderboard.db import database_url
    from lmcourse.leaderboard.reverify import reevaluate

    from .config import SlurmConfig
    from .slurm import minutes, resources

    course = _course(ctx)
    with _store(db) as store:
        chosen = verify_top.select(store, board, top, every=every)
        if executor == "inline":
            job = partial(reevaluate, store, runs=runs, course=course, data_dir=data_dir, device=device,
                          sandbox=sandbox)
            outcomes = verify_top.run_inline(chosen, lambda entry_id: job(entry_id))
        else:
            rules = store.board(board).rules
            asked = resources(course.config.slurm or SlurmConfig(), time_limit=minutes(rules.max_eval_seconds + 300),
                              mem_mb=8192, cpus=2)
            argv = partial(verify_top.reverify_argv, db=database_url(db), runs=runs, course=course.root,
                           data_dir=data_dir, device=device, sandbox=sandbox)
            outcomes = verify_top.run_slurm(chosen, argv, work.resolve(), asked)
        verify_top.settle(store, outcomes, by=by)
    report = [{"id": o.entry.id, "name": o.entry.display_name, "stored_loss": o.entry.loss, "loss": o.loss,
               "verified": o.matched or o.entry.verified, "message": o.describe()} for o in outcomes]
    if as_json:
        console.emit_json({"board": board, "tolerance": verify_top.RELATIVE_TOLERANCE, "entries": report})
    elif not report:
        console.out.print(f"the {top} best entries of {board} are verified already.")
    for line in [] if as_json else report:
        mark = "[green]verified[/]" if line["verified"] else "[red]not verified[/]"
        console.out.print(f"entry {line['id']} ({escape(line['name'])}): {mark}: {escape(line['message'])}")
    if any(o.loss is None or not o.matched for o in outcomes):
        ctx.exit(1)


@leaderboard.command()
@_switch_options
def hide(ctx: click.Context, entries: tuple[int, ...], undo: bool, by: str, server: str | None, token: str | None,
         db: str | None, as_json: bool) -> None:
    """Hide ENTRY... from the public ranking (--undo shows it again); nothing is deleted.

    \b
    lmcourse leaderboard hide 12
    lmcourse leaderboard hide 12 --undo --server https://lb.example.edu --token STAFF_TOKEN
    """
    _flip(ctx, "hidden", entries, not undo, by, server, token, db, as_json)


def _flip(ctx: click.Context, flag: str, entries: tuple[int, ...], value: bool, by: str, server: str | None,
          token: str | None, db: str | None, as_json: bool) -> None:
    """Set ``flag`` (verified or hidden) of each entry, in the database or through a server."""
    if _uses_server(ctx, server):
        from lmcourse.leaderboard.client import LeaderboardClient

        with LeaderboardClient(server, token) as client:  # type: ignore[arg-type]
            send = client.verify if flag == "verified" else client.hide
            done = [send(entry_id, value) for entry_id in entries]
    else:
        with _store(db) as store:
            write = store.set_verified if flag == "verified" else store.set_hidden
            done = [_entry_json(write(entry_id, value, by=by)) for entry_id in entries]
    if as_json:
        console.emit_json(done)
        return
    for entry in done:
        console.out.print(f"entry {entry['id']} ({escape(entry['name'])}, {entry['bits_per_byte']:.4f} bpb): "
                          f"{flag if value else 'not ' + flag}")


@leaderboard.group()
def students() -> None:
    """Register students and staff, and issue their submission tokens.

    \b
    lmcourse leaderboard students add jdoe "Jane Doe"
    """


@students.command("add")
@click.argument("student_id", metavar="ID")
@click.argument("name")
@click.option("--staff", is_flag=True, help="Staff may verify and hide entries through the server.")
@db_option
@json_option
def students_add(student_id: str, name: str, staff: bool, db: str | None, as_json: bool) -> None:
    """Register student ID shown as NAME (or update them), and print a new token, once.

    Only a hash of the token is stored: hand it to the student now. Running this again for the
    same ID issues a fresh token and revokes the old one (for a lost or leaked token).

    \b
    lmcourse leaderboard students add jdoe "Jane Doe"
    lmcourse leaderboard students add ta1 "Course staff" --staff --json
    """
    with _store(db, create=True) as store:
        token = store.add_student(student_id, name, staff=staff)
    if as_json:
        console.emit_json({"student_id": student_id, "display_name": name, "staff": staff, "token": token})
        return
    console.out.print(f"{'staff' if staff else 'student'} {student_id} ({name}); token, shown only this once:")
    click.echo(token)


@leaderboard.group(invoke_without_command=True)
@db_option
@json_option
@click.pass_context
def boards(ctx: click.Context, db: str | None, as_json: bool) -> None:
    """List the boards; `boards add UNIT` creates one from a unit's unit.yaml.

    \b
    lmcourse leaderboard boards
    lmcourse leaderboard boards add basics
    """
    if ctx.invoked_subcommand is not None:
        return
    with _store(db) as store:
        views = store.boards()
    if as_json:
        console.emit_json([{"name": b.name, "unit": b.unit, "entries": b.entries,
                            "rules": b.rules.model_dump(mode="json")} for b in views])
        return
    if not views:
        console.out.print("no boards yet; create one with `lmcourse leaderboard boards add UNIT`.")
        return
    table = Table(title="leaderboards", title_justify="left")
    for column in ("board", "unit", "entries", "dataset", "context", "quota/day"):
        table.add_column(column)
    for b in views:
        table.add_row(b.name, b.unit, str(b.entries), f"{b.rules.dataset}/{b.rules.split}",
                      str(b.rules.context_length), str(b.rules.daily_quota))
    console.out.print(table)


@boards.command("add")
@click.argument("unit_name", metavar="UNIT")
@click.option("--name", help="The board's name (default: the unit's).")
@db_option
@json_option
@click.pass_context
def boards_add(ctx: click.Context, unit_name: str, name: str | None, db: str | None, as_json: bool) -> None:
    """Create the board of UNIT from the `leaderboard:` section of its unit.yaml.

    Adding it again with the same rules does nothing; with changed rules it is refused, since
    entries evaluated under different rules do not compare (give the new board a --name).

    \b
    lmcourse leaderboard boards add basics
    lmcourse leaderboard boards add basics --name basics-long-context
    """
    unit = _course(ctx).unit(unit_name)
    rules = unit.config.leaderboard
    if rules is None:
        raise LmcourseError(
            f"unit '{unit_name}' has no leaderboard: add a `leaderboard:` section to {unit.dir / 'unit.yaml'}."
        )
    with _store(db, create=True) as store:
        view = store.add_board(name or unit_name, unit_name, rules)
    if as_json:
        console.emit_json({"name": view.name, "unit": view.unit, "entries": view.entries,
                           "rules": view.rules.model_dump(mode="json")})
        return
    console.out.print(f"[green]board[/] {view.name} (unit {view.unit}): {view.rules.dataset}/{view.rules.split} at "
                      f"context {view.rules.context_length}, {view.rules.daily_quota} submissions a day")


# ------------------------------------------------------------------------------------ server


@leaderboard.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0: every one).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--title", help="The site's title (default: the course's name).")
@click.option("--root-path", default="", help="The path prefix behind a reverse proxy, e.g. /leaderboard.")
@click.option("--evaluations", type=click.IntRange(min=1), default=1, show_default=True,
              help="Evaluations run at once; more submissions wait their turn.")
@data_dir_option
@device_option
@json_option
@click.pass_context
def serve(ctx: click.Context, db: str | None, host: str, port: int, title: str | None, root_path: str,
          evaluations: int, data_dir: Path | None, device: str, as_json: bool) -> None:
    """Serve the boards: ranking pages, entry pages, the JSON API and the submission endpoint.

    Submissions are evaluated in this process by the trusted evaluator. Stop it with Ctrl-C.

    \b
    lmcourse leaderboard serve --port 8000
    lmcourse leaderboard serve --host 0.0.0.0 --db postgresql://lb@dbhost/leaderboard --device cuda
    """
    import uvicorn

    from lmcourse.leaderboard.custom import evaluate_any
    from lmcourse.leaderboard.web.app import create_app

    course = _course(ctx)
    with _store(db, create=True) as store:
        app = create_app(
            store,
            # Custom model code (boards that allow it) runs in the local sandbox; the rest in-process.
            lambda sub, rules: evaluate_any(sub, rules, course, data_dir=data_dir, device=device, sandbox="local"),
            title=title or f"{course.config.name} leaderboards",
            concurrent_evaluations=evaluations,
        )
        url = f"http://{host}:{port}{root_path}/"
        if as_json:  # one line a supervisor can read before the access log starts
            console.emit_json({"url": url, "db": store.safe_url})
        else:
            console.err.print(f"serving {store.safe_url} on {url}")
        uvicorn.run(app, host=host, port=port, root_path=root_path, log_level="warning" if as_json else "info")


# ----------------------------------------------------------------------------------- helpers


def _store(db: str | None, *, create: bool = False) -> Store:
    """The store at ``db``; a SQLite file that is not there is created only when ``create``."""
    from lmcourse.leaderboard.db import database_url, parse_url
    from lmcourse.leaderboard.store import Store

    url = parse_url(database_url(db))
    if not create and url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        if not Path(url.database).is_file():
            raise LmcourseError(f"there is no leaderboard database at {url.database}; pass --db, or create it with "
                                "`lmcourse leaderboard boards add UNIT`.")
    return Store.open(db)


def _uses_server(ctx: click.Context, server: str | None) -> bool:
    """Whether to talk to a server: --server given, unless --db was typed on the command line too."""
    if server is None:
        return False
    db_typed = ctx.get_parameter_source("db") is click.core.ParameterSource.COMMANDLINE
    server_typed = ctx.get_parameter_source("server") is click.core.ParameterSource.COMMANDLINE
    if db_typed and server_typed:
        raise LmcourseError("give --server (a served board) or --db (the database itself), not both.")
    return not db_typed


def _entry_json(entry: Any) -> dict[str, Any]:
    """An EntryView in the web API's shape, so --json reads the same from a database or a server."""
    return {
        "rank": entry.rank, "id": entry.id, "board": entry.board, "name": entry.display_name,
        "bits_per_byte": entry.bits_per_byte, "loss": entry.loss, "perplexity": entry.perplexity,
        "parameters": entry.parameters, "submitted_at": entry.submitted_at.isoformat(), "verified": entry.verified,
        "student_id": entry.student_id, "hidden": entry.hidden,
    }


def _ranking_table(board: str, entries: list[dict[str, Any]]) -> Table:
    from lmcourse.leaderboard.views import format_parameters

    table = Table(title=f"leaderboard {board}", title_justify="left")
    for column, justify in (("rank", "right"), ("entry", "right"), ("name", "left"), ("bpb", "right"),
                            ("loss", "right"), ("perplexity", "right"), ("params", "right"), ("date", "left"),
                            ("verified", "center")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for e in entries:
        name = escape(e["name"]) + (" [dim](hidden)[/]" if e.get("hidden") else "")
        table.add_row(
            "" if e["rank"] is None else str(e["rank"]), str(e["id"]), name, f"{e['bits_per_byte']:.4f}",
            f"{e['loss']:.4f}", f"{e['perplexity']:.2f}", format_parameters(e["parameters"]),
            str(e["submitted_at"])[:10], "✓" if e["verified"] else "",
        )
    return table
