"""Every view the verl plugin hands the model is a fixed point of verl's own
``process_image`` (``qwen_vl_utils.fetch_image``'s ``smart_resize``) under the recipe's
pixel limits and under Qwen2.5-VL's defaults, so generation and training see the same
image-token count; the first view ignores EXIF orientation as verl does."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image
from verl.utils.dataset.vision_utils import process_image

from minio3_ext.core import Episode, EpisodeConfig, ViewRules, load_image, resize_for_model
from minio3_ext.verl.agent_loop import first_view

RECIPE = (40_000, 2_000_000)      # rows' min/max pixels (minio3_ext.core.images.ViewRules)
QWEN25_VL = (3_136, 12_845_056)   # Qwen2.5-VL's processor / qwen_vl_utils defaults


def _sizes(n: int, seed: int = 0) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        w, h = (int(round(10 ** rng.uniform(1.3, 3.55))) for _ in range(2))
        if max(w, h) / min(w, h) < 150:
            out.append((w, h))
    return out


def _plugin_views(size: tuple[int, int], rng: random.Random) -> list[Image.Image]:
    """The first view and two observations (a zoom on the original, a zoom on the zoom)."""
    raw = Image.new("RGB", size, (90, 120, 150))
    rules = ViewRules()
    view = resize_for_model(raw, rules, first=True)  # what first_view() returns for a file
    episode = Episode(raw, EpisodeConfig(max_turns=10), first_view=view)
    views = [view]
    for source in ("original_image", "observation_1"):
        x0, y0 = rng.random() * 0.6, rng.random() * 0.6
        box = [round(x0, 3), round(y0, 3), round(x0 + 0.05 + rng.random() * 0.35, 3), round(y0 + 0.05 + rng.random() * 0.35, 3)]
        obs = episode.act(episode.parse_call("zoom", {"bbox_2d": box, "source": source}))
        if obs is not None and obs.image is not None:
            views.append(obs.image)
    return views


@pytest.fixture(scope="module")
def many_views() -> list[tuple[tuple[int, int], Image.Image]]:
    rng = random.Random(1)
    return [(size, view) for size in _sizes(160) for view in _plugin_views(size, rng)]


@pytest.mark.parametrize("limits", [RECIPE, QWEN25_VL], ids=["recipe", "qwen2.5-vl"])
def test_process_image_is_the_identity_on_every_view(limits, many_views):
    assert len(many_views) > 400
    for size, view in many_views:
        out = process_image({"image": view, "min_pixels": limits[0], "max_pixels": limits[1]})
        assert out.size == view.size, (size, view.size, out.size)


@pytest.mark.parametrize("limits", [RECIPE, QWEN25_VL], ids=["recipe", "qwen2.5-vl"])
def test_image_tokens_equal_image_grid_thw(limits, tiny_qwen_dir):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_qwen_dir, local_files_only=True)
    pad = processor.image_token
    rng = random.Random(2)
    for size in _sizes(12, seed=3):
        for view in _plugin_views(size, rng):
            text = f"<|vision_start|>{pad}<|vision_end|>"
            out = processor(text=[text], images=[view], min_pixels=limits[0], max_pixels=limits[1], return_tensors="pt")
            t, gh, gw = out["image_grid_thw"][0].tolist()
            assert (gw * 14, gh * 14) == view.size  # the processor did not resize the view
            n_tokens = int((out["input_ids"] == processor.tokenizer.convert_tokens_to_ids(pad)).sum())
            assert n_tokens == t * gh * gw // 4 == (view.width // 28) * (view.height // 28)


def test_first_view_ignores_exif_orientation_like_verl(tmp_path):
    """A JPEG stored 900×500 with EXIF orientation 6 (display: rotated to 500×900):
    the first view keeps the stored orientation, as verl's fetch_image does, so boxes
    are cut from the pixels the model was shown."""
    rng = np.random.default_rng(0)
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rng.integers(0, 256, (500, 900, 3), dtype=np.uint8)).save(path, exif=exif.tobytes())
    rules = ViewRules(min_pixels=RECIPE[0], max_pixels=RECIPE[1])
    view = first_view(str(path), rules)
    verl_view = process_image({"image": str(path), "min_pixels": RECIPE[0], "max_pixels": RECIPE[1]})
    assert view.width > view.height and verl_view.width > verl_view.height
    assert view.size == resize_for_model(load_image(path), rules, first=True).size
    assert view.width % 28 == view.height % 28 == 0
    # one shared object per image and rules: the rollouts of a prompt hold it once
    assert first_view(str(path), rules) is view
    # the episode cuts its crops from the same raw pixels
    episode = Episode(load_image(path), EpisodeConfig(), first_view=view)
    obs = episode.act(episode.parse_call("zoom", {"bbox_2d": [0, 0, 0.5, 1]}))
    assert obs.image is not None and episode.records[-1].box == (0, 0, 450, 500)
