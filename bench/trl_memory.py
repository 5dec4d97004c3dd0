"""TRL recipe: buffered pixel_values per GPU, MaskedGRPOTrainer's recipe vs stock TRL with the paper's batch (issue 12).

Pixel bytes are measured with the real Qwen2-VL image processor (patch 14, merge 2,
temporal patch 2: the same ``pixel_values`` shape as Qwen2.5-VL-7B's) on a 5200x3467
first view and a crop, resized by the core view rules of the recipe (2M / 40k pixels).
A rollout holds at most ``max_turns`` views. Baseline = TRL 1.16 defaults with the paper's
256 prompts x 16 per generation (``steps_per_generation`` 128: 512 rollouts per GPU, the
whole buffer on the GPU in the DeepSpeed dtype bf16). Ours = the shipped YAML
(``steps_per_generation`` 16, ``offload_buffered_pixels``: host RAM between micro-steps).
Goal: the worst-case GPU peak fits an 80 GB GPU next to the ZeRO-3 shards and vLLM.
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
    PER_DEVICE, MAX_TURNS = recipe["per_device_train_batch_size"], recipe["max_turns"]
    OURS_STEPS, VLLM = recipe["steps_per_generation"], recipe["vllm_gpu_memory_utilization"] * GPU_BYTES
    assert recipe["offload_buffered_pixels"], "the recipe must offload buffered pixels"
    worst = MAX_TURNS * first_n * BF16  # every view at the 2M-pixel cap
    typical = (first_n + (MAX_TURNS - 1) * zoom_n) * BF16
    stock_buffer = PER_DEVICE * STOCK_STEPS * worst  # on the GPU from scoring until the next generation ends
    ours_scoring = PER_DEVICE * OURS_STEPS * worst  # on the GPU only while TRL scores (vLLM asleep)
    ours_between = 0  # host RAM between micro-steps; one micro-batch (4 rollouts) moves up when it trains
    stock_peak = SHARDS + VLLM + stock_buffer
    ours_peak = SHARDS + VLLM + ours_scoring  # as if vLLM's reservation were held during scoring too
    return [
        Row("TRL pixels on GPU while vLLM generates (per GPU, worst case)", ours_between / GIB, stock_buffer / GIB,
            "GiB", "0", ours_between == 0,
            detail=f"first view {first_n * BF16 / 2**20:.1f} MiB bf16 ({first_n * 4 / 2**20:.1f} MiB fp32); "
                   f"a rollout <= {worst / 2**20:.0f} MiB ({typical / 2**20:.0f} MiB with 30%-side crops); "
                   f"stock: {PER_DEVICE}x{STOCK_STEPS} rollouts buffered on the GPU; ours in host RAM "
                   f"(<= {ours_scoring / GIB:.1f} GiB per process)"),
        Row("TRL GPU peak, shards + vLLM + buffered pixels (per GPU, worst case)", ours_peak / 1e9, stock_peak / 1e9,
            "GB", "<= 80 GB", ours_peak <= GPU_BYTES,
            detail=f"ZeRO-3 shards {SHARDS / 1e9:.1f} GB + vLLM {VLLM / 1e9:.0f} GB + pixels of "
                   f"{PER_DEVICE}x{OURS_STEPS} rollouts (ours, scoring) vs {PER_DEVICE}x{STOCK_STEPS} (stock); "
                   f"leaves {(GPU_BYTES - ours_peak) / 1e9:.0f} GB for activations"),
    ]
