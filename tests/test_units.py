"""Every unit of this repository's course, proven right by `handout verify`: the reference passes
all public and hidden tests (Triton through its CPU interpreter, distributed tests over gloo), the
stubs fail every public test, and nothing leaks into the handout."""

from __future__ import annotations

import pytest

from lmcourse.grader.course import Course
from lmcourse.grader.handout.verify import verify

from .helpers import REPO

pytestmark = pytest.mark.slow
UNITS = Course.load(REPO).enabled


@pytest.mark.parametrize("name", UNITS)
def test_unit_verifies(name: str) -> None:
    result = verify(Course.load(REPO).unit(name), workers=1)
    assert result.ok, result.as_json()
    assert result.reference_passed == result.reference_total > 0
