"""Pick a sandbox backend by name, refusing in one sentence when it cannot run here."""

from __future__ import annotations

from ..errors import LmcourseError
from .base import Sandbox

BACKENDS = ("local", "docker")


def make_sandbox(name: str) -> Sandbox:
    """The backend called ``name``, whether or not it can run on this host."""
    if name == "local":
        from .local import LocalSandbox

        return LocalSandbox()
    if name == "docker":
        from .docker import DockerSandbox

        return DockerSandbox()
    raise LmcourseError(f"unknown sandbox {name!r}: choose one of {', '.join(BACKENDS)}")


def get_sandbox(name: str) -> Sandbox:
    """The backend called ``name``, ready to run; :class:`LmcourseError` if it is unknown or
    unavailable (the error is the backend's own sentence, e.g. that the Docker daemon is down)."""
    sandbox = make_sandbox(name)
    problem = sandbox.unavailable()
    if problem:
        raise LmcourseError(problem)
    return sandbox
