"""The HTML pages, rendered on the server from ``templates/leaderboard/*.html.j2``.

Pages are public and never show hidden entries or student ids: a student appears by the
display name they chose.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from ..curves import learning_curve_png, read_log
from .context import site_of, utc, visible_entry

router = APIRouter()


def templates_dir() -> Path:
    """``templates/leaderboard`` in the repository, ``lmcourse/templates/leaderboard`` once installed."""
    from lmcourse import templates

    return Path(templates.__file__).resolve().parent / "leaderboard"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt field must fail loudly, not render as ""
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["thousands"] = lambda n: f"{n:,}"
    env.filters["isotime"] = lambda moment: utc(moment).isoformat()
    env.filters["day"] = lambda moment: utc(moment).strftime("%Y-%m-%d")
    env.filters["minute"] = lambda moment: utc(moment).strftime("%Y-%m-%d %H:%M UTC")
    return env


def render(request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page; ``base`` is the mount point behind a reverse proxy (``--root-path``), "" otherwise."""
    base = request.scope.get("root_path", "").rstrip("/")
    html = environment().get_template(template).render(base=base, site_title=site_of(request).title, **context)
    return HTMLResponse(html, status_code=status_code)


@router.get("/", response_class=HTMLResponse)
def boards_page(request: Request) -> HTMLResponse:
    return render(request, "boards.html.j2", boards=site_of(request).store.boards())


@router.get("/boards/{board}", response_class=HTMLResponse)
def board_page(board: str, request: Request) -> HTMLResponse:
    store = site_of(request).store
    view = store.board(board)
    return render(request, "board.html.j2", board=view, entries=store.ranking(board))


@router.get("/entries/{entry_id}", response_class=HTMLResponse)
def entry_page(entry_id: int, request: Request) -> HTMLResponse:
    detail = visible_entry(site_of(request), entry_id, None)
    curves = None if detail.log is None else read_log(detail.log)
    return render(request, "entry.html.j2", entry=detail.entry, detail=detail, config=detail.config, curves=curves)


@router.get("/entries/{entry_id}/curve.png")
def curve_png(entry_id: int, request: Request) -> Response:
    detail = visible_entry(site_of(request), entry_id, None)
    if detail.log is None:
        raise HTTPException(404, f"entry {entry_id} was submitted without a training log, so it has no curve.")
    png = learning_curve_png(detail.log)  # EmptyLog is a 404 too
    # An entry's log never changes; hiding it should take effect within minutes, not a day.
    return Response(png, media_type="image/png", headers={"Cache-Control": "public, max-age=300"})
