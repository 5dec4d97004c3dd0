"""Oracle SFT rows and the collator that carries tool-turn images into TRL's VLM collator."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset

from minio3_ext.core import EpisodeConfig, ImageBank, ViewRules, crop
from minio3_ext.testing import load_tiny_qwen
from minio3_ext.trl import oracle_box, oracle_conversation
from minio3_ext.trl.sft import ToolImageCollator, assistant_label_mask, fill_tool_images

VIEW = ViewRules(max_pixels=28 * 28 * 48, min_pixels=28 * 28 * 8)


@pytest.fixture(scope="module")
def conversation(synthetic_rows):
    cfg = EpisodeConfig(max_turns=3, dialect="hermes", max_context_tokens=None, view=VIEW)
    return oracle_conversation(synthetic_rows[0], cfg, ImageBank(view_rules=VIEW))


def test_oracle_box_contains_the_target(synthetic_rows):
    for row in synthetic_rows:
        x0, y0, x1, y1 = oracle_box(row)
        tx0, ty0, tx1, ty1 = row["target_bbox"]
        w, h = row["width"], row["height"]
        assert x0 * w <= tx0 and y0 * h <= ty0 and x1 * w >= tx1 - 1 and y1 * h >= ty1 - 1


def test_oracle_crop_is_the_target_region_of_the_raw_image(conversation, synthetic_rows):
    row = synthetic_rows[0]
    first, obs = conversation["images"]
    raw = ImageBank().get(row["images"][0])
    raw_crop, _ = crop(raw, oracle_box(row))
    assert obs.width * obs.height >= raw_crop.width * raw_crop.height  # enlarged to the pixel floor, never shrunk
    assert first.size != raw.size  # the first view is the resized original
    assert conversation["messages"][-1]["content"][0]["text"].endswith(f"<answer>{row['solution']}</answer>")


def test_collator_renders_both_images_through_a_datasets_round_trip(conversation, tiny_qwen_dir):
    _, processor = load_tiny_qwen(tiny_qwen_dir)
    stored = Dataset.from_list([conversation])[0]  # Arrow adds None fields to the message dicts
    filled = fill_tool_images(stored)
    assert len(filled["images"]) == 1
    assert np.array_equal(np.asarray(filled["messages"][3]["content"][1]["image"]), np.asarray(conversation["images"][1]))
    batch = ToolImageCollator(processor, assistant_only=True)([stored])
    grid = batch["image_grid_thw"]
    assert grid.shape[0] == 2
    image_tokens = int((batch["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")).sum())
    assert image_tokens == int(grid.prod(dim=1).sum()) // processor.image_processor.merge_size ** 2
    # the loss covers the assistant turns only: the tool call and the answer, never an image token
    text = processor.tokenizer.decode(batch["input_ids"][0][batch["labels"][0] != -100])
    assert "<tool_call>" in text and "<answer>" in text
    assert "<|image_pad|>" not in text and "Observation" not in text


def test_assistant_label_mask():
    ids = __import__("torch").tensor([[9, 1, 2, 5, 5, 3, 9, 1, 7, 5, 3, 1, 2, 6, 3]])
    mask = assistant_label_mask(ids, start=[1, 2], end=3)
    assert mask[0].nonzero().flatten().tolist() == [3, 4, 5, 13, 14]


def test_placeholder_mismatch_is_reported():
    with pytest.raises(ValueError, match="2 image placeholders but 1 images"):
        fill_tool_images({"messages": [{"role": "user", "content": [{"type": "image"}]},
                                       {"role": "tool", "content": [{"type": "image"}]}], "images": [object()]})
