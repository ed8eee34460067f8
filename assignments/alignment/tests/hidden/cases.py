"""Inputs of the hidden snapshot tests, shared by the tests and ``scripts/make_snapshots.py``.

Inputs only: the options of each ``run_grpo_train_step`` variant and the DPO triples.
"""

from __future__ import annotations

GRPO_VARIANTS: dict[str, dict] = {
    "dr_grpo_constant": {"gradient_accumulation_steps": 4, "max_grad_norm": None, "advantage_normalizer": "none",
                         "loss_normalization": "constant", "normalization_constant": 64.0},
    "maxrl_mean": {"gradient_accumulation_steps": 1, "max_grad_norm": 0.5, "advantage_normalizer": "mean"},
    "grpo_clip": {"gradient_accumulation_steps": 2, "max_grad_norm": 1.0, "importance_reweighting_method": "grpo",
                  "cliprange": 0.2},
    "gspo": {"gradient_accumulation_steps": 2, "max_grad_norm": 1.0, "importance_reweighting_method": "gspo",
             "cliprange": 0.1},
    "noclip_group2": {"gradient_accumulation_steps": 2, "max_grad_norm": 2.0, "importance_reweighting_method": "noclip",
                      "group_size": 2},
}

DPO_CASES = [
    (0.1, "Name a fruit.", "An apple.", "A car."),
    (2.0, "What is 3*3?", "9", "3*3 is 33, a long and wrong answer."),
]
