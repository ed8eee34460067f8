"""The training API over HTTP (FastAPI); ``lmcourse scaling serve`` runs it under uvicorn.

Every endpoint but ``/v1/info`` needs ``Authorization: Bearer <key>``. Errors are a JSON object
``{"error": "<one sentence>"}`` with a 4xx status: 401 unknown key, 403 not an instructor, 404
no such experiment, 409 over budget, 413 body too large, 422 invalid config. Client input never
causes a 500; a 500 is a bug, logged with its traceback.

| method | path | what |
|---|---|---|
| GET | /v1/info | the challenge's public rules (target compute, largest run, context length) |
| POST | /v1/experiments | submit a config: 201 charged and started, 200 already submitted (not charged) |
| GET | /v1/experiments | your experiments (``?status=completed``) |
| GET | /v1/experiments/{id} | one experiment: status, losses, failure reason |
| GET | /v1/budget | total, spent, remaining |
| PUT | /v1/prediction | record the final prediction (last write wins) |
| GET | /v1/prediction | your recorded prediction |
| GET | /v1/instructor/students | every student (instructor key) |
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import ExperimentConfig, FinalPrediction
from .schemas import (
    BudgetView,
    ErrorView,
    ExperimentView,
    InfoView,
    PredictionView,
    Status,
    StudentOverview,
    SubmitResult,
)
from .service import Caller, ScalingService, ServiceError, Unauthorized

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_ID = 2**62  # ids beyond this would overflow a 64-bit column before the lookup could say "not found"
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorView} for code in (401, 403, 404, 409, 413, 422)}


def get_service(request: Request) -> ScalingService:
    service: ScalingService = request.app.state.service
    return service


def get_caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Caller:
    """The owner of the request's API key (``Authorization: Bearer <key>``)."""
    if not authorization:
        raise Unauthorized("missing API key: send the header 'Authorization: Bearer <key>'")
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("the Authorization header must read 'Bearer <key>'")
    return get_service(request).authenticate(key.strip())


Service = Annotated[ScalingService, Depends(get_service)]
Me = Annotated[Caller, Depends(get_caller)]
router = APIRouter(prefix="/v1")


@router.get("/info")
def info(service: Service) -> InfoView:
    return service.info()


@router.post("/experiments", status_code=201)
def submit(config: ExperimentConfig, me: Me, service: Service, response: Response) -> SubmitResult:
    result = service.submit(me, config)
    if not result.charged:
        response.status_code = 200
    return result


@router.get("/experiments")
def experiments(me: Me, service: Service, status: Annotated[Status | None, Query()] = None) -> list[ExperimentView]:
    return service.experiments(me, status)


@router.get("/experiments/{experiment_id}")
def experiment(me: Me, service: Service, experiment_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> ExperimentView:
    return service.experiment(me, experiment_id)


@router.get("/budget")
def budget(me: Me, service: Service) -> BudgetView:
    return service.budget(me)


@router.put("/prediction")
def record_prediction(prediction: FinalPrediction, me: Me, service: Service) -> PredictionView:
    return service.record_prediction(me, prediction)


@router.get("/prediction")
def prediction(me: Me, service: Service) -> PredictionView:
    return service.prediction(me)


@router.get("/instructor/students")
def students(me: Me, service: Service) -> list[StudentOverview]:
    return service.overview(me)


def create_app(service: ScalingService) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if resumed := service.resume():
            log.info("queued %d experiments again that a stopped server had left unfinished", resumed)
        yield
        service.close()

    app = FastAPI(
        title="lmcourse scaling API",
        description="Submit training runs under a compute budget; record a final prediction.",
        version="1",
        lifespan=lifespan,
        responses=ERRORS,
    )
    app.state.service = service
    app.include_router(router)
    _install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    return app


class BodyLimit:
    """Reads a request's body before the app does and refuses one over ``limit`` bytes with a JSON 413.

    A declared Content-Length is checked at once; a chunked body is counted as it arrives, so
    neither way can a client make the server hold more than ``limit`` bytes of it.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = _error(413, f"the request body is larger than {self.limit // 1024} KiB")
        await response(scope, receive, send)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, describe_validation_errors(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"{request.url.path} is not an endpoint of this API"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        elif exc.status_code == 400 and str(exc.detail).startswith("There was an error parsing the body"):
            message = "the request body could not be read as JSON (it is malformed or nested too deeply)"
        else:
            message = str(exc.detail).rstrip(".")
        return _error(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, "internal server error")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    sentence = message if message.endswith(".") else message + "."
    return JSONResponse({"error": sentence}, status_code=status, headers=headers)


def describe_validation_errors(errors: Any) -> str:
    """One sentence for the first problem of a request (the field, what was wrong, what came)."""
    errors = list(errors)
    if not errors:
        return "the request is invalid"
    first = errors[0]
    where = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "header")]
    field = ".".join(where)
    kind = first.get("type", "")
    if kind == "json_invalid":
        sentence = f"the request body is not valid JSON ({first.get('ctx', {}).get('error', 'parse error')})"
    elif kind == "missing" and not field:
        sentence = "the request needs a JSON object as its body"
    elif kind == "missing":
        sentence = f"field '{field}' is required"
    elif kind == "extra_forbidden":
        sentence = f"unknown field '{field}'"
    else:
        message = str(first.get("msg", "is invalid")).removeprefix("Value error, ")
        message = message[:1].lower() + message[1:]
        got = repr(first.get("input"))
        got = got if len(got) <= 40 else got[:37] + "..."
        sentence = f"{field + ': ' if field else ''}{message} (got {got})"
    more = len(errors) - 1
    return sentence + (f"; and {more} more problem{'s' if more > 1 else ''}" if more else "")
