"""The ``sandbox`` fixture: every implementation that can run on this host, each test once per
implementation (both launchers of the ``local`` backend, and docker).

A backend is skipped only when it reports itself unavailable, with its reason. The docker
grading image is built here when only it is missing (offline, about a second), so that a machine
prepared by scripts/install-sandboxes.sh before the venv existed still runs the docker tests.
"""

from __future__ import annotations

import pytest

from lmcourse.grader.sandbox.base import Sandbox
from lmcourse.grader.sandbox.registry import IMPLEMENTATIONS, make_sandbox


def _ensure_grading_image(sandbox: Sandbox) -> None:
    problem = sandbox.unavailable()
    if sandbox.name == "docker" and problem and "lmcourse image build" in problem:
        from lmcourse.grader.errors import LmcourseError
        from lmcourse.grader.sandbox.image import build_image

        try:
            build_image("cpu")
        except LmcourseError:
            pass  # the base image is missing too: the skip below says what to run


@pytest.fixture(params=IMPLEMENTATIONS)
def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    backend = make_sandbox(request.param)
    _ensure_grading_image(backend)
    problem = backend.unavailable()
    if problem:
        pytest.skip(problem)
    return backend
