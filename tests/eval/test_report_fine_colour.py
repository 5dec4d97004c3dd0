"""Saved crops and the trajectory page keep 1-px colour detail (JPEG 4:4:4): the nested-zoom checker stays readable."""

from __future__ import annotations

import asyncio
import json

import numpy as np
from PIL import Image

from minio3_ext.core import EpisodeConfig, ImageBank
from minio3_ext.data.nested_zoom import generate, load_rows, oracle_boxes, view_rules
from minio3_ext.eval.report import write_trajectory_html
from minio3_ext.eval.runner import run_episode


def test_saved_crops_and_page_images_keep_the_checker_colour(tmp_path):
    (row,) = load_rows(generate(tmp_path / "data", 1, seed=0, depths=(1,)))
    config = EpisodeConfig(max_turns=3, dialect="hermes", max_context_tokens=None, view=view_rules(56))
    bank = ImageBank(view_rules=config.view)
    seen = []
    (box,) = oracle_boxes(row)

    async def policy(messages):
        images = [p["image"] for m in messages for p in m["content"] if p.get("type") == "image"]
        if len(images) == 1:
            return "<tool_call>" + json.dumps({"name": "zoom", "arguments": {"bbox_2d": list(box)}}) + "</tool_call>"
        seen.append(np.asarray(images[-1], dtype=int))
        return f"<answer>{row['solution']}</answer>"

    t = asyncio.run(run_episode(policy, row, config, bank, crops_dir=tmp_path / "crops", token_counter=None))
    (view,) = seen
    saved = np.asarray(Image.open(t["turns"][0]["observation_image"]).convert("RGB"), dtype=int)
    assert np.abs(saved - view).mean() < 10  # 4:2:0 chroma subsampling turns the checker grey (~110)

    page = write_trajectory_html([t], tmp_path / "page.html")
    shown = np.asarray(Image.open(page.parent / "page_files" / "t0_obs1.jpg").convert("RGB"), dtype=int)
    assert shown.shape == view.shape and np.abs(shown - view).mean() < 12
