"""The timed loop: fresh inputs, a cold cache, and two clocks per iteration.

One iteration::

    inputs = make_inputs(seed)      # new tensors: an answer cached from an earlier call is wrong now
    flush()                         # overwrite more than the L2 cache: no input is served from it
    sync()                          # the device is idle: nothing earlier is counted
    start()                         # host clock, and an event on the probe's stream
    outputs = call(inputs)
    stop()                          # an event on the probe's stream, then a device-wide sync

Each iteration gives a :class:`Sample` of two times. ``stream_ms``, between two CUDA events on the
probe's stream, is what is scored: it counts no host overhead. ``wall_ms``, the host clock around
the call up to a device-wide synchronize, counts work on *every* stream. An implementation that
hands its work to another stream and returns without making the caller's stream wait for it
looks fast on the first clock only; the grader compares the two.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .guards import Primitives


@dataclass(frozen=True)
class Sample:
    stream_ms: float
    wall_ms: float


class Timer(Protocol):
    def sync(self) -> None:
        """Wait until the device has finished everything queued on any stream."""

    def start(self) -> None: ...

    def stop(self) -> Sample:
        """End the iteration started by :meth:`start`; syncs the whole device."""


class CudaTimer:
    """CUDA events on the probe's stream, and the host clock around a device-wide synchronize."""

    def __init__(self, prims: Primitives) -> None:
        assert prims.events is not None and prims.record is not None and prims.elapsed_ms is not None
        self.prims = prims
        self.begin, self.end = prims.events
        self.t0 = 0

    def sync(self) -> None:
        self.prims.synchronize()

    def start(self) -> None:
        self.t0 = self.prims.perf_counter_ns()
        self.prims.record(self.begin, self.prims.stream)  # type: ignore[misc]

    def stop(self) -> Sample:
        self.prims.record(self.end, self.prims.stream)  # type: ignore[misc]
        self.prims.synchronize()
        wall_ms = (self.prims.perf_counter_ns() - self.t0) / 1e6
        return Sample(self.prims.elapsed_ms(self.begin, self.end), wall_ms)  # type: ignore[misc]


class HostTimer:
    """The CPU runs the call synchronously: both clocks are the host clock."""

    def __init__(self, prims: Primitives) -> None:
        self.prims = prims
        self.t0 = 0

    def sync(self) -> None:
        self.prims.synchronize()

    def start(self) -> None:
        self.t0 = self.prims.perf_counter_ns()

    def stop(self) -> Sample:
        self.prims.synchronize()
        elapsed = (self.prims.perf_counter_ns() - self.t0) / 1e6
        return Sample(elapsed, elapsed)


def make_timer(prims: Primitives) -> Timer:
    return CudaTimer(prims) if prims.device == "cuda" else HostTimer(prims)


def l2_flusher(prims: Primitives, nbytes: int) -> Callable[[], None]:
    """A function that overwrites ``nbytes`` of device memory (more than the L2 cache holds)."""
    import torch

    buffer = torch.empty(max(nbytes, 0) // 4, dtype=torch.int32, device=prims.device)

    def flush() -> None:
        if buffer.numel():
            buffer.fill_(0)

    return flush


@dataclass
class Timed:
    samples: list[Sample]
    kept: dict[int, Any]  # iteration index -> what ``keep`` returned for it


def time_iterations(
    call: Callable[[Any], Any],
    make_inputs: Callable[[int], Any],
    *,
    seeds: list[int],
    timer: Timer,
    flush: Callable[[], None],
    check: Callable[[Any, Any], None] = lambda inputs, outputs: None,
    keep: Callable[[Any, Any], Any] | None = None,
    keep_at: frozenset[int] = frozenset(),
) -> Timed:
    """Run ``call`` once per seed on fresh inputs, timing each run; see the module docstring.

    ``check(inputs, outputs)`` runs after each iteration, untimed, and may raise (an output of the
    wrong type or shape). For the iterations in ``keep_at``, ``keep(inputs, outputs)`` is stored:
    the outputs of those iterations are checked against the truth later, so an implementation
    cannot be right only outside the timed loop.
    """
    samples, kept = [], {}
    for index, seed in enumerate(seeds):
        inputs = make_inputs(seed)
        flush()
        timer.sync()
        timer.start()
        outputs = call(inputs)
        samples.append(timer.stop())
        check(inputs, outputs)
        if keep is not None and index in keep_at:
            kept[index] = keep(inputs, outputs)
        del inputs, outputs
    return Timed(samples, kept)
