"""The JSON API: boards and rankings, entries, the submission endpoint and the staff switches.

Every error is ``{"error": "<one sentence>"}`` with a status that says what went wrong (see
``app.STATUS_OF``). Reading routes are public; a staff token adds hidden entries and student ids.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from functools import partial
from typing import Any

import anyio
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StrictBool

from ..checkpoint import submission_from_bytes
from ..store import EntryView, StudentView
from .context import Site, bearer_token, entry_json, is_staff, site_of, viewer, visible_entry
from .uploads import CODE_PREFIX, Upload, read_upload

router = APIRouter(prefix="/api")


class Switch(BaseModel):
    """The body of a staff switch: ``{"value": true}`` or ``{"value": false}``."""

    model_config = ConfigDict(extra="forbid")
    value: StrictBool


@router.get("/boards")
def list_boards(request: Request) -> list[dict[str, Any]]:
    return [
        {"name": board.name, "unit": board.unit, "entries": board.entries, "rules": board.rules.model_dump(mode="json")}
        for board in site_of(request).store.boards()
    ]


@router.get("/boards/{board}")
def ranking(board: str, request: Request) -> dict[str, Any]:
    staff = is_staff(viewer(request))
    store = site_of(request).store
    view = store.board(board)
    entries = store.ranking(board, include_hidden=staff)
    return {
        "board": view.name,
        "unit": view.unit,
        "rules": view.rules.model_dump(mode="json"),
        "entries": [entry_json(entry, private=staff) for entry in entries],
    }


@router.get("/entries/{entry_id}")
def entry(entry_id: int, request: Request) -> dict[str, Any]:
    who = viewer(request)
    detail = visible_entry(site_of(request), entry_id, who)
    private = is_staff(who) or (who is not None and who.student_id == detail.entry.student_id)
    return entry_json(detail.entry, private=private) | {
        "config": detail.config,
        "content_hash": detail.entry.content_hash,
        "tokens": detail.tokens,
        "bytes": detail.bytes,
        "seconds": detail.seconds,
        "device": detail.device,
        "has_log": detail.log is not None,
    }


@router.post("/boards/{board}/submissions", status_code=201)
async def submit(board: str, request: Request) -> JSONResponse:
    """Evaluate and store a checkpoint: 201 with the new entry, 200 with the old one for identical weights."""
    site = site_of(request)
    token = bearer_token(request)
    if token is None:
        raise HTTPException(401, "submitting needs your token: send 'Authorization: Bearer <token>'.")
    # Cheap refusals first, before a large body is read.
    rules = (await run_in_threadpool(site.store.board, board)).rules
    await run_in_threadpool(site.store.authenticate, token)
    upload = await read_upload(request, board=board, max_checkpoint_mb=rules.max_checkpoint_mb)
    try:
        work = partial(_evaluate_and_store, site, board, token, upload)
        entry, created = await anyio.to_thread.run_sync(work, limiter=site.evaluation_slots)
    finally:
        upload.close()
    return JSONResponse(entry_json(entry, private=True), status_code=201 if created else 200)


@router.post("/entries/{entry_id}/verify")
def verify(entry_id: int, switch: Switch, request: Request) -> dict[str, Any]:
    """Staff mark an entry verified (after re-running custom code) or take the mark back."""
    staff = _staff(request)
    return entry_json(site_of(request).store.set_verified(entry_id, switch.value, by=staff.student_id), private=True)


@router.post("/entries/{entry_id}/hide")
def hide(entry_id: int, switch: Switch, request: Request) -> dict[str, Any]:
    """Staff hide an entry from every public page and response, or show it again."""
    staff = _staff(request)
    return entry_json(site_of(request).store.set_hidden(entry_id, switch.value, by=staff.student_id), private=True)


def _staff(request: Request) -> StudentView:
    who = viewer(request, required=True)
    if who is None or not who.staff:
        raise HTTPException(403, "only staff may verify or hide entries.")
    return who


def _evaluate_and_store(site: Site, board: str, token: str, upload: Upload) -> tuple[EntryView, bool]:
    """Runs in a worker thread: parse the files, evaluate (inside the store), and tell new from duplicate."""
    parts = upload.read()
    files = submission_from_bytes(
        parts["weights"], parts["config"], vocab=parts.get("vocab"), merges=parts.get("merges"), log=parts.get("log")
    )
    code = {name.removeprefix(CODE_PREFIX): data for name, data in parts.items() if name.startswith(CODE_PREFIX)}
    if code:  # checked with the rest of the submission: refused unless the board accepts model code
        files = dataclasses.replace(files, code=code)
    now = datetime.now(UTC)
    entry = site.store.submit(board, token, files, site.evaluator, now=now)
    # For weights it has seen the store hands back the existing entry, stamped with its earlier time.
    return entry, entry.submitted_at == now
