"""The trusted side of a sandboxed call: the ``student`` fixture the grader swaps in.

A :class:`Carrier` owns one worker process in a sandbox, talks to it over a Unix socket in a
folder mounted read-only into the sandbox, and turns every failure into an exception the test
reports: the student's own exception (rebuilt as the nearest built-in type, so
``pytest.raises(ValueError)`` means the same at home and on the grader), a timeout, or a crash.
A dead or hung worker is killed and a fresh one starts at the next call, so one bad test never
takes the rest down. Values come back as plain data only (:mod:`.worker.wire`).
"""

from __future__ import annotations

import builtins
import json
import shutil
import socket
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..config import Limits
from ..sandbox.base import Mount, SandboxProcess, SandboxSpec
from .worker import wire

WORKER_PACKAGE = Path(__file__).resolve().parent / "worker"
MESSAGE_CHARS = 1000  # of a student's exception message, as the worker sends it
#: A fresh worker that dies or hangs on its first call this many times in a row is broken at
#: import: every later call fails at once, so a submission that hangs on import costs seconds,
#: not every test's full limit. A call that kills or hangs a worker that had answered before is
#: that call's problem: only that target (adapter or producer) is given up after as many.
GIVE_UP_AFTER = 3
MEMO_MB = 64  # most a worker keeps of the byte lists it was sent (wire.BytesMemo); 1/16 of its memory at most
BOOT_DIR, CODE_DIR, CHANNEL_DIR = "/lmcourse/boot", "/lmcourse/code", "/lmcourse/channel"
BOOTSTRAP = "import runpy, sys; sys.path.insert(0, %r); runpy.run_module('_lmcourse_worker', run_name='__main__', alter_sys=True)"


class CarrierConfig(BaseModel):
    """Everything the trusted pytest session needs to start workers; written by the engine."""

    backend: str
    code_dir: str  # host folder: the student's package, tests/adapters.py, tests/producers.py
    fixtures_dir: str | None = None  # host folder mounted read-only at the same path
    limits: Limits
    call_timeout_s: float
    startup_timeout_s: float = 60.0


class SandboxCallError(Exception):
    """The student's code raised an exception that is not a built-in type."""


class SandboxTimeout(Exception):
    """A call ran past its time limit; the worker was killed."""


class SandboxCrash(Exception):
    """The worker died during a call (exit, signal, memory limit)."""


class Carrier:
    def __init__(self, config: CarrierConfig) -> None:
        from ..sandbox.registry import get_sandbox

        self.config = config
        self.sandbox = get_sandbox(config.backend)
        self.process: SandboxProcess | None = None
        self.conn: socket.socket | None = None
        self.channel: Path | None = None
        self.starts = 0
        self.answered = 0  # calls the current worker answered
        self.dead_on_arrival = 0  # fresh workers in a row that never answered
        self.target_failures: dict[str, int] = {}  # consecutive dead/hung calls per target
        self._listener: socket.socket | None = None  # a launched worker not yet connected
        self._launch_error: Exception | None = None

    # ---- lifecycle ----

    def launch(self) -> None:
        """Start the first worker now without waiting for it: its import of torch then overlaps
        pytest's collection. The first call waits for the connection; a failure here is that
        call's failure, never the session's."""
        try:
            self._launch()
        except Exception as exc:  # noqa: BLE001 - raised again by the first call
            self._launch_error = exc
            self.close()

    def _start(self) -> None:
        if self._listener is None:
            self._launch()
        assert self._listener is not None
        listener, self._listener = self._listener, None
        try:
            self.conn = self._accept(listener)
        finally:
            listener.close()

    def _launch(self) -> None:
        self.channel = Path(tempfile.mkdtemp(prefix="lmcourse-channel-"))
        self.channel.chmod(0o755)
        boot = self.channel / "boot"
        shutil.copytree(WORKER_PACKAGE, boot / "_lmcourse_worker", ignore=shutil.ignore_patterns("__pycache__"))
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path = self.channel / "worker.sock"
        listener.bind(str(path))
        path.chmod(0o777)  # the worker runs as an unprivileged user
        listener.listen(1)
        self._listener = listener
        self.process = self.sandbox.start(self._spec())
        self.starts += 1
        self.answered = 0

    def _accept(self, listener: socket.socket) -> socket.socket:
        """The worker's connection; fails as soon as the sandbox dies instead of at the start-up limit."""
        deadline = time.monotonic() + self.config.startup_timeout_s
        listener.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                conn, _ = listener.accept()
                return conn
            except TimeoutError:
                if self.process is not None and not self.process.alive():
                    raise SandboxCrash(f"the sandbox exited before the worker connected{self._tail()}") from None
        raise SandboxCrash(f"the worker did not start within {self.config.startup_timeout_s:g} s{self._tail()}")

    def _spec(self) -> SandboxSpec:
        runtime = self.sandbox.python()
        limits = self.config.limits
        site = [arg for path in runtime.site_packages for arg in ("--site", path)]
        mounts = [
            Mount(Path(self.config.code_dir), CODE_DIR),
            Mount(self.channel / "boot", BOOT_DIR),  # type: ignore[operator]
            Mount(self.channel, CHANNEL_DIR),  # type: ignore[arg-type]
        ]
        if self.config.fixtures_dir:
            mounts.append(Mount(Path(self.config.fixtures_dir), self.config.fixtures_dir))
        memo_mb = min(MEMO_MB, limits.memory_mb // 16)
        args = ["-I", "-c", BOOTSTRAP % BOOT_DIR, "--socket", f"{CHANNEL_DIR}/worker.sock", "--code", CODE_DIR,
                "--memo-mb", str(memo_mb), *site]
        return runtime.spec(args, mounts, limits, wall_clock_s=limits.total_timeout_s, gpu=limits.gpu)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None
        if self.channel is not None:
            shutil.rmtree(self.channel, ignore_errors=True)
            self.channel = None

    def _tail(self) -> str:
        if self.process is None:
            return ""
        result = self.process.wait(2)  # a dead worker reports its own exit status; a live one is killed
        if result.oom_killed:
            reason = "killed by the memory limit"
        elif result.timed_out:
            reason = "it did not exit and was killed"
        else:
            reason = f"exit status {result.exit_code}"
        lines = [ln for ln in result.output.strip().splitlines() if ln.strip()][-3:]
        return f" ({reason}){': ' + ' | '.join(lines) if lines else ''}"

    # ---- calls ----

    def call(self, target: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None = None) -> Any:
        key = json.dumps(target, sort_keys=True)
        if self.dead_on_arrival >= GIVE_UP_AFTER:
            raise SandboxCrash(f"not run: the student's code died or hung before answering any call, {GIVE_UP_AFTER} times in a row")
        if self.target_failures.get(key, 0) >= GIVE_UP_AFTER:
            raise SandboxCrash(f"not run: this call died or hung the student's process {GIVE_UP_AFTER} times in a row")
        fresh = self.conn is None or self.answered == 0
        try:
            value = self._call(target, args, kwargs, timeout)
        except (SandboxTimeout, SandboxCrash):
            self.target_failures[key] = self.target_failures.get(key, 0) + 1
            self.dead_on_arrival = self.dead_on_arrival + 1 if fresh else 0
            self.answered = 0
            raise
        except BaseException:
            if self.conn is not None:  # the student's own exception: the worker answered
                self._answered(key)
            raise  # else interrupted mid-call (pytest-timeout): the worker was dropped
        self._answered(key)
        return value

    def _answered(self, key: str) -> None:
        self.answered += 1
        self.dead_on_arrival = 0
        self.target_failures.pop(key, None)

    def _call(self, target: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None) -> Any:
        if self._launch_error is not None:
            error, self._launch_error = self._launch_error, None
            raise SandboxCrash(f"the sandbox could not start: {error}")
        if self.conn is None:
            self._start()
        assert self.conn is not None
        blobs: list[bytes] = []
        header = {"op": "call", "target": target, "args": wire.encode(list(args), blobs), "kwargs": wire.encode(kwargs, blobs)}
        started = time.monotonic()
        limit = timeout or self.config.call_timeout_s
        # A reply never needs more than the worker's memory (it holds the whole frame to send it),
        # and the deadline covers the whole reply: a hostile worker can make the grader neither
        # hold a gigabyte it never had nor wait past the limit for bytes that trickle in.
        max_frame = min(wire.MAX_FRAME, self.config.limits.memory_mb * 2**20)
        try:
            wire.send(self.conn, header, blobs)
            self.conn.settimeout(limit)
            reply, reply_blobs = wire.receive(self.conn, max_frame=max_frame, deadline=started + limit)
        except TimeoutError as exc:
            exc.__traceback__ = None  # its frames hold the bytes read so far; the test keeps the error
            self.close()
            raise SandboxTimeout(f"student code ran past the {limit:g} s limit of one call and was stopped") from None
        except (EOFError, ConnectionError, wire.WireError) as exc:
            exc.__traceback__ = None  # as above: a bad frame must not stay in memory with the report
            detail = self._tail()
            self.close()
            raise SandboxCrash(f"the student's process died during the call after {time.monotonic() - started:.1f} s{detail}") from exc
        except BaseException:
            # Interrupted mid-call (pytest-timeout, Ctrl-C): the reply may still arrive and would
            # answer the next call, so this worker is done.
            self.close()
            raise
        if reply.get("ok"):
            try:
                return wire.decode(reply.get("value"), reply_blobs)
            except BaseException as exc:
                # A value that does not decode fails its test; the blobs (up to a whole frame) must
                # not stay alive in the frames of the traceback kept with the test's report.
                reply_blobs.clear()
                traceback.clear_frames(exc.__traceback__)
                raise
        raise rebuild(reply.get("error") or {})


def rebuild(error: dict[str, Any]) -> BaseException:
    """The student's exception as a built-in type where one has that name, else SandboxCallError."""
    # The worker cuts messages to 1000 characters; a hostile one may not, and the message goes
    # into every report (junit.xml, session.log): cut it here too.
    name, message = str(error.get("type", "Exception"))[:200], str(error.get("message", ""))[:MESSAGE_CHARS]
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception) and cls.__module__ == "builtins":
        try:
            exc = cls(message)
        except Exception:
            exc = SandboxCallError(f"{name}: {message}")
    else:
        exc = SandboxCallError(f"{name}: {message}")
    exc.add_note("raised by the student's code in the sandbox")
    return exc


class SandboxStudent:
    """The grader's ``student`` fixture: the same two calls as at home, carried into the sandbox."""

    def __init__(self, carrier: Carrier) -> None:
        self._carrier = carrier

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self._carrier.call({"adapter": name}, args, kwargs)

    def run(self, producer: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        target = {"producer": [producer.__module__, producer.__qualname__]}
        return self._carrier.call(target, args, kwargs)
