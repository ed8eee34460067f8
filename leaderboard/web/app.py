"""``create_app``: the store, the evaluator, the routes, the static files and the error responses.

Errors answer in the language of the route: ``{"error": "<one sentence>"}`` under ``/api/``, an
HTML page elsewhere, with the same sentence either way.
"""

from __future__ import annotations

import logging

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...grader.errors import LmcourseError
from ..checkpoint import SubmissionRejected
from ..curves import EmptyLog
from ..store import InvalidToken, QuotaExceeded, Store, UnknownBoard, UnknownEntry
from . import api, pages
from .context import Evaluator, Site

log = logging.getLogger(__name__)

# The status of each library error; any other LmcourseError is bad input (400).
STATUS_OF: dict[type[LmcourseError], int] = {
    UnknownBoard: 404,
    UnknownEntry: 404,
    EmptyLog: 404,
    InvalidToken: 401,
    QuotaExceeded: 429,
    SubmissionRejected: 400,
}
REASONS = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
           413: "Upload too large", 429: "Too many submissions", 500: "Server error"}


def create_app(
    store: Store, evaluator: Evaluator, *, title: str | None = None, concurrent_evaluations: int = 1
) -> FastAPI:
    """The leaderboard app over ``store``; ``evaluator`` scores a checkpoint against a board's rules.

    At most ``concurrent_evaluations`` evaluations run at once (each may hold a model and its
    activations in memory); further submissions wait their turn.
    """
    if concurrent_evaluations < 1:
        raise LmcourseError(f"concurrent_evaluations must be at least 1, not {concurrent_evaluations}.")
    # The OpenAPI schema, but no Swagger page: it would load its JavaScript from a CDN.
    app = FastAPI(title=title or "Leaderboards", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.site = Site(store, evaluator, title or "Leaderboards", anyio.CapacityLimiter(concurrent_evaluations))
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.templates_dir() / "static"), name="static")
    app.add_exception_handler(LmcourseError, _library_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _server_error)
    return app


def error_response(request: Request, status: int, message: str) -> Response:
    """``message`` as JSON for the API, as a page for a browser."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if _is_api(request):
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    response = pages.render(request, "error.html.j2", status_code=status, status=status,
                            reason=REASONS.get(status, "Error"), message=message)
    if headers:
        response.headers.update(headers)
    return response


async def _library_error(request: Request, exc: Exception) -> Response:
    status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), 400)
    return error_response(request, status, str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404 and exc.detail == "Not Found":  # no route matched: say what was asked for
        return error_response(request, 404, f"there is no page at {request.url.path}.")
    if exc.status_code == 405:
        return error_response(request, 405, f"{request.method} is not allowed on {request.url.path}.")
    return error_response(request, exc.status_code, str(exc.detail))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"][1:]) or first["loc"][0]
    if first["loc"][0] == "path":  # /entries/abc names nothing, like /entries/999999
        return error_response(request, 404, f"there is no page at {request.url.path}.")
    return error_response(request, 400, f"{where}: {first['msg']}.")


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500, "the server failed on this request; the staff have the details in its log.")


def _is_api(request: Request) -> bool:
    path = request.scope["path"]
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return path == "/api" or path.startswith("/api/")

