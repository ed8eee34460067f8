"""The grading worker in each real sandbox: how it runs, and that its speed-ups keep calls apart.

Every test runs once per implementation (see conftest.py). The worker is driven by a real
:class:`Carrier` over its socket, with a tiny adapter module instead of a unit's (no torch, so
each worker starts in well under a second).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lmcourse.grader.config import Limits
from lmcourse.grader.grading.carrier import Carrier, CarrierConfig, SandboxCrash
from lmcourse.grader.sandbox.base import Sandbox

ADAPTERS = '''
import os


def omp_wait_policy():
    return os.environ.get("OMP_WAIT_POLICY")


def spoil(tokens, vocab):
    """What a careless student might do: change the inputs in place."""
    tokens[0] = b"spoiled"
    tokens.append(b"extra")
    vocab[0] = b"spoiled"
    return len(tokens)


def echo(value):
    return value


def die():
    os._exit(3)
'''

TOKENS = [bytes([i % 256]) * (1 + i % 5) for i in range(3000)]
VOCAB = dict(enumerate(TOKENS))


@pytest.fixture
def carrier(sandbox: Sandbox, tmp_path: Path) -> Iterator[Carrier]:
    code = tmp_path / "code"
    (code / "tests").mkdir(parents=True)
    (code / "tests" / "__init__.py").write_text("")
    (code / "tests" / "adapters.py").write_text(ADAPTERS)
    for path in [tmp_path, code, *code.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # the sandbox user only reads these
    config = CarrierConfig(backend=sandbox.name, code_dir=str(code), limits=Limits(memory_mb=512), call_timeout_s=30)
    carrier = Carrier(config)
    carrier.launch()
    yield carrier
    carrier.close()


def call(carrier: Carrier, adapter: str, *args: object) -> object:
    return carrier.call({"adapter": adapter}, args, {})


def test_openmp_threads_in_the_worker_wait_passively(carrier: Carrier) -> None:
    assert call(carrier, "omp_wait_policy") == "PASSIVE"


def test_inputs_spoiled_by_one_call_reach_the_next_intact(carrier: Carrier) -> None:
    # The worker keeps the byte lists it was sent (its memo): the second call is served from
    # there, and must still see exactly what the grader sent, not what the first call left.
    assert call(carrier, "spoil", TOKENS, VOCAB) == len(TOKENS) + 1
    assert call(carrier, "echo", [TOKENS, VOCAB]) == [TOKENS, VOCAB]
    assert call(carrier, "spoil", TOKENS, VOCAB) == len(TOKENS) + 1


def test_a_worker_that_died_is_replaced_and_sent_its_inputs_anew(carrier: Carrier) -> None:
    assert call(carrier, "echo", TOKENS) == TOKENS
    with pytest.raises(SandboxCrash):
        call(carrier, "die")
    assert carrier.starts == 1
    assert call(carrier, "echo", TOKENS) == TOKENS  # a fresh worker, sent the list in full
    assert carrier.starts == 2
