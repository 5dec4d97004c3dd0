"""TRL recipe: pixel_values per GPU — a **model** (arithmetic, not a measurement; issues 12, 21).

Pixel bytes per view are measured with the real Qwen2-VL image processor (patch 14,
merge 2, temporal patch 2: the same ``pixel_values`` shape as Qwen2.5-VL-7B's) on a
5200x3467 first view and a crop, resized by the recipe's view rules (2M / 40k pixels); a
rollout holds at most ``max_turns`` views; everything else is arithmetic over the YAML.
The GPU check measures the real figures.

What is on the GPU while vLLM generates, per GPU (TRL 1.16, read in its source):

- the tool loop: before each vLLM call of ``GRPOTrainer._tool_call_loop`` TRL runs the
  image processor over every active rollout's images and moves the result to the device
  (``super()._prepare_inputs``, bf16 under DeepSpeed), although vLLM reads the PIL images:
  up to generation-batch rollouts x a rollout's views, whatever ``offload_buffered_pixels``;
- stock TRL only: the previous generation batch's buffered ``pixel_values``
  (``self._buffered_inputs`` is replaced after the next generation); with
  ``offload_buffered_pixels`` they wait in host RAM.

Rows, worst case (every view at the 2M-pixel cap): the recipe's batch (32 prompts x 16
per generation: 4 x 16 rollouts per GPU) against stock TRL at the same batch, and the
paper's batch (256 prompts x 16: ``--steps_per_generation 128``, 4 x 128 rollouts per GPU).
"""

from __future__ import annotations

from pathlib import Path

from bench.common import Row

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "trl" / "grpo_qwen2_5_vl_7b.yaml"

GIB = 1 << 30
GPU_BYTES = 80e9
SHARDS = (2 * 8.29e9 + 2 * 7.62e9 + 12 * 7.62e9) / 8  # bf16 weights, bf16 grads, fp32 Adam (ViT frozen), ZeRO-3 / 8
STOCK_STEPS = 128  # the paper's 256 prompts x 16 per generation on 8 GPUs x 4 rollouts
BF16 = 2


def _recipe() -> dict:
    import yaml

    return yaml.safe_load(RECIPE.read_text())


def _view_values(quick: bool) -> tuple[int, int]:
    """pixel_values elements of a 2M-pixel first view and of a 30%-side crop, through the real processor."""
    from PIL import Image
    from transformers import Qwen2VLImageProcessor

    from minio3_ext.core import ViewRules, crop, resize_for_model

    view = ViewRules(max_pixels=2_000_000, min_pixels=40_000)
    raw = Image.new("RGB", (5200, 3467), "white")
    first = resize_for_model(raw, view, first=True)
    zoom = resize_for_model(crop(raw, (0.1, 0.1, 0.4, 0.4))[0], view)
    processor = Qwen2VLImageProcessor(min_pixels=view.min_pixels, max_pixels=view.max_pixels)
    first_n = processor(images=[first], return_tensors="pt")["pixel_values"].numel()
    zoom_n = processor(images=[zoom], return_tensors="pt")["pixel_values"].numel()
    return first_n, zoom_n


def run(quick: bool) -> list[Row]:
    first_n, zoom_n = _view_values(quick)
    recipe = _recipe()
    per_device, max_turns = recipe["per_device_train_batch_size"], recipe["max_turns"]
    ours_steps, vllm = recipe["steps_per_generation"], recipe["vllm_gpu_memory_utilization"] * GPU_BYTES
    assert recipe["offload_buffered_pixels"], "the recipe must offload buffered pixels"
    worst = max_turns * first_n * BF16  # every view at the 2M-pixel cap
    typical = (first_n + (max_turns - 1) * zoom_n) * BF16

    def generating(steps: int, offload: bool) -> float:
        """Pixel bytes on the GPU while vLLM generates: the tool loop's, plus the previous buffer in stock TRL."""
        batch = per_device * steps * worst
        return batch + (0 if offload else batch)

    ours, stock = generating(ours_steps, True), generating(ours_steps, False)
    paper, paper_stock = generating(STOCK_STEPS, True), generating(STOCK_STEPS, False)
    peak = lambda pixels: SHARDS + vllm + pixels  # noqa: E731
    rollouts = f"{per_device}x{ours_steps}"
    return [
        Row(f"TRL model: pixels on GPU while vLLM generates, recipe batch ({rollouts} rollouts/GPU)", ours / GIB,
            stock / GIB, "GiB", "", True,
            detail=f"model. first view {first_n * BF16 / 2**20:.1f} MiB bf16 ({first_n * 4 / 2**20:.1f} MiB fp32); a "
                   f"rollout <= {worst / 2**20:.0f} MiB ({typical / 2**20:.0f} MiB with 30%-side crops). Ours: TRL's "
                   "tool loop moves the active rollouts' images to the GPU before each vLLM call (not offloadable); "
                   "baseline: stock TRL at the same batch, which also keeps the previous generation's buffer there"),
        Row(f"TRL model: GPU peak, shards + vLLM + those pixels, recipe batch ({rollouts})", peak(ours) / 1e9,
            peak(stock) / 1e9, "GB", "<= 80 GB", peak(ours) <= GPU_BYTES,
            detail=f"model. ZeRO-3 shards {SHARDS / 1e9:.1f} GB + vLLM {vllm / 1e9:.0f} GB + pixels; baseline: stock "
                   f"TRL at the recipe's batch; leaves {(GPU_BYTES - peak(ours)) / 1e9:.0f} GB for activations"),
        Row(f"TRL model: GPU peak at the paper's batch ({per_device}x{STOCK_STEPS}, --steps_per_generation "
            f"{STOCK_STEPS})", peak(paper) / 1e9, peak(paper_stock) / 1e9, "GB", "", True,
            detail=f"model. 256 prompts x 16 per generation, 8 updates: over 80 GB in the worst case with or without "
                   f"offloading (the tool loop alone holds {paper / GIB:.1f} GiB); with 30%-side crops the tool loop "
                   f"holds {per_device * STOCK_STEPS * typical / GIB:.1f} GiB"),
        Row(f"TRL model: host RAM per process for offloaded pixels, recipe vs paper batch",
            per_device * ours_steps * worst / GIB, per_device * STOCK_STEPS * worst / GIB, "GiB", "", True,
            detail="model. offload_buffered_pixels keeps the generation batch's pixel_values in host RAM in bf16"),
    ]
