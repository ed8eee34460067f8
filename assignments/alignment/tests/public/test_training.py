"""A whole GRPO step on the tiny model, packed SFT data, answer parsing and the DPO loss, each
checked against a direct computation written out here."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests import producers

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
TEMPLATE = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    "\n\n### Instruction:\n{prompt}\n\n### Response:\n"
)


def sequence_log_probs(model, tokenizer, prompts, responses):
    """Σ over response tokens of log π(token), per sequence, by the plainest code possible."""
    totals = []
    for prompt, response in zip(prompts, responses):
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        r = tokenizer(response, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([p + r])
        log_probs = F.log_softmax(model(ids).logits[0, :-1], dim=-1).gather(-1, ids[0, 1:, None])[:, 0]
        totals.append((log_probs[len(p) - 1 :], len(r)))
    return totals


@pytest.mark.problem("grpo_train_step")
def test_grpo_train_step_reinforce_with_std_normalization(student):
    out = student.run(producers.grpo_train_step, str(FIXTURES), gradient_accumulation_steps=2, max_grad_norm=1.0)
    model, tokenizer = producers.load_model(FIXTURES), producers.load_tokenizer(FIXTURES)
    prompts = [p for p in producers.GRPO_PROMPTS for _ in range(4)]
    truths = [t for t in producers.GRPO_TRUTHS for _ in range(4)]
    rewards = torch.tensor([producers.contains_reward(r, t)["reward"] for r, t in zip(producers.GRPO_RESPONSES, truths)])
    groups = rewards.reshape(2, 4)
    advantages = ((groups - groups.mean(1, keepdim=True)) / (groups.std(1, keepdim=True) + 1e-6)).reshape(-1)
    per_sequence = sequence_log_probs(model, tokenizer, prompts, producers.GRPO_RESPONSES)
    loss = sum(-a * lp.mean() for a, (lp, _) in zip(advantages, per_sequence)) / len(prompts)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.5 * p.grad
    torch.testing.assert_close(out["loss"], loss.detach(), rtol=1e-4, atol=1e-6)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(out["weights"][name], value, rtol=1e-4, atol=1e-6)
    assert out["grads_none"]


@pytest.mark.problem("packed_sft_dataset")
def test_packed_sft_dataset(student):
    out = student.run(producers.packed_windows, str(FIXTURES), 32, 4)
    tokenizer = producers.load_tokenizer(FIXTURES)
    stream = []
    for line in (FIXTURES / "sft_tiny.jsonl").read_text().splitlines():
        example = __import__("json").loads(line)
        stream += tokenizer(TEMPLATE.format(prompt=example["prompt"]) + example["response"], add_special_tokens=False)["input_ids"]
        stream.append(tokenizer.eos_token_id)
    count = (len(stream) - 1) // 32
    assert len(out["input_ids"]) == count
    for i in range(count):
        assert out["input_ids"][i].tolist() == stream[i * 32 : (i + 1) * 32]
        assert out["labels"][i].tolist() == stream[i * 32 + 1 : (i + 1) * 32 + 1]
    assert out["num_batches"] == -(-count // 4)
    assert sum(shape[0] for shape in out["batch_shapes"]) == count


MMLU = {"subject": "math", "question": "2+2?", "options": ["3", "4", "5", "22"], "answer": "B"}


@pytest.mark.problem("response_parsing")
@pytest.mark.parametrize("output, letter", [
    ("The correct answer is B", "B"),
    ("I think the answer is (c).", "C"),
    ("The answer is A. No wait, the answer is D", "D"),
    ("I do not know", None),
])
def test_parse_mmlu_response(student, output, letter):
    assert student.run_parse_mmlu_response(mmlu_example=MMLU, model_output=output) == letter


@pytest.mark.problem("response_parsing")
@pytest.mark.parametrize("output, number", [
    ("She has 12 apples and buys 30 more: 42", "42"),
    ("That costs $1,234.50 in total.", "1234.50"),
    ("The temperature fell to -7 degrees", "-7"),
    ("no numbers here", None),
])
def test_parse_gsm8k_response(student, output, number):
    assert student.run_parse_gsm8k_response(model_output=output) == number


@pytest.mark.problem("dpo_loss")
def test_per_instance_dpo_loss(student):
    prompt, chosen, rejected = "What is 2+2?", "2+2 equals 4.", "I do not know."
    out = student.run(producers.dpo_loss, str(FIXTURES), 0.5, prompt, chosen, rejected)
    lm, ref, tokenizer = producers.load_model(FIXTURES), producers.load_model(FIXTURES, "tiny_llama_ref"), producers.load_tokenizer(FIXTURES)
    text = TEMPLATE.format(prompt=prompt)
    responses = [chosen + "<eos>", rejected + "<eos>"]
    (w, _), (lose, _) = sequence_log_probs(lm, tokenizer, [text] * 2, responses)
    with torch.no_grad():
        (w_ref, _), (lose_ref, _) = sequence_log_probs(ref, tokenizer, [text] * 2, responses)
    loss = -F.logsigmoid(0.5 * ((w.sum() - w_ref.sum()) - (lose.sum() - lose_ref.sum())))
    loss.backward()
    torch.testing.assert_close(out["loss"], loss.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["policy_grad"], lm.lm_head.weight.grad, rtol=1e-4, atol=1e-7)
    assert not out["ref_has_grad"]
