"""Each training script runs a few steps on the CPU with the tiny fixture model and leaves a log and
safetensors weights that load back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("transformers")

from reference.alignment import dpo, expert_iteration, grpo, sft  # noqa: E402
from reference.alignment.rollout import load_policy  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "assignments" / "alignment" / "fixtures"
PROBLEMS = [
    {"question": "What is 2+3?", "answer": "5", "solution": "2+3=5\n#### 5"},
    {"question": "What is 10-4?", "answer": "6", "solution": "10-4=6\n#### 6"},
    {"question": "What is 3*3?", "answer": "9", "solution": "3*3=9\n#### 9"},
    {"question": "What is 8/2?", "answer": "4", "solution": "8/2=4\n#### 4"},
]


@pytest.fixture
def run(tmp_path):
    data = tmp_path / "problems.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))

    def run(script, *extra: str) -> list[dict]:
        out = tmp_path / script.__name__.rsplit(".", 1)[1]
        script.main(["--model", str(FIXTURES / "tiny_llama"), "--tokenizer", str(FIXTURES / "tiny_tokenizer"),
                     "--train", str(data), "--valid", str(data), "--out", str(out), "--steps", "2", "--eval-every", "2",
                     "--eval-problems", "2", "--max-new-tokens", "6", "--device", "cpu", "--dtype", "float32", *extra])
        load_policy(out / "final")  # the checkpoint loads back
        assert (out / "final" / "model.safetensors").exists()
        return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]

    return run


def test_grpo(run):
    log = run(grpo, "--prompts-per-step", "2", "--group-size", "2", "--microbatches", "2", "--epochs-per-rollout", "2")
    assert {"train_reward", "loss", "response_chars", "clip_fraction", "groups_all_equal", "grad_norm"} <= set(log[1])
    assert {"valid_accuracy", "valid_entropy", "valid_response_chars", "valid_format_rate"} <= set(log[-1])


def test_sft(run):
    log = run(sft, "--batch-size", "4", "--microbatches", "2")
    assert log[0]["loss"] > 0 and "valid_accuracy" in log[-1]


def test_expert_iteration(run):
    log = run(expert_iteration, "--rounds", "1", "--questions", "2", "--samples", "2")
    assert log[0]["round"] == 1 and 0.0 <= log[0]["solved_share"] <= 1.0


def test_dpo(run, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "What is 2+3?", "chosen": "5", "rejected": "6"}) + "\n")
    log = run(dpo, "--pairs-file", str(pairs), "--batch-size", "2")
    assert log[0]["pairs"] == 1 and 0.0 <= log[-1]["pairs_ranked"] <= 1.0 and "valid_accuracy" in log[-1]


def test_grpo_stops_at_its_time_budget(run):
    """--max-minutes ends the run after the step that crosses it, evaluates it and still saves weights."""
    log = run(grpo, "--prompts-per-step", "2", "--group-size", "2", "--microbatches", "1", "--max-minutes", "0")
    assert [r["step"] for r in log] == [0, 1]
    assert "valid_accuracy" in log[-1]


def test_a_tokenizer_without_a_pad_token_pads_with_eos(tmp_path):
    """Some conversions (SmolLM2's GGUF under transformers 5.17) save no pad token; batched
    sampling must still work, padding with the end-of-sequence token it masks out anyway."""
    from reference.alignment.rollout import load_tokenizer, sample

    folder = tmp_path / "tokenizer"
    shutil.copytree(FIXTURES / "tiny_tokenizer", folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    del config["pad_token"]
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    tokenizer = load_tokenizer(folder)
    assert tokenizer.pad_token == "<eos>"
    responses = sample(load_policy(FIXTURES / "tiny_llama"), tokenizer, ["1+1=", "a longer prompt"], 2, 4, 1.0)
    assert len(responses) == 4


@pytest.mark.parametrize("script", [grpo, sft, expert_iteration, dpo])
def test_a_missing_model_or_problems_file_is_one_sentence(script, tmp_path, capsys):
    missing = str(tmp_path / "nope.jsonl")
    with pytest.raises(SystemExit) as exited:
        script.main(["--model", str(FIXTURES / "tiny_llama"), "--train", missing, "--valid", missing, "--out", str(tmp_path)])
    assert exited.value.code == 2
    assert f"argument --train: no file at {missing} (make them first: lmcourse data prepare math" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["--model", str(tmp_path / "none"), "--train", missing, "--valid", missing, "--out", str(tmp_path)])
    assert "argument --model: no folder at" in capsys.readouterr().err
