"""The released checkpoint's own words (../shared/released/prompts.md), end to end.

A 4-turn trajectory (zoom, failed zoom, zoom on an observation, answer) run through the
real eval runner in the ``minio3`` dialect, exported by the SFT exporter (what
``minio3 data sft`` writes) and rendered with a Qwen ChatML template, matches the
released rendering byte for byte. The only free part is the text of the error, which
the released prompt file marks as not part of the interface.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from minio3_ext.core.episode import EpisodeConfig
from minio3_ext.eval.runner import run_episode
from minio3_ext.eval.sft import trajectory_to_conversation, write_sft_data

RELEASED = (Path(__file__).parent / "fixtures" / "released_4turn.txt").read_text()
QUESTION = "<image>\nWhat is the color of the umbrella held by the man near the fountain?"
TURNS = [
    '<think>Look near the fountain.</think> <grounding>{"bbox_2d": [0.4, 0.3, 0.6, 0.5], "source": "original_image"}</grounding>',
    '<think>Bad box.</think> <grounding>{"bbox_2d": [0.6, 0.3, 0.4, 0.5], "source": "observation_1"}</grounding>',
    '<think>Zoom again.</think> <grounding>{"bbox_2d": [0.1, 0.1, 0.9, 0.9], "source": "observation_1"}</grounding>',
    "<think>It is red.</think> <answer>red</answer>",
]
_ERROR_RE = re.compile(r"Error Information: (.*?)\.\n", re.DOTALL)


def _run(tmp_path: Path, preset: str) -> dict:
    image = tmp_path / "fountain.png"
    Image.new("RGB", (1300, 867), (40, 90, 160)).save(image)
    turns = iter(TURNS)

    async def policy(messages):
        return next(turns)

    row = {"id": "fountain", "question": QUESTION, "image": str(image), "answer": "red"}
    return asyncio.run(run_episode(policy, row, EpisodeConfig.from_options(max_turns=6, preset=preset), crops_dir=tmp_path / "crops"))


def _render(messages: list[dict], tokenizer) -> str:
    """String contents with ``<image>`` slots → content parts → the tokenizer's ChatML."""
    parts_messages = []
    for m in messages:
        pieces = m["content"].split("<image>")
        content = []
        for i, piece in enumerate(pieces):
            if i:
                content.append({"type": "image"})
            if piece:
                content.append({"type": "text", "text": piece})
        parts_messages.append({"role": m["role"], "content": content})
    return tokenizer.apply_chat_template(parts_messages, tokenize=False)


@pytest.fixture(scope="module")
def tokenizer(tiny_qwen_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_qwen_dir, local_files_only=True)


def test_released_preset_renders_the_released_trajectory_exactly(tmp_path, tokenizer):
    traj = _run(tmp_path, "released")
    assert traj["termination_reason"] == "answered" and traj["answer"] == "red"
    messages, images = trajectory_to_conversation(traj, tmp_path / "sft_images")
    assert len(images) == 3  # the original and two crops: the failed action has no image
    rendered = _render(messages, tokenizer)
    error = traj["turns"][1]["action"]["error"]
    assert error and "inverted" in error
    expected = _ERROR_RE.sub(lambda m: f"Error Information: {error}.\n", RELEASED)
    assert rendered == expected


def test_strict_preset_differs_only_in_the_observation_number_after_a_failure(tmp_path, tokenizer):
    traj = _run(tmp_path, "strict")
    messages, _ = trajectory_to_conversation(traj, tmp_path / "sft_images")
    rendered = _render(messages, tokenizer)
    error = traj["turns"][1]["action"]["error"]
    expected = _ERROR_RE.sub(lambda m: f"Error Information: {error}.\n", RELEASED)
    # strict names the crop by the number the model must use for it: observation_2
    assert rendered == expected.replace("After the above Action 2, here is the the zoom-in image (Observation 3)",
                                        "After the above Action 2, here is the the zoom-in image (Observation 2)")


def test_sft_export_contains_the_released_strings(tmp_path):
    traj = {**_run(tmp_path, "released"), "verdict": 1}
    report = write_sft_data([traj], tmp_path / "sft")
    assert report["kept"] == 1
    row = json.loads((tmp_path / "sft" / "sft.trl.jsonl").read_text().splitlines()[0])
    text = json.dumps(row, ensure_ascii=False)
    released_user_turns = re.findall(r"<\|im_start\|>(?:system|user)\n(.*?)<\|im_end\|>", RELEASED, re.DOTALL)
    for turn in released_user_turns:
        for line in _ERROR_RE.sub("Error Information: ", turn).split("<|vision_start|><|image_pad|><|vision_end|>"):
            for piece in line.split("Error Information: "):
                assert json.dumps(piece, ensure_ascii=False)[1:-1] in text, piece
    for assistant in TURNS:
        assert json.dumps(assistant, ensure_ascii=False)[1:-1] in text
