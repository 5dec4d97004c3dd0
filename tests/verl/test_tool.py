"""The zoom ``BaseTool`` loaded by verl's own ``initialize_tools_from_config`` from the
shipped YAML, run through ``create/execute/release`` on real image files."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from verl.tools.schemas import ToolResponse
from verl.tools.tool_registry import initialize_tools_from_config

import minio3_ext.verl as mv
from minio3_ext.core import ViewRules, load_image, resize_for_model
from minio3_ext.verl.tool import ZoomTool


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def zoom() -> ZoomTool:
    (tool,) = initialize_tools_from_config(str(mv.config_path("zoom_tool.yaml")))
    return tool


@pytest.fixture(scope="module")
def big_image(tmp_path_factory) -> str:
    """2000×1500 = 3M pixels: above the 2M budget, so the model's view is a resized copy."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("zoom") / "big.png"
    Image.fromarray(rng.integers(0, 256, (1500, 2000, 3), dtype=np.uint8)).save(path)
    return str(path)


def _same(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))


def test_yaml_loads_our_tool_with_a_schema_verl_accepts(zoom):
    assert isinstance(zoom, ZoomTool) and zoom.name == "zoom"
    schema = zoom.tool_schema.model_dump(exclude_unset=True, exclude_none=True)
    params = schema["function"]["parameters"]
    assert params["required"] == ["bbox_2d"]
    # verl drops items/minItems: the format must be in the description text
    assert "[0, 1]" in params["properties"]["bbox_2d"]["description"]
    assert zoom.episode_config.view.max_pixels == 2_000_000 and not zoom.episode_config.dialect.clamp


def test_crops_come_from_the_raw_image_and_chain(zoom, big_image):
    raw = load_image(big_image)
    iid, created = run(zoom.create(create_kwargs={"image": big_image}))
    assert isinstance(created, ToolResponse)
    resp, reward, info = run(zoom.execute(iid, {"bbox_2d": [0.1, 0.2, 0.3, 0.4], "source": "original_image"}))
    (crop1,) = resp.image
    # 400×300 raw pixels, under the budget: the raw crop snapped to multiples of 28 (a
    # crop of the 2M-pixel resized view would be ~326×245)
    assert crop1.size == (392, 308)
    assert _same(crop1, resize_for_model(raw.crop((200, 300, 600, 600)), ViewRules()))
    assert "Observation 1" in resp.text and reward == 0.0 and info == {}
    resp2, _, _ = run(zoom.execute(iid, {"bbox_2d": [0.5, 0.5, 1.0, 1.0], "source": "observation_1"}))
    (crop2,) = resp2.image
    # 200×150 = 30k pixels < 40k minimum: enlarged from the raw sub-crop
    expected = raw.crop((400, 450, 600, 600))
    assert crop2.width * crop2.height >= 40_000 and crop2.width % 28 == crop2.height % 28 == 0
    assert _same(crop2, resize_for_model(expected, ViewRules()))
    run(zoom.release(iid))
    resp3, _, _ = run(zoom.execute(iid, {"bbox_2d": [0, 0, 1, 1]}))
    assert resp3.image is None and "create()" in resp3.text


@pytest.mark.parametrize(
    "params, message",
    [
        ({"bbox_2d": [0.5, 0.5, 1.5, 1.0]}, "outside the valid range"),
        ({"bbox_2d": [0.6, 0.1, 0.2, 0.3]}, "empty or inverted"),
        ({"bbox_2d": [0, 0, 1]}, "4 numbers"),
        ({"bbox_2d": [0, 0, 1, 1], "source": "observation_3"}, "does not exist"),
        ({}, "missing 'bbox_2d'"),
    ],
)
def test_bad_calls_answer_with_an_error_text_and_no_image(zoom, big_image, params, message):
    iid, _ = run(zoom.create(create_kwargs={"image": big_image}))
    resp, _, info = run(zoom.execute(iid, params))
    assert resp.image is None and message in resp.text and message in info["error"]
    run(zoom.release(iid))


def test_rows_without_an_image_or_with_a_broken_one_do_not_raise(zoom, tmp_path):
    iid, _ = run(zoom.create(create_kwargs={}))
    resp, _, _ = run(zoom.execute(iid, {"bbox_2d": [0, 0, 1, 1]}))
    assert "tools_kwargs.zoom.create_kwargs.image" in resp.text
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    iid, _ = run(zoom.create(create_kwargs={"image": str(bad)}))
    resp, _, _ = run(zoom.execute(iid, {"bbox_2d": [0, 0, 1, 1]}))
    assert resp.image is None and "broken.png" in resp.text


def test_chain_survives_verl_creating_an_instance_per_call(zoom, synthetic_rows):
    """verl's ToolAgentLoop calls create/execute/release around every call and passes
    ``agent_data``: the trajectory's raw observations must live there."""
    path = synthetic_rows[0]["images"][0]
    raw = load_image(path)
    agent_data = SimpleNamespace()
    crops = []
    for args in ({"bbox_2d": [0.0, 0.0, 0.5, 0.5]}, {"bbox_2d": [0.5, 0.5, 1.0, 1.0], "source": "observation_1"}):
        iid, _ = run(zoom.create(create_kwargs={"image": path}))
        resp, _, _ = run(zoom.execute(iid, args, agent_data=agent_data))
        run(zoom.release(iid))
        crops.append(resp.image[0])
    w, h = raw.size
    assert _same(crops[0], resize_for_model(raw.crop((0, 0, w // 2, h // 2)), ViewRules()))
    q = raw.crop((w // 4, h // 4, w // 2, h // 2))
    assert _same(crops[1], resize_for_model(q, ViewRules()))


def test_unknown_tool_option_is_named(tmp_path):
    cfg = tmp_path / "tool.yaml"
    cfg.write_text("tools:\n  - class_name: minio3_ext.verl.tool.ZoomTool\n    config:\n      type: native\n      max_pixel: 5\n")
    with pytest.raises(ValueError, match="max_pixel"):
        initialize_tools_from_config(str(cfg))


def _tool_yaml(tmp_path, **options) -> str:
    body = "".join(f"      {k}: {v}\n" for k, v in options.items())
    cfg = tmp_path / "tool.yaml"
    cfg.write_text("tools:\n  - class_name: minio3_ext.verl.tool.ZoomTool\n    config:\n      type: native\n" + body)
    return str(cfg)


@pytest.mark.parametrize("key, value, message", [
    # verl's rollout config owns the budgets: the tool YAML value would be replaced
    ("max_turns", 3, r"'max_turns' cannot be set here, it is taken from actor_rollout_ref.rollout.multi_turn.max_assistant_turns"),
    ("max_context_tokens", 100, r"'max_context_tokens' cannot be set here, it is taken from actor_rollout_ref.rollout.response_length"),
    # both rule sets have these: the bare name used to reach the crop rules only
    ("min_side", 56, r"'min_side' is ambiguous; use 'crop_min_side' \(crops\) or 'view_min_side'"),
    ("max_aspect_ratio", 50, r"'max_aspect_ratio' is ambiguous"),
])
def test_a_tool_option_it_would_replace_or_misroute_is_refused_in_one_line(tmp_path, key, value, message):
    with pytest.raises(ValueError, match=message) as e:
        initialize_tools_from_config(_tool_yaml(tmp_path, **{key: value}))
    assert "\n" not in str(e.value) and "valid keys: [" in str(e.value) and "'view_min_side'" in str(e.value)


def test_crop_and_view_keys_reach_the_rules_they_name(tmp_path):
    (tool,) = initialize_tools_from_config(_tool_yaml(tmp_path, crop_min_side=5, view_min_side=56,
                                                      crop_max_aspect_ratio=20, view_max_aspect_ratio=50))
    crop, view = tool.episode_config.crop, tool.episode_config.view
    assert (crop.min_side, crop.max_aspect_ratio) == (5, 20.0)
    assert (view.min_side, view.max_aspect_ratio) == (56, 50.0)
