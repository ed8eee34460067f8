"""What the probe takes hold of before any student code is imported, and how it notices tampering.

Student code runs in the probe's process: it could replace ``torch.cuda.synchronize``,
``torch.cuda.Event.elapsed_time``, ``time.perf_counter`` or ``torch.randn`` with functions that
lie. :func:`capture` keeps references to the real ones (the C-level methods where torch has them,
and the timing events themselves, created up front), so replacing a module attribute afterwards
changes nothing the probe calls.

Two more tripwires, both reported to the grader, which then scores the benchmark 0:

- an audit hook (:func:`sys.addaudithook`, which cannot be removed) refuses to swap the code of
  the probe's own functions (``f.__code__ = ...``) and records the attempt;
- :class:`Namespaces` snapshots the probe's module namespaces; a function replaced there
  (``timing.time_iterations = fake``) shows up when it is compared after each case.

These raise the bar; they do not make the process safe from code that runs in it (see
docs/bench.md, "Threat model").
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FunctionType, ModuleType
from typing import Any


@dataclass(frozen=True)
class Primitives:
    """The real timing and input functions, as captured at start-up."""

    device: str  # "cuda" or "cpu"
    perf_counter_ns: Callable[[], int]
    synchronize: Callable[[], None]  # waits for every stream of the device, not just one
    randn: Callable[..., Any]
    mm: Callable[[Any, Any], Any]  # the canary's kernel
    generator: type
    backward: Callable[..., None]  # torch.autograd.backward
    record: Callable[[Any, Any], None] | None  # (event, stream): CUDA only
    elapsed_ms: Callable[[Any, Any], float] | None  # (start, end): CUDA only
    events: tuple[Any, Any] | None  # one (start, end) pair, created before student code exists
    stream: Any  # the stream the probe's own work and events go to


def capture(device: str) -> Primitives:
    """Take the real primitives of ``device`` ("cuda" or "cpu"); call before importing student code."""
    import torch

    if device == "cpu":
        return Primitives("cpu", time.perf_counter_ns, _nothing, torch.randn, torch.mm, torch.Generator,
                          torch.autograd.backward, None, None, None, None)
    torch.cuda.init()
    # torch.cuda.Event is a Python subclass of a C type; its methods forward to the C ones, which
    # nobody can patch (a C type's attributes are read-only).
    event_base: Any = torch.cuda.Event.__mro__[1]
    synchronize = getattr(torch._C, "_cuda_synchronize", None) or torch.cuda.synchronize
    events = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
    return Primitives("cuda", time.perf_counter_ns, synchronize, torch.randn, torch.mm, torch.Generator,
                      torch.autograd.backward, event_base.record, event_base.elapsed_time, events,
                      torch.cuda.current_stream())


def _nothing() -> None:
    """The CPU has no asynchronous queue to wait for."""


class Tripwires:
    """Attempts to tamper with the probe, recorded as one sentence each."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def note(self, sentence: str) -> None:
        if sentence not in self.seen:
            self.seen.append(sentence)


def guard_code(modules: list[ModuleType], tripwires: Tripwires) -> None:
    """Refuse, from now on, any change to the code of a function defined in ``modules``."""
    names = frozenset(m.__name__ for m in modules)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event != "object.__setattr__" or not args:
            return
        target = args[0]
        if isinstance(target, FunctionType) and target.__module__ in names:
            tripwires.note(f"student code tried to replace the code of the harness function {target.__qualname__}")
            raise RuntimeError("the benchmark harness's functions cannot be changed")

    sys.addaudithook(hook)


class Namespaces:
    """A snapshot of what the probe's modules hold, to find replaced functions later."""

    def __init__(self, modules: list[ModuleType]) -> None:
        self.modules = modules
        self.snapshot = {m.__name__: dict(vars(m)) for m in modules}

    def changes(self) -> list[str]:
        """One sentence per name whose object is no longer the one in the snapshot."""
        found = []
        for module in self.modules:
            before = self.snapshot[module.__name__]
            now = vars(module)
            for name, obj in before.items():
                if now.get(name) is not obj and not name.startswith("__"):
                    found.append(f"student code replaced {module.__name__.rpartition('.')[2]}.{name} in the harness")
        return found
