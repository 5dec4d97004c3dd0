"""``bench/gpu_check.sh --tiny``: the GPU check's own path (recipe YAML through the recipe's
argument classes, MaskedGRPOTrainer with TRL's generation, the JSON it writes) on CPU with
the tiny model; and the 7B configuration it builds has Qwen2.5-VL-7B's parameter counts
(counted on the meta device: nothing is allocated)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("minio3_gpu_check", ROOT / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_7b_configuration_has_the_recipe_parameter_counts():
    """8.29e9 parameters, 7.62e9 trainable with the vision tower frozen: the numbers the
    recipe's memory formula uses (grpo_qwen2_5_vl_7b.yaml)."""
    import torch

    from minio3_ext.testing import build_tokenizer

    model = _module().build_model(False, build_tokenizer(), torch.bfloat16, "meta")
    total = sum(p.numel() for p in model.parameters())
    visual = sum(p.numel() for p in model.model.visual.parameters())
    assert total / 1e9 == pytest.approx(8.29, abs=0.005)
    assert (total - visual) / 1e9 == pytest.approx(7.62, abs=0.005)
    assert model.config.text_config.vocab_size == 152064 and model.config.text_config.num_hidden_layers == 28
    assert next(model.parameters()).dtype == torch.bfloat16


@pytest.mark.slow
def test_gpu_check_tiny_mode_writes_the_json(tmp_path):
    out = tmp_path / "tiny.json"
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), "--tiny", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["mode"] == "tiny-cpu" and result["steps"] == 1 and result["peak_gpu_memory_gb"] is None
    gen = result["generation"]
    assert gen["tokens"] > 0 and gen["tokens_per_s"] > 0 and gen["calls"] >= 1
    formula = result["planning_formula"]
    assert set(formula) == {"readme_recipe_8x80gb", "this_run_1gpu_no_vllm"}
    assert formula["this_run_1gpu_no_vllm"]["vllm_gb"] == 0 and formula["readme_recipe_8x80gb"]["vllm_gb"] == 36
    assert result["optimizer_state_bytes_per_trainable_param"] == 8  # fp32 AdamW m and v
    assert result["last_logged_metrics"]["num_tokens"] > 0


def test_planning_formula_is_the_readme_number(monkeypatch):
    """With the 7B counts, 8 GPUs and vLLM at 45% of 80 GB, the check's formula gives the
    docs/trl.md's / YAML's worst case: 15.4 GB shards + 36 GB vLLM + 9.2 GB pixels = 60.6 GB."""
    from PIL import Image
    from transformers import Qwen2VLImageProcessor
    from trl import ModelConfig, TrlParser

    from minio3_ext.core import ViewRules, resize_for_model
    from minio3_ext.trl import MaskedGRPOConfig

    gpu_check = _module()
    recipe_args = gpu_check._recipe_module().RecipeArguments
    recipe, args, _ = TrlParser((recipe_args, MaskedGRPOConfig, ModelConfig)).parse_args_and_config(
        ["--config", str(gpu_check.RECIPE_YAML), "--bf16", "false", "--use_cpu", "true", "--use_vllm", "false"])
    view = ViewRules(max_pixels=recipe.view_max_pixels, min_pixels=recipe.view_min_pixels)
    first = resize_for_model(Image.new("RGB", (5200, 3467)), view, first=True)
    values = Qwen2VLImageProcessor(min_pixels=view.min_pixels, max_pixels=view.max_pixels)(
        images=[first], return_tensors="pt")["pixel_values"].numel()
    f = gpu_check.planning_formula(int(8.29e9), int(7.62e9), 12, args, values, 8, 0.45 * 80e9)
    assert f["weights_gb"] + f["grads_gb"] + f["optimizer_gb"] == pytest.approx(15.4, abs=0.05)
    assert f["total_gb"] == pytest.approx(60.6, abs=0.1)
    assert "60.6 GB" in (ROOT / "docs" / "trl.md").read_text()
