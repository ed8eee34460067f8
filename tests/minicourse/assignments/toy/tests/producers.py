"""Producers: build the student's objects, drive them and return plain data.

Each takes the adapter module first (the ``student`` fixture passes it in; under the grader this
runs inside the sandbox). Producers hold no expected values: the assertions stay in the tests.
"""

from __future__ import annotations

import asyncio
import time
from types import ModuleType
from typing import Any


def running_mean_trace(adapters: ModuleType, values: list[float]) -> list[float]:
    """What ``update`` returns after each value of ``values``, fed to one fresh RunningMean."""
    stream = adapters.get_running_mean_cls()()
    return [float(stream.update(v)) for v in values]


def running_mean_state(adapters: ModuleType, values: list[float]) -> dict[str, Any]:
    """``count`` and ``mean`` (as ``repr``, so ``nan`` travels as text) after feeding ``values``."""
    stream = adapters.get_running_mean_cls()()
    for v in values:
        stream.update(v)
    return {"count": int(stream.count), "mean": repr(float(stream.mean))}


def running_mean_merge(adapters: ModuleType, left: list[float], right: list[float]) -> dict[str, Any]:
    """Merge two streams; report the merged state and both inputs' means afterwards."""
    cls = adapters.get_running_mean_cls()
    a, b = cls(), cls()
    for v in left:
        a.update(v)
    for v in right:
        b.update(v)
    merged = a.merge(b)
    return {
        "count": int(merged.count),
        "mean": float(merged.mean),
        "left": [int(a.count), float(a.mean)],
        "right": [int(b.count), float(b.mean)],
    }


def running_mean_combine(adapters: ModuleType, mean_a: float, count_a: int, mean_b: float, count_b: int) -> float:
    """The static method ``RunningMean.combine``, called on the class."""
    return float(adapters.get_running_mean_cls().combine(mean_a, count_a, mean_b, count_b))


def fetch_outcomes(
    adapters: ModuleType, store: dict[str, str], keys: list[str], *, delay: float = 0.0, **default: Any
) -> list[list[Any]]:
    """Await ``fetch`` once per key, in turn: ``["ok", value]`` or ``["KeyError", None]`` each.

    Pass ``default=...`` to forward a default; leave it out to forward none.
    """
    fetch = adapters.get_fetch()

    async def drive() -> list[list[Any]]:
        outcomes: list[list[Any]] = []
        for key in keys:
            try:
                outcomes.append(["ok", await fetch(store, key, delay=delay, **default)])
            except KeyError:
                outcomes.append(["KeyError", None])
        return outcomes

    return asyncio.run(drive())


def fetch_many_timed(adapters: ModuleType, store: dict[str, str], keys: list[str], delay: float) -> dict[str, Any]:
    """Run ``fetch_many`` once; its results and the wall-clock seconds it took."""
    fetch_many = adapters.get_fetch_many()
    start = time.perf_counter()
    values = asyncio.run(fetch_many(store, keys, delay=delay))
    return {"values": list(values), "seconds": time.perf_counter() - start}


def fetch_is_coroutine(adapters: ModuleType) -> bool:
    """Whether calling ``fetch`` gives an awaitable (the call is awaited, never left pending)."""
    pending = adapters.get_fetch()({"k": "v"}, "k")
    result = asyncio.iscoroutine(pending) or hasattr(pending, "__await__")

    async def finish() -> None:
        await pending

    asyncio.run(finish())
    return result
