#!/usr/bin/env bash
# Cold-start SFT of Qwen2.5-VL-7B-Instruct with verl's SFT trainer (torchrun).
#
#   MODEL_PATH=Qwen/Qwen2.5-VL-7B-Instruct SFT_FILES=data/sft/sft.verl.parquet \
#   OUTPUT_DIR=checkpoints/coldstart GPUS_PER_NODE=8 bash recipes/verl/coldstart_sft.sh [extra overrides]
#
# Several machines: run the same command on every node with NNODES, NODE_RANK (0..NNODES-1),
# MASTER_ADDR (node 0's address) and MASTER_PORT (default 29500). verl's SFT trainer takes
# its world size from torchrun, so NNODES/GPUS_PER_NODE go to torchrun, not to overrides.
#
# Every override is in coldstart_sft.args, one per line with its reason; the vision tower
# and projector are frozen as in the paper (model.external_lib=minio3_ext.verl.freeze_vision).
# The RL recipe starts from OUTPUT_DIR/global_step_N/huggingface (N = the last step).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export NNODES="${NNODES:-1}" GPUS_PER_NODE="${GPUS_PER_NODE:-8}"
# compose first: a missing variable or args file stops here (the error names it), nothing launched
if ! COMPOSED="$(python -m minio3_ext.verl.recipe "$HERE/coldstart_sft.args")"; then
    echo "coldstart_sft.sh: could not compose the overrides from $HERE/coldstart_sft.args (see above); nothing launched" >&2
    exit 1
fi
mapfile -t OVERRIDES <<<"$COMPOSED"
# fail before starting torchrun if the verl plugin did not register
minio3 doctor || { echo "coldstart_sft.sh: minio3 doctor failed (see above); nothing launched" >&2; exit 1; }
if [[ "$NNODES" == 1 ]]; then
    LAUNCH=(--standalone --nnodes=1)
else
    : "${NODE_RANK:?set NODE_RANK (0..NNODES-1) on every node}" "${MASTER_ADDR:?set MASTER_ADDR to node 0}"
    LAUNCH=(--nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" --master_port="${MASTER_PORT:-29500}")
fi
exec torchrun "${LAUNCH[@]}" --nproc_per_node="$GPUS_PER_NODE" \
    -m verl.trainer.sft_trainer "${OVERRIDES[@]}" "$@"
