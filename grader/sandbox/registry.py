"""Pick a sandbox backend by name, refusing in one sentence when it cannot run here."""

from __future__ import annotations

from ..errors import LmcourseError
from .base import Sandbox

#: What users choose between (``--sandbox``): ``local`` picks its launcher (see :mod:`.local`).
BACKENDS = ("local", "docker")
#: Every distinct implementation, by name: the sandbox and attack suites run each of them.
IMPLEMENTATIONS = ("local-bwrap", "local-unshare", "docker")


def make_sandbox(name: str) -> Sandbox:
    """The backend called ``name``, whether or not it can run on this host."""
    if name == "local":
        from .local import local_sandbox

        return local_sandbox()
    if name == "local-bwrap":
        from .bwrap import BwrapSandbox

        return BwrapSandbox()
    if name == "local-unshare":
        from .unshare import UnshareSandbox

        return UnshareSandbox()
    if name == "docker":
        from .docker import DockerSandbox

        return DockerSandbox()
    names = dict.fromkeys(BACKENDS + IMPLEMENTATIONS)
    raise LmcourseError(f"unknown sandbox {name!r}: choose one of {', '.join(names)}")


def get_sandbox(name: str) -> Sandbox:
    """The backend called ``name``, ready to run; :class:`LmcourseError` if it is unknown or
    unavailable (the error is the backend's own sentence, e.g. that the Docker daemon is down)."""
    sandbox = make_sandbox(name)
    problem = sandbox.unavailable()
    if problem:
        raise LmcourseError(problem)
    return sandbox
