#!/usr/bin/env bash
# Mini-o3 masked-GRPO RL on several nodes through an existing Ray cluster.
#
# 1. on every node, in the same environment (minio3-ext[verl] installed at the same
#    absolute path and version, data and model paths visible at the same place,
#    MINIO3_JUDGE_* exported if used), or ship the package with Ray's runtime env
#    (`ray job submit --runtime-env-json '{"py_modules": ["/path/to/minio3_ext"]}' -- ...`):
#      head:    ray start --head --port=6379
#      workers: ray start --address=<head-ip>:6379
# 2. on the head node:
#      NNODES=4 GPUS_PER_NODE=8 MODEL_PATH=... TRAIN_FILES=... VAL_FILES=... \
#      bash recipes/verl/masked_grpo_multinode.sh [extra overrides]
#
# Same overrides as the single-node recipe (masked_grpo.args); verl attaches to the
# running cluster because RAY_ADDRESS is set.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${NNODES:?set NNODES to the number of machines in the Ray cluster}"
export NNODES GPUS_PER_NODE="${GPUS_PER_NODE:-8}" RAY_ADDRESS="${RAY_ADDRESS:-auto}"
ARGS=("$HERE/masked_grpo.args")
# RELEASED=1: the released code's training math (masked_grpo_released.args)
if [[ "${RELEASED:-0}" == 1 ]]; then ARGS+=("$HERE/masked_grpo_released.args"); fi
# compose first: a missing variable or args file stops here (the error names it), nothing launched
if ! COMPOSED="$(python -m minio3_ext.verl.recipe "${ARGS[@]}")"; then
    echo "masked_grpo_multinode.sh: could not compose the overrides from ${ARGS[*]} (see above); nothing launched" >&2
    exit 1
fi
mapfile -t OVERRIDES <<<"$COMPOSED"
# check the plugin on this node, then that every Ray node imports the same minio3_ext and
# verl (version and path) and registers the plugin: exits 1 naming the nodes that differ
minio3 doctor || { echo "masked_grpo_multinode.sh: minio3 doctor failed (see above); nothing launched" >&2; exit 1; }
python -m minio3_ext.verl.cluster || { echo "masked_grpo_multinode.sh: the Ray nodes differ (see above); nothing launched" >&2; exit 1; }
exec python -m verl.trainer.main_ppo "${OVERRIDES[@]}" "$@"
