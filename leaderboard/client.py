"""A small HTTP client for a served leaderboard (``lmcourse leaderboard serve``).

It speaks the web app's JSON API: submit a run's files with a token, read a ranking or an entry,
and (staff) verify or hide an entry. The server's error sentence becomes a
:class:`LeaderboardRequestFailed` carrying the HTTP status. Only ``httpx`` is needed: a student's
machine does not install the server's database drivers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from ..grader.errors import LmcourseError

SERVER_ENV = "LMCOURSE_LEADERBOARD_SERVER"
TOKEN_ENV = "LMCOURSE_LEADERBOARD_TOKEN"
# The files of a training run (reference/basics/train.py writes them) under their upload part names.
RUN_FILES = {
    "weights": "model.safetensors",
    "config": "model_config.json",
    "vocab": "vocab.json",
    "merges": "merges.txt",
    "log": "log.jsonl",
}
REQUIRED = ("weights", "config")
# Model code, on boards that accept it: one part per file, named by its path, e.g. 'code/model.py'.
CODE_PREFIX = "code/"
# An evaluation may queue behind others and then take the board's max_eval_seconds.
SUBMIT_TIMEOUT = httpx.Timeout(10.0, read=3600.0)
TIMEOUT = httpx.Timeout(30.0)


class LeaderboardRequestFailed(LmcourseError):
    """The server answered with an error; the message is its sentence."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def read_run(folder: Path) -> dict[str, bytes]:
    """The submission files of a run folder, keyed by upload part; weights and config are required."""
    if not folder.is_dir():
        raise LmcourseError(f"{folder} is not a folder; pass the run folder that holds model.safetensors.")
    parts = {part: (folder / name).read_bytes() for part, name in RUN_FILES.items() if (folder / name).is_file()}
    # Model code, for boards that accept it: each file of code/ as a part named by its path.
    code = folder / "code"
    if code.is_dir():
        for path in sorted(p for p in code.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            parts[CODE_PREFIX + path.relative_to(code).as_posix()] = path.read_bytes()
    missing = [RUN_FILES[part] for part in REQUIRED if part not in parts]
    if missing:
        raise LmcourseError(
            f"{folder} has no {' or '.join(missing)}; a training run writes both at its end (see train.py)."
        )
    return parts


class LeaderboardClient:
    """``LeaderboardClient("https://lb.example.edu", token)``; use it as a context manager."""

    def __init__(self, server: str, token: str | None = None, *, transport: httpx.BaseTransport | None = None) -> None:
        self.server = server.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=TIMEOUT, transport=transport)

    def __enter__(self) -> LeaderboardClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def submit(self, board: str, parts: dict[str, bytes]) -> tuple[dict[str, Any], bool]:
        """Upload a run's files (see :func:`read_run`); returns the entry and whether it is new."""
        files = {part: (RUN_FILES.get(part, part.rpartition("/")[2]), data) for part, data in parts.items()}
        response = self._request("POST", f"/api/boards/{board}/submissions", files=files, timeout=SUBMIT_TIMEOUT)
        return response.json(), response.status_code == httpx.codes.CREATED

    def boards(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/boards").json()

    def ranking(self, board: str) -> dict[str, Any]:
        """``{"board", "unit", "rules", "entries": [...]}``; a staff token adds hidden entries."""
        return self._request("GET", f"/api/boards/{board}").json()

    def entry(self, entry_id: int) -> dict[str, Any]:
        return self._request("GET", f"/api/entries/{entry_id}").json()

    def verify(self, entry_id: int, value: bool = True) -> dict[str, Any]:
        return self._request("POST", f"/api/entries/{entry_id}/verify", json={"value": value}).json()

    def hide(self, entry_id: int, value: bool = True) -> dict[str, Any]:
        return self._request("POST", f"/api/entries/{entry_id}/hide", json={"value": value}).json()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise LmcourseError(f"cannot reach the leaderboard at {self.server}: {reason}.") from None
        if response.is_success:
            return response
        raise LeaderboardRequestFailed(_error_sentence(response), response.status_code)


def _error_sentence(response: httpx.Response) -> str:
    try:
        message = response.json().get("error")
    except (ValueError, AttributeError):
        message = None
    if not message:
        message = f"the server answered {response.status_code} {response.reason_phrase} to {response.request.url}."
    return str(message)
