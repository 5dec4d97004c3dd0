"""Issue 20: the viewer recuts the crops of a trajectory that used another tool than zoom
through the core episode, so a rotation and the zooms after it are shown as the model saw
them (the viewer replayed zoom boxes only: the rotated observation and every crop of it
were "not recoverable")."""

from __future__ import annotations

import asyncio
import json

import numpy as np
from PIL import Image, ImageDraw

from minio3_ext.core import EpisodeConfig, ImageBank, ViewRules
from minio3_ext.eval.report import write_trajectory_html
from minio3_ext.eval.runner import run_episode

VIEW = ViewRules(max_pixels=1600 * 1600, min_pixels=28 * 28 * 4)


def _image(path):
    img = Image.new("RGB", (480, 360), (250, 250, 250))
    draw = ImageDraw.Draw(img)
    draw.rectangle([20, 20, 200, 120], fill=(220, 30, 30))   # top left: red
    draw.rectangle([260, 200, 460, 340], fill=(30, 30, 220))  # bottom right: blue
    draw.ellipse([200, 40, 320, 160], fill=(30, 180, 30))
    img.save(path)
    return path


def _call(name, **arguments):
    return "<think>look</think><tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"


def test_crops_after_a_rotation_are_recut_through_the_episode(tmp_path):
    row = {"doc_id": "r", "problem": "what colour?", "solution": "red", "images": [str(_image(tmp_path / "im.png"))]}
    config = EpisodeConfig.from_options(max_turns=6, dialect="hermes", tools=("zoom", "rotate"), max_context_tokens=None, view=VIEW)
    script = iter([_call("zoom", bbox_2d=[0.0, 0.0, 0.75, 0.6]),
                   _call("rotate", angle=90, source="observation_1"),
                   _call("zoom", bbox_2d=[0.0, 0.5, 0.5, 1.0], source="observation_2"),
                   _call("zoom", bbox_2d=[0.5, 0.5, 1.0, 1.0]),
                   "<answer>red</answer>"])

    async def policy(messages):
        return next(script)

    t = asyncio.run(run_episode(policy, row, config, ImageBank(view_rules=VIEW), crops_dir=tmp_path / "crops",
                                token_counter=None))
    assert [turn["action"]["kind"] for turn in t["turns"]] == ["zoom", "rotate", "zoom", "zoom", "answer"]
    saved = {turn["observation_index"]: turn.pop("observation_image") for turn in t["turns"]
             if turn["observation_index"] is not None}  # the record without its crops: the page recuts them
    page = write_trajectory_html([t], tmp_path / "page.html")
    assert "not recoverable" not in page.read_text()
    for index, path in saved.items():
        shown = Image.open(tmp_path / "page_files" / f"t0_obs{index}.jpg").convert("RGB")
        seen = Image.open(path).convert("RGB").resize(shown.size)  # what the model saw
        diff = np.abs(np.asarray(shown, dtype=int) - np.asarray(seen, dtype=int)).mean()
        assert diff < 6, (index, diff)
