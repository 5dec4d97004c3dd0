#!/usr/bin/env bash
# Cold-start SFT of Qwen2.5-VL-7B-Instruct with verl's SFT trainer (one node).
#
#   MODEL_PATH=Qwen/Qwen2.5-VL-7B-Instruct SFT_FILES=data/sft/sft.verl.parquet \
#   OUTPUT_DIR=checkpoints/coldstart GPUS_PER_NODE=8 bash recipes/verl/coldstart_sft.sh [extra overrides]
#
# Every override is in coldstart_sft.args, one per line with its reason. Note: the
# paper froze the vision tower and projector; verl 0.9.1's FSDP SFT engine has no
# switch for that (full fine-tune here).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export NNODES="${NNODES:-1}" GPUS_PER_NODE="${GPUS_PER_NODE:-8}"
mapfile -t OVERRIDES < <(python -m minio3_ext.verl.recipe "$HERE/coldstart_sft.args")
# fail before starting torchrun if the verl plugin did not register
minio3 doctor
exec torchrun --standalone --nnodes=1 --nproc_per_node="$GPUS_PER_NODE" \
    -m verl.trainer.sft_trainer "${OVERRIDES[@]}" "$@"
