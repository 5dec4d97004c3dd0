"""The TRL recipe's YAML parses into the configs ``accelerate launch`` would build."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from trl import ModelConfig, TrlParser

from minio3_ext.trl import MaskedGRPOConfig

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "trl"


def _recipe_module():
    spec = importlib.util.spec_from_file_location("minio3_trl_recipe", RECIPE / "grpo_qwen2_5_vl_7b.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_recipe_yaml_sets_the_paper_hyper_parameters(monkeypatch):
    module = _recipe_module()
    # CPU-only overrides: the machine running the tests has no GPU and no vLLM
    monkeypatch.setattr(sys, "argv", ["recipe", "--config", str(RECIPE / "grpo_qwen2_5_vl_7b.yaml"),
                                      "--bf16", "false", "--use_cpu", "true", "--use_vllm", "false"])
    recipe, args, model_args = TrlParser((module.RecipeArguments, MaskedGRPOConfig, ModelConfig)).parse_args_and_config()
    assert isinstance(args, MaskedGRPOConfig)
    assert (args.num_generations, args.learning_rate, args.lr_scheduler_type.value) == (16, 1e-6, "constant")
    assert (args.epsilon, args.epsilon_high, args.beta, args.loss_type, args.temperature) == (0.2, 0.3, 0.0, "dapo", 1.0)
    assert (args.max_turns, args.max_tool_calling_iterations) == (6, 5)
    assert args.mask_overturn and not args.include_masked_in_stats
    assert args.vllm_max_model_length == 32768 and args.vllm_mode == "colocate"
    # 4 rollouts x 16 accumulation x 8 GPUs = 512 rollouts = 32 prompts per optimizer step
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps * 8 == 32 * args.num_generations
    # one generation per optimizer step (the memory budget below; the paper generated 256 prompts for 8 steps)
    assert args.steps_per_generation == args.gradient_accumulation_steps
    assert args.offload_buffered_pixels
    assert recipe.view_max_pixels == 2_000_000 and recipe.dialect == "hermes"
    assert model_args.dtype == "bfloat16"


def test_every_yaml_setting_is_commented():
    for name in ("grpo_qwen2_5_vl_7b.yaml", "accelerate_zero3.yaml"):
        for line in (RECIPE / name).read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                assert "#" in line, f"{name}: uncommented setting {line.strip()!r}"


def test_buffered_rollouts_fit_an_80gb_gpu_next_to_zero3_and_vllm(monkeypatch):
    """The YAML's memory arithmetic, with pixel_values measured by the real Qwen2-VL image processor."""
    from PIL import Image
    from transformers import Qwen2VLImageProcessor

    from minio3_ext.core import ViewRules, resize_for_model

    module = _recipe_module()
    monkeypatch.setattr(sys, "argv", ["recipe", "--config", str(RECIPE / "grpo_qwen2_5_vl_7b.yaml"),
                                      "--bf16", "false", "--use_cpu", "true", "--use_vllm", "false"])
    recipe, args, _ = TrlParser((module.RecipeArguments, MaskedGRPOConfig, ModelConfig)).parse_args_and_config()
    view = ViewRules(max_pixels=recipe.view_max_pixels, min_pixels=recipe.view_min_pixels)
    first = resize_for_model(Image.new("RGB", (5200, 3467)), view, first=True)
    values = Qwen2VLImageProcessor(min_pixels=view.min_pixels, max_pixels=view.max_pixels)(
        images=[first], return_tensors="pt")["pixel_values"].numel()
    assert values * 2 / 2**20 == pytest.approx(22.8, abs=0.05)  # MiB per 2M-pixel view in bf16
    rollout = args.max_turns * values * 2  # every view at the cap
    buffered = args.per_device_train_batch_size * args.steps_per_generation * rollout
    shards = (2 * 8.29e9 + 2 * 7.62e9 + 12 * 7.62e9) / 8
    vllm = args.vllm_gpu_memory_utilization * 80e9
    assert shards + vllm + buffered <= 80e9 - 15e9  # and >= 15 GB left for activations


def test_attention_kernel_falls_back_to_sdpa_only_without_flash_attn(capsys):
    from transformers.utils import is_flash_attn_2_available

    from minio3_ext.trl.attention import attention_implementation

    assert attention_implementation("eager") == "eager" and attention_implementation(None) is None
    assert capsys.readouterr().err == ""
    usable = is_flash_attn_2_available()
    assert attention_implementation("flash_attention_2") == ("flash_attention_2" if usable else "sdpa")
    assert ("flash-attn is not usable here" in capsys.readouterr().err) is not usable


def _paper_shape_flags() -> list[str]:
    lines = [line for line in (RECIPE / "grpo_qwen2_5_vl_7b.yaml").read_text().splitlines()
             if "paper shape flags:" in line]
    assert len(lines) == 1, "the YAML names the paper's shape on one 'paper shape flags:' line"
    return lines[0].split("paper shape flags:", 1)[1].split()


def test_the_paper_shape_option_parses_into_eight_updates_per_generation(monkeypatch):
    """Issue 21: the YAML offers the released verl shape (256 prompts x 16 per generation,
    8 optimizer steps of 32 prompts), as flags on the same YAML."""
    module = _recipe_module()
    flags = _paper_shape_flags()
    monkeypatch.setattr(sys, "argv", ["recipe", "--config", str(RECIPE / "grpo_qwen2_5_vl_7b.yaml"), *flags,
                                      "--bf16", "false", "--use_cpu", "true", "--use_vllm", "false"])
    _, args, _ = TrlParser((module.RecipeArguments, MaskedGRPOConfig, ModelConfig)).parse_args_and_config()
    assert isinstance(args, MaskedGRPOConfig)
    gpus = 8
    prompts_per_generation = args.per_device_train_batch_size * args.steps_per_generation * gpus // args.num_generations
    prompts_per_update = args.per_device_train_batch_size * args.gradient_accumulation_steps * gpus // args.num_generations
    assert (prompts_per_generation, prompts_per_update) == (256, 32)
    assert args.steps_per_generation // args.gradient_accumulation_steps * args.num_iterations == 8


def test_the_recipe_says_how_its_algorithm_differs():
    text = (RECIPE / "grpo_qwen2_5_vl_7b.yaml").read_text()
    assert "same order" not in text
    for fact in ("32 prompts x 16", "256 prompts x 16", "fully on-policy", "clip never", "dynamic sampling",
                 "tool loop", "MODEL"):
        assert fact in text, fact
