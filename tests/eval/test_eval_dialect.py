"""The eval runner tells the model the rules its answers are read by (one dialect)."""

from __future__ import annotations

import asyncio

from PIL import Image

from minio3_ext.core.dialect import get_dialect
from minio3_ext.core.episode import EpisodeConfig
from minio3_ext.eval.runner import run_episode


def _run(tmp_path, config, turns):
    image = tmp_path / "img.png"
    Image.new("RGB", (800, 600), (10, 20, 30)).save(image)
    seen = []
    replies = iter(turns)

    async def policy(messages):
        seen.append(list(messages))
        return next(replies)

    row = {"id": "x", "question": "What?", "image": str(image), "answer": "a"}
    return asyncio.run(run_episode(policy, row, config)), seen


def test_thousand_coordinates_are_what_the_prompt_describes_and_what_is_parsed(tmp_path):
    config = EpisodeConfig.from_options(max_turns=3, coords="thousand")
    traj, seen = _run(tmp_path, config, ['<grounding>{"bbox_2d": [0, 0, 500, 500], "source": "original_image"}</grounding>',
                                         "<answer>a</answer>"])
    system = seen[0][0]["content"][0]["text"]
    assert system == get_dialect("minio3", coords="thousand").system_prompt()
    assert "1000" in system and "1.0" not in system
    # the box the prompt describes as the top-left quarter is the top-left quarter of the raw image
    assert traj["turns"][0]["action"]["box"] == [0, 0, 400, 300]


def test_extra_tools_are_in_the_prompt_the_runner_sends(tmp_path):
    config = EpisodeConfig.from_options(max_turns=3, tools=("zoom", "rotate"))
    traj, seen = _run(tmp_path, config, ['<tool_call>{"name": "rotate", "arguments": {"angle": 90}}</tool_call>',
                                         "<answer>a</answer>"])
    assert "rotate" in seen[0][0]["content"][0]["text"]
    assert traj["turns"][0]["action"]["kind"] == "rotate" and traj["tools"] == ["zoom", "rotate"]
    obs_message = seen[1][-1]
    assert obs_message["role"] == "user" and any(p["type"] == "image" for p in obs_message["content"])
