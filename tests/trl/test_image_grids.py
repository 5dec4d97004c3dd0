"""Image grids equal between vLLM and the trainer (issue 12, item 7).

vLLM preprocesses with the checkpoint's own limits (Qwen2.5-VL: 3,136–12,845,056 pixels),
the trainer with the processor the recipe builds (40k–2M). Every view the zoom
environment hands TRL — first views and observations of random sizes, through
``reset`` and the tool methods — must come out of both with the same ``image_grid_thw``,
and one that ``smart_resize`` leaves unchanged (so the image-token count is the view's).
Before views were snapped to multiples of 28 a large share of sizes differed.
"""

from __future__ import annotations

import random

import pytest
from PIL import Image

from minio3_ext.core import EpisodeConfig, ImageBank, ViewRules
from minio3_ext.trl import ZoomEnvironment

CHECKPOINT_LIMITS = (3_136, 12_845_056)  # Qwen2.5-VL-7B-Instruct preprocessor_config.json
RECIPE_LIMITS = (40_000, 2_000_000)      # recipes/trl/grpo_qwen2_5_vl_7b.yaml view_min/max_pixels


def _image_processor(model_dir, limits):
    from transformers import AutoProcessor

    lo, hi = limits
    return AutoProcessor.from_pretrained(model_dir, local_files_only=True,
                                         size={"shortest_edge": lo, "longest_edge": hi}).image_processor


def _images(content):
    return [p["image"] for p in content if isinstance(content, list) and p.get("type") == "image"]


@pytest.mark.slow  # two processors over ~100 views up to 2M pixels (~12 s)
def test_every_view_the_environment_produces_has_the_same_grid_under_both_limit_sets(tiny_qwen_dir, tmp_path):
    rng = random.Random(7)
    vllm_side = _image_processor(tiny_qwen_dir, CHECKPOINT_LIMITS)
    trainer_side = _image_processor(tiny_qwen_dir, RECIPE_LIMITS)
    view = ViewRules(min_pixels=RECIPE_LIMITS[0], max_pixels=RECIPE_LIMITS[1])
    env = ZoomEnvironment(EpisodeConfig.from_options(dialect="hermes", max_turns=32, max_images=32, max_context_tokens=None,
                                        view=view, tools=("zoom", "rotate")), ImageBank(view_rules=view))
    views, differing = [], []
    for i in range(24):
        w = rng.choice([rng.randint(30, 400), rng.randint(400, 3000), rng.randint(3000, 4500)])
        h = max(28, min(4500, int(w * rng.choice([0.05, 0.3, 0.75, 1.0, 1.33, 3.0, 12.0]) * rng.uniform(0.8, 1.25))))
        path = tmp_path / f"img{i}.png"
        Image.new("RGB", (w, h), (i, 2 * i % 256, 90)).save(path)
        views += _images(env.reset(image_path=str(path), question="what is it?"))
        for _ in range(3):
            x0, y0 = rng.random() * 0.9, rng.random() * 0.9
            box = [x0, y0, min(1.0, x0 + rng.choice([0.02, 0.1, 0.5])), min(1.0, y0 + rng.choice([0.02, 0.1, 0.5]))]
            views += _images(env.zoom(bbox_2d=box, source=rng.choice(["original_image", f"observation_{env.episode.num_observations}"])
                                      if env.episode.num_observations else "original_image"))
        views += _images(env.rotate(angle=90))
    assert len(views) > 60
    for img in views:
        a = vllm_side(images=[img], return_tensors="pt")["image_grid_thw"][0].tolist()
        b = trainer_side(images=[img], return_tensors="pt")["image_grid_thw"][0].tolist()
        inside = all(lo <= img.width * img.height <= hi for lo, hi in (CHECKPOINT_LIMITS, RECIPE_LIMITS))
        if a != b or [a[1] * 14, a[2] * 14] != [img.height, img.width] or not inside:
            differing.append((img.size, a, b))
    assert not differing, f"{len(differing)} of {len(views)} views get different grids, e.g. {differing[:5]}"
