"""The child pytest session and its report, when the session is killed before it can finish."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lmcourse.grader.runner import GRACE_S, run_pytest

pytestmark = pytest.mark.slow

STUBBORN = '''
import signal, time

def test_quick():
    assert True

def test_stuck_and_deaf_to_ctrl_c():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the session cannot finish: only SIGKILL ends it
    time.sleep(600)

def test_never_started():
    assert True
'''


def test_a_session_killed_at_the_wall_clock_still_reports_what_it_collected_and_ran(tmp_path: Path) -> None:
    (tmp_path / "test_stubborn.py").write_text(STUBBORN)
    started = time.monotonic()
    run = run_pytest(tmp_path, ["test_stubborn.py"], workers=0, wall_clock_s=5)
    assert time.monotonic() - started < 5 + GRACE_S + 20
    assert run.timed_out
    report = run.report
    assert report.exit_status == -1  # the session never wrote its final report
    assert {t.split("::")[-1] for t in report.expected} == {
        "test_quick", "test_stuck_and_deaf_to_ctrl_c", "test_never_started"
    }
    assert {t.nodeid.split("::")[-1]: t.outcome for t in report.tests} == {"test_quick": "passed"}
