"""The systems unit's benchmarking and profiling scripts, on the CPU (their GPU runs: test_gpu.py).

They ship whole in the handout for the written problem ``benchmarking``; no graded problem maps to
them, so they are tested here rather than in the unit's public tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lmcourse.grader.bench.harness import cuda_available

from .scripts import run_script

pytestmark = pytest.mark.skipif(cuda_available(), reason="the CPU behaviour; on a GPU see test_gpu.py")


def test_benchmark_times_every_phase_of_a_tiny_model_and_says_it_is_not_a_gpu(tmp_path: Path) -> None:
    done = run_script("benchmark", ["--mode", "train", "--context-length", "32", "--batch-size", "2",
                                    "--warmup", "1", "--steps", "2"], tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("note: no CUDA GPU, so this runs on the CPU") and "not GPU numbers" in lines[0]
    assert lines[1] == "train, batch 2, 1 warm-up and 2 timed steps on CPU:"
    assert lines[2] == "| size | context | compiled | bf16 | forward ms | backward ms | optimizer ms | step ms |"
    assert lines[4].startswith("| tiny | 32 | no | no | ") and lines[4].count("±") == 4


def test_memory_profile_says_it_needs_a_gpu(tmp_path: Path) -> None:
    done = run_script("memory_profile", [], tmp_path)
    assert (done.returncode, done.stdout.strip()) == (
        0, "memory_profile needs a CUDA GPU: it reads the GPU's memory allocator, and this machine has none.")
