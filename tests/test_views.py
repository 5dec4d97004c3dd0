"""Every model-facing view is a fixed point of Qwen2.5-VL's ``smart_resize``.

Under the recipe's limits (40k–2M px) and the checkpoint's own preprocessor defaults
(3,136–12,845,056 px), so the image-token count cannot differ between generation
(vLLM, the server's processor) and the training forward.
"""

from __future__ import annotations

import random

from PIL import Image
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

from minio3_ext.core import Episode, EpisodeConfig, ViewRules, resize_for_model
from minio3_ext.core.images import model_size

LIMITS = {"recipe": (40_000, 2_000_000), "qwen2.5-vl defaults": (3_136, 12_845_056)}


def _fixed_point(size: tuple[int, int]) -> bool:
    w, h = size
    return all(smart_resize(h, w, factor=28, min_pixels=lo, max_pixels=hi) == (h, w) for lo, hi in LIMITS.values())


def test_every_view_size_is_a_smart_resize_fixed_point_under_both_limit_sets():
    rng = random.Random(0)
    rules = ViewRules()
    sizes = [(rng.randint(1, 12_000), rng.randint(1, 12_000)) for _ in range(3000)]
    sizes += [(rng.randint(1, 60), rng.randint(1, 60)) for _ in range(300)] + [(5200, 3467), (1, 1), (28, 5000)]
    bad = [(w, h) for w, h in sizes if max(w, h) / min(w, h) < 150 and not _fixed_point(model_size(w, h, rules))]
    assert not bad, f"{len(bad)} view sizes change under smart_resize, e.g. {bad[:5]}"


def test_views_the_episode_produces_are_fixed_points():
    rng = random.Random(1)
    original = Image.new("RGB", (5200, 3467), (120, 130, 140))
    first = resize_for_model(original, ViewRules(), first=True)
    assert _fixed_point(first.size)
    ep = Episode(original, EpisodeConfig(max_turns=40, max_images=40), first_view=first)
    for _ in range(30):
        x0, y0 = rng.random() * 0.8, rng.random() * 0.8
        box = [round(x0, 3), round(y0, 3), round(x0 + 0.01 + rng.random() * (0.99 - x0), 3),
               round(y0 + 0.01 + rng.random() * (0.99 - y0), 3)]
        source = rng.choice(["original_image"] + [f"observation_{i}" for i in range(1, ep.num_observations + 1)])
        obs = ep.step('<grounding>{"bbox_2d": %s, "source": "%s"}</grounding>' % (box, source))
        if obs is not None and obs.image is not None:
            assert _fixed_point(obs.image.size), (box, obs.image.size)


def test_the_qwen_processor_keeps_each_view_grid(tiny_qwen_dir):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_qwen_dir, local_files_only=True)
    rng = random.Random(2)
    for _ in range(20):
        w, h = rng.randint(30, 3000), rng.randint(30, 3000)
        view = resize_for_model(Image.new("RGB", (w, h)), ViewRules())
        for lo, hi in LIMITS.values():
            out = processor.image_processor(images=[view], min_pixels=lo, max_pixels=hi, return_tensors="np")
            t, gh, gw = out["image_grid_thw"][0]
            assert (gw * 14, gh * 14) == view.size
