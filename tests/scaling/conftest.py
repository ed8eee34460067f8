"""Scaling fixtures: a database on each backend, a service on it, and a live server on loopback.

``db_url`` runs a test twice: on SQLite (a file in the test's tmp folder) and on PostgreSQL (a
fresh database in the private cluster of ``tests/postgres.py``, started once per
session). Without PostgreSQL installed the PostgreSQL half fails, saying how to install it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import uvicorn

from lmcourse.grader.scaling.app import create_app
from lmcourse.grader.scaling.backends import Backend, SimulatedBackend
from lmcourse.grader.scaling.challenge import Challenge, load_challenge
from lmcourse.grader.scaling.law import HiddenLaw, load_law
from lmcourse.grader.scaling.server import open_database
from lmcourse.grader.scaling.service import ScalingService

from ..helpers import REPO

UNIT = REPO / "assignments" / "scaling"
LAW_PATH = UNIT / "tests" / "hidden" / "hidden_law.yaml"
CHALLENGE_PATH = UNIT / "fixtures" / "challenge.yaml"


@pytest.fixture(scope="session")
def law() -> HiddenLaw:
    return load_law(LAW_PATH)


@pytest.fixture(scope="session")
def challenge() -> Challenge:
    return load_challenge(CHALLENGE_PATH)


ServiceFactory = Callable[..., ScalingService]


@pytest.fixture
def make_service(db_url: str, law: HiddenLaw, challenge: Challenge) -> Iterator[ServiceFactory]:
    """``make_service(backend=None, **changes)``: a service on ``db_url`` (simulated backend by default);
    ``changes`` replace fields of the challenge (``budget=1e16``)."""
    engine = open_database(db_url)
    made: list[ScalingService] = []

    def make(backend: Backend | None = None, **changes: object) -> ScalingService:
        rules = challenge.model_copy(update=changes)
        service = ScalingService(engine, backend or SimulatedBackend(law, rules.context_length), rules, law=law)
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()
    engine.dispose()


@dataclass
class LiveServer:
    url: str
    service: ScalingService


@pytest.fixture
def live_server(make_service: ServiceFactory) -> Iterator[LiveServer]:
    """The API under uvicorn on a free loopback port, in a thread of this process."""
    service = make_service()
    server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield LiveServer(f"http://127.0.0.1:{port}", service)
    server.should_exit = True
    thread.join(30)
