#!/usr/bin/env bash
# Mini-o3 masked-GRPO RL on one node (verl starts a local Ray cluster).
#
#   MODEL_PATH=checkpoints/coldstart/global_step_N/huggingface TRAIN_FILES=data/train.verl.parquet \
#   VAL_FILES=data/visual_probe_hard.verl.parquet bash recipes/verl/masked_grpo.sh [extra overrides]
#
# Variants (layered after the main list):
#   SMOKE=1  tiny model, 1 GPU, 2 steps (masked_grpo_smoke.args)
#   EVAL=1   validation only, 32-turn budget (masked_grpo_eval.args)
#   RELEASED=1  the released code's training math (masked_grpo_released.args; with EVAL=1:
#            its 12-turn / 12-image evaluation, masked_grpo_released_eval.args)
# Judge: rule-only unless MINIO3_JUDGE_BASE_URL / MINIO3_JUDGE_MODEL name an
# OpenAI-compatible endpoint (see minio3_ext.judge.JudgeConfig); Ray workers inherit
# the environment.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export NNODES="${NNODES:-1}" GPUS_PER_NODE="${GPUS_PER_NODE:-8}"
ARGS=("$HERE/masked_grpo.args")
if [[ "${RELEASED:-0}" == 1 ]]; then ARGS+=("$HERE/masked_grpo_released.args"); fi
if [[ "${SMOKE:-0}" == 1 ]]; then ARGS+=("$HERE/masked_grpo_smoke.args"); export GPUS_PER_NODE=1; fi
if [[ "${EVAL:-0}" == 1 ]]; then ARGS+=("$HERE/masked_grpo_eval.args"); fi
if [[ "${RELEASED:-0}" == 1 && "${EVAL:-0}" == 1 ]]; then ARGS+=("$HERE/masked_grpo_released_eval.args"); fi
# compose first: a missing variable or args file stops here (the error names it), nothing launched
if ! COMPOSED="$(python -m minio3_ext.verl.recipe "${ARGS[@]}")"; then
    echo "masked_grpo.sh: could not compose the overrides from ${ARGS[*]} (see above); nothing launched" >&2
    exit 1
fi
mapfile -t OVERRIDES <<<"$COMPOSED"
# verl swallows plugin import errors: fail here, loudly, instead of inside a Ray worker
minio3 doctor || { echo "masked_grpo.sh: minio3 doctor failed (see above); nothing launched" >&2; exit 1; }
exec python -m verl.trainer.main_ppo "${OVERRIDES[@]}" "$@"
