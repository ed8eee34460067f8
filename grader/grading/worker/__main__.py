"""The worker loop: connect to the grader's socket, then answer calls until it closes.

Started inside the sandbox as ``python -I -c <bootstrap>`` with ``--socket``, ``--code`` (the
folder holding the student's package and ``tests/``) and ``--site`` (site-packages to put on
``sys.path``, which ``-I`` leaves out). A call names an adapter of ``tests.adapters`` or a
producer (module under ``tests.``, function); the reply is the value as plain data, or the error
the student's code raised, ``SystemExit`` included. Only a dead process ends a call early.
"""

from __future__ import annotations

import argparse
import importlib
import socket
import sys
import traceback
from typing import Any

from .wire import BytesMemo, decode, encode, receive, send

ADAPTERS = "tests.adapters"
TRACEBACK_CHARS = 4000
#: Byte lists this worker was sent (a tokenizer's vocabulary and merges, call after call), kept
#: split; main() sizes it from --memo-mb, a share of the sandbox's memory.
MEMO = BytesMemo(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lmcourse-worker")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--code", required=True)
    parser.add_argument("--site", action="append", default=[])
    parser.add_argument("--memo-mb", type=int, default=0)
    args = parser.parse_args(argv)
    MEMO.budget = args.memo_mb * 2**20
    sys.path[:0] = [args.code, *args.site]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(args.socket)
    warm_up()
    while True:
        try:
            header, blobs = receive(sock)
        except EOFError:
            return 0
        reply_blobs: list[bytes] = []
        send(sock, answer(header, blobs, reply_blobs), reply_blobs)


def warm_up() -> None:
    """Import the adapters (and so torch and the student's package) before the first call arrives.

    The grader starts this worker while pytest is still collecting, so the seconds an import of
    torch takes overlap with collection instead of delaying the first test. A failure is left for
    that first call to meet again and report: a module that failed to import is not cached.
    """
    try:
        importlib.import_module(ADAPTERS)
    except BaseException:  # noqa: BLE001 - re-raised by the call that needs the module
        pass


def answer(header: dict[str, Any], blobs: list[bytes], out: list[bytes]) -> dict[str, Any]:
    """Run one request; never raises (a reply always goes back)."""
    if header.get("op") == "ping":
        return {"ok": True}
    try:
        function = resolve(header["target"])
        call_args = decode(header["args"], blobs, MEMO)
        kwargs = decode(header["kwargs"], blobs, MEMO)
        value = function(*call_args, **kwargs)
        return {"ok": True, "value": encode(value, out)}
    except BaseException as exc:  # SystemExit and KeyboardInterrupt are the student's errors too
        out.clear()
        return {"ok": False, "error": describe(exc)}


def resolve(target: dict[str, Any]) -> Any:
    if "adapter" in target:
        return getattr(importlib.import_module(ADAPTERS), target["adapter"])
    module, name = target["producer"]
    if not module.startswith("tests."):
        raise ValueError(f"producers live under tests., not in {module}")
    producer = getattr(importlib.import_module(module), name)
    adapters = importlib.import_module(ADAPTERS)
    return lambda *a, **k: producer(adapters, *a, **k)


def describe(exc: BaseException) -> dict[str, str]:
    text = "".join(traceback.format_exception(exc))
    return {
        "type": type(exc).__name__,
        "message": str(exc)[:1000],
        "traceback": text[-TRACEBACK_CHARS:],
    }


if __name__ == "__main__":
    sys.exit(main())
