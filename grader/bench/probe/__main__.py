"""The benchmark process: ``python -I -c <bootstrap> --plan P --code C --out O [--peer D] [--site S]``.

In order, and the order matters:

1. read the plan (written by the grader), import torch and safetensors, take hold of the real
   timing primitives, arm the tripwires, time the canary: all before any student code exists;
2. put ``--code`` on ``sys.path`` and get the implementation from its ``tests/adapters.py``
   (the student's for ``role: submission``, the staff's for ``role: reference``);
3. for each case, :mod:`.roles` does the work; ``report.json`` in ``--out`` is rewritten after each
   case, so a crash later keeps what was measured;
4. the canary again, and the tripwires' findings.

The report holds plain data only (times in ms, error measures, sentences); the grader judges it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from . import attention, guards, roles, timing


class Report:
    """``report.json``, written atomically so the grader never reads half of it."""

    def __init__(self, path: Path, role: str) -> None:
        self.path = path
        self.data: dict[str, Any] = {"role": role, "device": {}, "canary": {}, "load_error": None,
                                     "cases": {}, "tampering": []}

    def write(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, allow_nan=False), encoding="utf-8")
        os.replace(tmp, self.path)


def device_info(prims: guards.Primitives) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"kind": prims.device, "torch": torch.__version__}
    if prims.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info |= {"name": props.name, "cuda": torch.version.cuda, "l2_bytes": int(getattr(props, "L2_cache_size", 0))}
    else:
        info["name"] = "cpu"
    return info


def load_implementation(code: str, adapter: str) -> Any:
    """The object ``tests.adapters.<adapter>()`` returns, importing the code under ``code`` for the first time."""
    sys.path.insert(0, code)
    adapters = importlib.import_module("tests.adapters")
    return getattr(adapters, adapter)()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lmcourse-bench-probe")
    parser.add_argument("--plan", required=True)
    parser.add_argument("--code", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--peer", help="reference role: where the submission's process saved its outputs")
    parser.add_argument("--site", action="append", default=[])
    args = parser.parse_args(argv)
    sys.path.extend(args.site)
    plan = json.loads(Path(args.plan).read_text(encoding="utf-8"))
    import safetensors.torch  # noqa: F401  (imported before student code can shadow or patch it)
    import torch

    prims = guards.capture(plan["device"])
    if prims.device == "cpu":
        torch.set_num_threads(1)  # CPU runs are the toolkit's tests: stay off the cores other work needs
    tripwires = guards.Tripwires()
    mine = [m for name, m in sys.modules.items() if name == __package__ or name.startswith(f"{__package__}.")]
    mine.append(sys.modules[__name__])
    guards.guard_code(mine, tripwires)
    namespaces = guards.Namespaces(mine)
    timer = timing.make_timer(prims)
    report = Report(Path(args.out) / "report.json", plan["role"])
    report.data["device"] = device_info(prims)
    l2_bytes = report.data["device"].get("l2_bytes", 0)
    flush = timing.l2_flusher(prims, max(plan["flush_bytes"], 2 * l2_bytes) if plan["flush_bytes"] else 0)
    report.data["canary"]["before"] = roles.canary(prims, timer, plan["canary"])
    report.write()

    implementations: dict[str, attention.Attend] = {}
    try:
        implementations[plan["role"]] = attention.as_attend(load_implementation(args.code, plan["adapter"]))
    except BaseException as exc:  # the import or the adapter failed: the grader reports it for every case
        report.data["load_error"] = roles.describe(exc)
    peer = Path(args.peer) if args.peer else None
    for case in plan["cases"] if implementations else []:
        result = roles.run_case(plan, case, implementations, prims, timer, flush, Path(args.out), peer)
        report.data["cases"][case["name"]] = result
        report.data["tampering"] = tripwires.seen + namespaces.changes()
        report.write()
        if prims.device == "cuda":
            torch.cuda.empty_cache()
    report.data["canary"]["after"] = roles.canary(prims, timer, plan["canary"])
    report.data["tampering"] = tripwires.seen + namespaces.changes()
    report.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
