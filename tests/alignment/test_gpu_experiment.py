"""The GPU experiment's script runs end to end on the CPU, shrunk through its environment, with
the tiny fixture model standing in for SmolLM2; its plot script draws the result."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "assignments" / "alignment" / "fixtures"
SCRIPTS = REPO / "assignments" / "alignment" / "scripts"
PROBLEMS = [{"question": f"What is {a}+{a}?", "answer": str(2 * a), "solution": f"{a}+{a}={2 * a}\n#### {2 * a}"}
            for a in range(1, 5)]


def test_zero_shot_sft_grpo_final_and_the_curve(tmp_path):
    model = tmp_path / "model"  # weights and tokenizer in one folder, as convert_smollm2 leaves them
    shutil.copytree(FIXTURES / "tiny_llama", model)
    shutil.copytree(FIXTURES / "tiny_tokenizer", model, dirs_exist_ok=True)
    data = tmp_path / "math"
    data.mkdir()
    for split in ("train", "valid"):
        (data / f"{split}.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHON": sys.executable, "MODEL": str(model), "DATA": str(data), "RUNS": str(runs),
           "VALID_PROBLEMS": "2", "MAX_NEW_TOKENS": "4", "SFT_STEPS": "2", "SFT_BATCH": "2", "GRPO_MINUTES": "0",
           "GRPO_PROMPTS": "2", "GRPO_GROUP": "2", "GRPO_MICROBATCHES": "1", "GRPO_EVAL_PROBLEMS": "2"}
    subprocess.run(["bash", str(SCRIPTS / "gpu_experiment.sh")], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=600)
    assert (runs / "DONE").exists()
    for stage in ("zeroshot", "sft", "grpo", "final"):
        last = json.loads((runs / stage / "log.jsonl").read_text().splitlines()[-1])
        assert "valid_accuracy" in last, stage
    curve = tmp_path / "curve.png"
    subprocess.run([sys.executable, str(SCRIPTS / "plot_experiment.py"), str(runs), "--out", str(curve)], check=True,
                   capture_output=True, timeout=120)
    assert curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # several run folders: GRPO's curves side by side; a folder without a GRPO log is named
    compared = tmp_path / "compare.png"
    subprocess.run([sys.executable, str(SCRIPTS / "plot_experiment.py"), str(runs), str(runs), "--out", str(compared)],
                   check=True, capture_output=True, timeout=120)
    assert compared.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = subprocess.run([sys.executable, str(SCRIPTS / "plot_experiment.py"), str(runs), str(tmp_path), "--out",
                              str(compared)], capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and f"no log for the 'grpo' stage under {tmp_path}" in missing.stderr
