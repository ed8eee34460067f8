"""Canary: calls whose answers must be wrong, so a worker that lies systematically is exposed.

Copied into every trusted test run by the grader. An honest worker answers a call to an adapter
that does not exist with ``AttributeError``; a worker whose replies were rigged by the code it
hosts answers anything. If this test does not pass, the run is flagged as tampered.
"""

import secrets

import pytest


def test_worker_does_not_answer_nonsense(student):
    name = "lmcourse_canary_" + secrets.token_hex(8)
    with pytest.raises(AttributeError):
        getattr(student, name)()


def test_worker_refuses_producers_outside_tests(student):
    with pytest.raises(ValueError):
        student.run(_canary_producer_that_must_not_exist_in_the_sandbox)


def _canary_producer_that_must_not_exist_in_the_sandbox(adapters):
    return "an honest worker never finds this function"
