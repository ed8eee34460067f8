"""The fetch problem: an asynchronous look-up standing in for a network call."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

_MISSING = object()


async def fetch(store: Mapping[str, str], key: str, *, delay: float = 0.0, default: object = _MISSING) -> object:
    """Wait ``delay`` seconds (without blocking the event loop), then return ``store[key]``.

    A missing key returns ``default`` when one is given and raises ``KeyError`` otherwise.
    """
    # BEGIN SOLUTION problem=fetch
    await asyncio.sleep(delay)
    if key not in store and default is _MISSING:
        raise KeyError(key)
    return store.get(key, default)
    # END SOLUTION


async def fetch_many(store: Mapping[str, str], keys: Iterable[str], *, delay: float = 0.0) -> list[object]:
    """Fetch every key concurrently (total time about one ``delay``); results in key order."""
    # BEGIN SOLUTION problem=fetch
    pending = [fetch(store, key, delay=delay) for key in keys]
    return list(await asyncio.gather(*pending))
    # END SOLUTION
