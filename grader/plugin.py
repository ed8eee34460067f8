"""The pytest plugin every lmcourse test session runs under.

It is loaded explicitly (``-p lmcourse.grader.plugin``), never by entry-point autoload, and
gives tests three things:

- the marker ``@pytest.mark.problem("name", weight=1.0)`` that maps a test to a problem of
  ``unit.yaml`` (partial credit is the passed share of the weights);
- the fixture ``student``: the unit's adapter module (``tests/adapters.py``). At home it is
  simply imported in-process; the grader swaps in a sandboxed carrier with the same interface;
- with ``--lmcourse-report PATH``, a JSON report of every test (problem, outcome, time, first
  failure line) and every collection error, written by the controlling process, so it also
  works under pytest-xdist.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .report import CollectionError, SessionReport, TestResult, first_line

PROBLEM = "lmcourse_problem"
WEIGHT = "lmcourse_weight"
ORIGIN = "lmcourse_origin"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lmcourse")
    group.addoption("--lmcourse-report", metavar="PATH", help="Write per-test results as JSON to PATH.")
    group.addoption("--lmcourse-problem", metavar="NAME", help="Run only the tests of this problem.")
    group.addoption(
        "--lmcourse-carrier",
        metavar="PATH",
        help="Grader mode: carry student calls into a sandbox described by this JSON file.",
    )
    parser.addini("lmcourse_adapters", "Import path of the adapter module.", default="tests.adapters")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "problem(name, weight=1.0): the unit.yaml problem this test grades")
    config.addinivalue_line("markers", "serial: run alone, never beside other tests (distributed tests)")
    path = config.getoption("lmcourse_report")
    if path and not hasattr(config, "workerinput"):  # only the controller writes the report
        config.pluginmanager.register(Recorder(Path(path)), "lmcourse-recorder")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    only = config.getoption("lmcourse_problem")
    kept, dropped = [], []
    for item in items:
        name, weight = problem_of(item)
        if name is not None:
            # user_properties travel with the report from xdist workers to the controller.
            item.user_properties.append((PROBLEM, name))
            item.user_properties.append((WEIGHT, weight))
        (dropped if only and name != only else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def problem_of(item: pytest.Item) -> tuple[str | None, float]:
    """The problem name and weight of ``item``'s ``@pytest.mark.problem``, if any."""
    marker = item.get_closest_marker("problem")
    if marker is None:
        return None, 1.0
    name = marker.args[0] if marker.args else marker.kwargs.get("name")
    return name, float(marker.kwargs.get("weight", 1.0))


class InProcessStudent:
    """Calls the student's code in this process: how public tests run at home.

    ``student.run_linear(...)`` calls the adapter of that name. ``student.run(producer, ...)``
    calls ``producer(adapters, ...)``: a producer builds objects, runs them and returns plain
    data (tensors, numbers, lists, dicts, bytes). The grader's sandboxed carrier offers the same
    two calls, so a test is written once for both.
    """

    def __init__(self, adapters: ModuleType) -> None:
        self.adapters = adapters

    def __getattr__(self, name: str) -> Any:
        return getattr(self.adapters, name)

    def run(self, producer: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return producer(self.adapters, *args, **kwargs)


CARRIER = pytest.StashKey[Any]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Grader mode: start this process's sandboxed worker while pytest collects the tests."""
    config = session.config
    path = config.getoption("lmcourse_carrier")
    # The xdist controller only hands tests to its workers: it needs no sandbox of its own.
    runs_tests = hasattr(config, "workerinput") or getattr(config.option, "dist", "no") == "no"
    if not path or not runs_tests:
        return
    from .grading.carrier import Carrier, CarrierConfig

    carrier = Carrier(CarrierConfig.model_validate_json(Path(path).read_text(encoding="utf-8")))
    carrier.launch()
    config.stash[CARRIER] = carrier


def pytest_sessionfinish(session: pytest.Session) -> None:
    carrier = session.config.stash.get(CARRIER, None)
    if carrier is not None:
        carrier.close()


@pytest.fixture(scope="session")
def _lmcourse_carrier(request: pytest.FixtureRequest) -> Any:
    """One sandboxed worker per pytest process, restarted by the carrier after a crash."""
    return request.config.stash.get(CARRIER, None)


@pytest.fixture
def student(request: pytest.FixtureRequest, _lmcourse_carrier: Any) -> Any:
    """The student's code, reached through the unit's adapters: in-process at home, sandboxed on the grader."""
    if _lmcourse_carrier is not None:
        from .grading.carrier import SandboxStudent

        return SandboxStudent(_lmcourse_carrier)
    return InProcessStudent(importlib.import_module(request.config.getini("lmcourse_adapters")))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Record where a failure came from, so hidden tests can show it without their expected values."""
    report = yield
    if call.excinfo is not None:
        report.user_properties.append((ORIGIN, failure_origin(call.excinfo.value)))
    return report


def failure_origin(exc: BaseException) -> str:
    """``student``: the student's code raised; ``sandbox``: timeout or crash; ``test``: an assertion."""
    if any("raised by the student's code" in note for note in getattr(exc, "__notes__", ())):
        return "student"
    module = type(exc).__module__
    if module.endswith("grading.carrier"):
        return "student" if type(exc).__name__ == "SandboxCallError" else "sandbox"
    if type(exc).__name__ == "Failed" and "Timeout" in str(exc):
        return "sandbox"
    return "test"


class Recorder:
    """Folds setup/call/teardown reports into one :class:`TestResult` per test.

    The report is rewritten (atomically) once the tests are collected and after each test, not
    only at the end: a session killed at the wall clock before it could finish still leaves every
    expected test id and every result so far, so collect can fail the rest as "did not report".
    """

    INTERRUPTED = -1  # the exit status of a report the session never finished

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tests: dict[str, TestResult] = {}
        self.collection_errors: list[CollectionError] = []
        self.expected: set[str] = set()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.expected.update(item.nodeid for item in session.items)
        self._write(self.INTERRUPTED)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.expected.update(ids)
        self._write(self.INTERRUPTED)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.append(
                CollectionError(nodeid=report.nodeid, message=_failure_message(report))
            )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        result = self.tests.setdefault(
            report.nodeid,
            TestResult(nodeid=report.nodeid, problem=props.get(PROBLEM), weight=props.get(WEIGHT, 1.0)),
        )
        result.duration += report.duration
        if report.when == "call" or report.outcome != "passed":
            outcome = _outcome(report)
            if result.outcome in (None, "passed"):
                result.outcome = outcome
                if outcome != "passed":
                    result.message = _failure_message(report)
                    result.origin = dict(report.user_properties).get(ORIGIN)
        if report.when == "teardown":
            self._write(self.INTERRUPTED)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self._write(int(exitstatus))

    def _write(self, exit_status: int) -> None:
        report = SessionReport(
            tests=[t for t in self.tests.values() if t.outcome is not None],
            collection_errors=self.collection_errors,
            expected=sorted(self.expected),
            exit_status=exit_status,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(report.model_dump_json(indent=1), encoding="utf-8")
        os.replace(partial, self.path)  # a reader never sees half a report


def _outcome(report: pytest.TestReport) -> str:
    if report.when != "call" and report.failed:
        return "error"
    if hasattr(report, "wasxfail"):
        return "failed" if report.passed else "skipped"
    return report.outcome


def _failure_message(report: Any) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and crash.message:
        return first_line(crash.message)
    if isinstance(report.longrepr, tuple):  # skips: (path, line, reason)
        return first_line(str(report.longrepr[-1]))
    text = str(report.longrepr or "").strip().splitlines()
    return first_line(text[-1]) if text else ""
