#!/usr/bin/env bash
# One prepared GPU check of the TRL recipe (bench/gpu_check.py): MaskedGRPOTrainer on a random-init
# Qwen2.5-VL-7B-configured model in bf16 at the recipe's per-device settings, transformers generation.
#
#   bash bench/gpu_check.sh [--out gpu_check.json] [extra recipe flags, e.g. --max_completion_length 256]
#   bash bench/gpu_check.sh --tiny --out tiny.json      # CPU, tiny model: the same path, in seconds
#
# Offline. Needs torch, transformers, accelerate; the pure-Python wheels that machine lacks (trl,
# jmespath, datasets and its deps...) may be put in bench/gpu_wheels/ (or GPU_WHEELS=DIR): they are
# installed --no-index --no-deps into a private folder first. Ends within GPU_CHECK_TIMEOUT seconds
# (default 470: the check is planned to take at most 8 minutes on one H200).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHEELS="${GPU_WHEELS:-$ROOT/bench/gpu_wheels}"
SITE="${TMPDIR:-/tmp}/minio3-gpu-check-site"
ARGS=("$@")
if [[ ! " ${ARGS[*]} " =~ " --out " ]]; then ARGS+=(--out gpu_check.json); fi
if compgen -G "$WHEELS/*.whl" >/dev/null; then
    python -m pip install -q --no-index --no-deps --target "$SITE" "$WHEELS"/*.whl \
        || { echo "gpu_check.sh: could not install the wheels in $WHEELS; nothing run" >&2; exit 1; }
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" TRL_EXPERIMENTAL_SILENCE=1 TOKENIZERS_PARALLELISM=false
exec timeout --kill-after=10 "${GPU_CHECK_TIMEOUT:-470}" python "$ROOT/bench/gpu_check.py" "${ARGS[@]}"
