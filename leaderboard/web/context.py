"""What every route shares: the store, the evaluator, the evaluation slots, and who is asking."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
from fastapi import HTTPException, Request

from ..store import EntryDetail, EntryView, Evaluator, Store, StudentView, UnknownEntry


@dataclass(frozen=True)
class Site:
    """The app's dependencies, kept on ``app.state.site``."""

    store: Store
    evaluator: Evaluator
    title: str
    # Evaluations run in worker threads, at most this many at once; the others wait on the
    # event loop without holding a thread, so a burst of uploads queues instead of piling up.
    evaluation_slots: anyio.CapacityLimiter


def site_of(request: Request) -> Site:
    return request.app.state.site


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, None without the header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "send the token as 'Authorization: Bearer <token>'.")
    return token.strip()


def viewer(request: Request, *, required: bool = False) -> StudentView | None:
    """The student or staff member whose token came with the request (blocking: call from a thread)."""
    token = bearer_token(request)
    if token is None:
        if required:
            raise HTTPException(401, "this endpoint needs a token: send 'Authorization: Bearer <token>'.")
        return None
    return site_of(request).store.authenticate(token)


def is_staff(who: StudentView | None) -> bool:
    return who is not None and who.staff


def visible_entry(site: Site, entry_id: int, who: StudentView | None) -> EntryDetail:
    """An entry's details; a hidden entry exists only for staff, so others get the 404 of a missing one."""
    detail = site.store.entry(entry_id)
    if detail.entry.hidden and not is_staff(who):
        raise UnknownEntry(f"there is no entry {entry_id}.")
    return detail


def utc(moment: datetime) -> datetime:
    """A timestamp in UTC; SQLite hands back naive datetimes, which the store writes in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def entry_json(entry: EntryView, *, private: bool = False) -> dict[str, Any]:
    """An entry as the API shows it; ``private`` adds the student id and the hidden flag (staff, or the owner)."""
    data: dict[str, Any] = {
        "rank": entry.rank,
        "id": entry.id,
        "board": entry.board,
        "name": entry.display_name,
        "bits_per_byte": entry.bits_per_byte,
        "loss": entry.loss,
        "perplexity": entry.perplexity,
        "parameters": entry.parameters,
        "submitted_at": utc(entry.submitted_at).isoformat(),
        "verified": entry.verified,
    }
    if private:
        data["student_id"] = entry.student_id
        data["hidden"] = entry.hidden
    return data
