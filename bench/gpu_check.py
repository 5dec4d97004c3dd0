"""One-GPU check of the TRL recipe: MaskedGRPOTrainer steps on a random-init model with
Qwen2.5-VL-7B's configuration, in bf16, at the recipe's per-device settings.

    bash bench/gpu_check.sh --out gpu_check.json          # one H200 (or any CUDA GPU with ~100 GB)
    bash bench/gpu_check.sh --tiny --out tiny.json        # the same path on CPU with the tiny model (tests)

Nothing is downloaded. The model is ``Qwen2_5_VLForConditionalGeneration`` built from
:data:`QWEN2_5_VL_7B` (the values of the public ``config.json`` of
Qwen/Qwen2.5-VL-7B-Instruct) with random weights; the tokenizer is the offline tiny
one of :mod:`minio3_ext.testing` (the Qwen special tokens; the model keeps the 7B's
152,064-row embedding, so sampled ids past the tokenizer decode to nothing). Settings
come from ``recipes/trl/grpo_qwen2_5_vl_7b.yaml`` through the recipe's own argument
classes, with :data:`GPU_OVERRIDES` on top (no vLLM on that machine: TRL's transformers
generation; a short completion budget so the check ends in minutes). Rows are
``minio3 synth`` images at the default 4000x3000 (first view at the recipe's 2M-pixel cap),
scored by the recipe's reward (rule judge). The JSON holds the peak GPU memory next to the
planning formula of the YAML / docs/trl.md, and generation tokens/s.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECIPE_PY = ROOT / "recipes" / "trl" / "grpo_qwen2_5_vl_7b.py"
RECIPE_YAML = ROOT / "recipes" / "trl" / "grpo_qwen2_5_vl_7b.yaml"

#: Qwen/Qwen2.5-VL-7B-Instruct config.json (public), minus the token ids (set from the tokenizer).
QWEN2_5_VL_7B: dict[str, Any] = {
    "text_config": {
        "vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
        "num_attention_heads": 28, "num_key_value_heads": 4, "hidden_act": "silu", "max_position_embeddings": 128000,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "use_sliding_window": False, "sliding_window": 32768,
        "max_window_layers": 28, "attention_dropout": 0.0, "initializer_range": 0.02, "use_cache": True,
        "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    },
    "vision_config": {
        "depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16, "in_chans": 3,
        "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2, "spatial_patch_size": 14,
        "temporal_patch_size": 2, "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2, "hidden_act": "silu",
    },
    "tie_word_embeddings": False,
}

#: Flags on top of the recipe YAML on the GPU machine (each with its reason).
GPU_OVERRIDES = [
    "--use_vllm", "false",               # no vLLM there: TRL's transformers generation path
    "--attn_implementation", "sdpa",     # flash-attn is not installed there
    "--max_completion_length", "512",    # the recipe's 24,576 would take the whole time budget in generation
    "--max_steps", "1",                  # one generation (64 rollouts) and one optimizer step (16 micro-steps)
    "--report_to", "none", "--save_strategy", "no", "--log_completions", "false", "--disable_tqdm", "true",
]
#: ``--tiny``: the same path on CPU with the tiny model, at test sizes.
TINY_OVERRIDES = [
    "--use_vllm", "false", "--attn_implementation", "sdpa", "--use_cpu", "true", "--bf16", "false",
    "--num_generations", "2", "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1",
    "--steps_per_generation", "1", "--max_completion_length", "16", "--max_steps", "1",
    "--gradient_checkpointing", "false", "--view_max_pixels", str(28 * 28 * 16), "--view_min_pixels", str(28 * 28 * 4),
    "--report_to", "none", "--save_strategy", "no", "--log_completions", "false", "--disable_tqdm", "true",
]
GPU_BYTES_PLANNED = 80e9  # the recipe plans for 8 x 80 GB GPUs


def _recipe_module():
    spec = importlib.util.spec_from_file_location("minio3_trl_grpo_recipe", RECIPE_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _missing_packages() -> list[str]:
    names = ["torch", "transformers", "accelerate", "trl", "datasets", "jmespath", "minio3_ext"]
    return [n for n in names if importlib.util.find_spec(n) is None]


def build_model(tiny: bool, tokenizer, dtype, device):
    """Random-init Qwen2.5-VL (7B configuration, or the tiny one), token ids from ``tokenizer``."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    if tiny:
        from minio3_ext.testing import build_model as build_tiny

        return build_tiny(tokenizer, seed=0).to(device=device, dtype=dtype)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in
           ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|endoftext|>", "<|im_end|>")}
    config = Qwen2_5_VLConfig(**QWEN2_5_VL_7B, image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                              vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
                              bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                              pad_token_id=ids["<|endoftext|>"])
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    return model


def planning_formula(params: int, trainable: int, optimizer_bytes_per_param: float, args, view_values: int,
                     gpus: int, vllm_bytes: float) -> dict[str, float]:
    """The YAML's per-GPU memory formula: weights 2 B/param, grads 2 B/trainable param, optimizer
    states, sharded over ``gpus`` (ZeRO-3), + vLLM's reservation + the buffered generation's pixels
    (every view at the cap, bf16) while TRL scores it."""
    weights, grads, optimizer = 2 * params, 2 * trainable, optimizer_bytes_per_param * trainable
    pixels = args.per_device_train_batch_size * args.steps_per_generation * args.max_turns * view_values * 2
    total = (weights + grads + optimizer) / gpus + vllm_bytes + pixels
    return {"weights_gb": weights / gpus / 1e9, "grads_gb": grads / gpus / 1e9, "optimizer_gb": optimizer / gpus / 1e9,
            "vllm_gb": vllm_bytes / 1e9, "buffered_pixels_gb": pixels / 1e9, "total_gb": total / 1e9}


def run(out: Path, tiny: bool, extra: list[str]) -> dict[str, Any]:
    import torch
    from trl import ModelConfig, TrlParser

    from minio3_ext.core import ImageBank
    from minio3_ext.data.synthetic import generate
    from minio3_ext.judge import Judge, JudgeConfig
    from minio3_ext.testing import build_processor
    from minio3_ext.trl import AccuracyReward, MaskedGRPOConfig, MaskedGRPOTrainer, ZoomEnvironment

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    cuda = torch.cuda.is_available() and not tiny
    if not tiny and not cuda:
        raise SystemExit("gpu_check: no CUDA device (use --tiny for the CPU path)")
    device = "cuda" if cuda else "cpu"
    work = Path(tempfile.mkdtemp(prefix="minio3-gpu-check-"))
    recipe_mod = _recipe_module()
    argv = ["--config", str(RECIPE_YAML), "--output_dir", str(work / "out"), "--model_name_or_path", "random-init",
            "--train_data", str(work / "data" / "rows.jsonl"), *(TINY_OVERRIDES if tiny else GPU_OVERRIDES), *extra]
    recipe, args, model_args = TrlParser((recipe_mod.RecipeArguments, MaskedGRPOConfig, ModelConfig)).parse_args_and_config(argv)
    dtype = torch.float32 if tiny else getattr(torch, model_args.dtype or "bfloat16")

    prompts = args.per_device_train_batch_size * args.steps_per_generation // args.num_generations
    size = (640, 480) if tiny else (4000, 3000)
    if generate(work / "data", max(prompts, 1), seed=0, width=size[0], height=size[1]) != Path(recipe.train_data):
        raise RuntimeError("gpu_check: minio3 synth wrote its rows elsewhere than --train_data")
    episode = recipe_mod.episode_config(recipe, args)  # the recipe's own environment rules
    view = episode.view
    processor = build_processor(min_pixels=recipe.view_min_pixels, max_pixels=recipe.view_max_pixels)
    processor.tokenizer.padding_side = "left"
    if recipe.dialect == "minio3":
        recipe_mod.use_minio3_dialect(processor, episode)
    else:
        recipe_mod.use_tool_chat_template(processor)

    t0 = time.perf_counter()
    torch.manual_seed(0)
    model = build_model(tiny, processor.tokenizer, dtype, device)
    if recipe.freeze_vision_tower:
        for p in model.model.visual.parameters():
            p.requires_grad_(False)
    if cuda:
        torch.cuda.synchronize()
    build_s = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    generated = {"tokens": 0, "seconds": 0.0, "calls": 0}

    class TimedTrainer(MaskedGRPOTrainer):
        """Times TRL's own generation call (no behaviour change)."""

        def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            result = super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations, has_tool_images)
            if cuda:
                torch.cuda.synchronize()
            generated["seconds"] += time.perf_counter() - start
            generated["tokens"] += sum(len(ids) for ids in result[0])
            generated["calls"] += 1
            return result

    bank = ImageBank(max_bytes=int(recipe.image_bank_gib * (1 << 30)), view_rules=view)
    trainer = TimedTrainer(model, reward_funcs=[AccuracyReward(Judge(JudgeConfig.from_env()))], args=args,
                           train_dataset=recipe_mod.load_dataset_rows(recipe.train_data, episode),
                           processing_class=processor,
                           environment_factory=partial(ZoomEnvironment, config=episode, bank=bank))
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer.train()
    if cuda:
        torch.cuda.synchronize()
    train_s = time.perf_counter() - t0

    state_bytes = sum(t.numel() * t.element_size() for s in trainer.optimizer.state.values()
                      for t in s.values() if torch.is_tensor(t) and t.dim() > 0)
    opt_bytes = state_bytes / max(trainable, 1)
    first = bank.first_view(str(Path(trainer.train_dataset[0]["image_path"])))
    view_values = processor.image_processor(images=[first], return_tensors="pt")["pixel_values"].numel()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    result = {
        "mode": "tiny-cpu" if tiny else "7b-gpu",
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "torch": torch.__version__,
        "model": {"params": params, "trainable": trainable, "dtype": str(dtype).replace("torch.", ""),
                  "build_s": round(build_s, 1)},
        "settings": {k: getattr(args, k) for k in ("per_device_train_batch_size", "num_generations",
                                                   "gradient_accumulation_steps", "steps_per_generation",
                                                   "max_completion_length", "max_turns", "max_steps", "bf16",
                                                   "gradient_checkpointing", "offload_buffered_pixels")},
        "overrides": (TINY_OVERRIDES if tiny else GPU_OVERRIDES) + extra,
        "steps": trainer.state.global_step,
        "train_s": round(train_s, 1),
        "generation": {"tokens": generated["tokens"], "seconds": round(generated["seconds"], 2),
                       "calls": generated["calls"],
                       "tokens_per_s": round(generated["tokens"] / generated["seconds"], 1) if generated["seconds"] else None},
        "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2) if cuda else None,
        "peak_gpu_reserved_gb": round(torch.cuda.max_memory_reserved() / 1e9, 2) if cuda else None,
        "optimizer_state_bytes_per_trainable_param": round(opt_bytes, 2),
        "first_view_pixel_values": view_values,
        "planning_formula": {
            "readme_recipe_8x80gb": planning_formula(params, trainable, 12, args, view_values, 8,
                                                     args.vllm_gpu_memory_utilization * GPU_BYTES_PLANNED),
            "this_run_1gpu_no_vllm": planning_formula(params, trainable, opt_bytes, args, view_values, 1, 0.0),
        },
        "last_logged_metrics": logged[-1] if logged else None,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--tiny", action="store_true", help="the tiny model on CPU at test sizes (no GPU needed)")
    opts, extra = parser.parse_known_args(argv)
    missing = _missing_packages()
    if missing:
        print(f"gpu_check: missing packages: {', '.join(missing)} (carry their wheels; see docs/smoke.md)", file=sys.stderr)
        return 2
    result = run(Path(opts.out), opts.tiny, extra)
    print(json.dumps({k: result[k] for k in ("mode", "device", "steps", "peak_gpu_memory_gb", "generation")}))
    print(f"wrote {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
