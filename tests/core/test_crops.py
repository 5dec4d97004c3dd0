"""Relative box -> raw pixels -> crop, single crops and chains through an Episode."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minio3_ext.core import ActionError, CropRules, Episode, EpisodeConfig, box_to_pixels, crop, Zoom
from minio3_ext.core.dialect import get_dialect
from minio3_ext.core.images import model_size

from .conftest import assert_is_region, coord_image


@pytest.mark.parametrize("bbox, size, expected", [
    ((0.25, 0.5, 0.75, 1.0), (400, 200), (100, 100, 300, 200)),
    ((0.0, 0.0, 1.0, 1.0), (5200, 3467), (0, 0, 5200, 3467)),
    # int() truncates: 0.3333 * 300 = 99.99 -> 99, 0.6667 * 300 = 200.01 -> 200
    ((0.3333, 0.1, 0.6667, 0.2), (300, 100), (99, 10, 200, 20)),
    ((0.5, 0.5, 0.6, 0.9), (10, 10), (5, 5, 6, 9)),  # a 1-pixel-wide crop is allowed
])
def test_box_to_pixels_hand_computed(bbox, size, expected):
    assert box_to_pixels(bbox, *size) == expected


def test_one_pixel_minimum():
    with pytest.raises(ActionError, match=r"covers 0x4 pixels of a 10x10 image.*at least 1 pixel"):
        box_to_pixels((0.5, 0.5, 0.55, 0.9), 10, 10)
    with pytest.raises(ActionError, match="at least 28 pixel"):
        box_to_pixels((0.0, 0.0, 0.027, 0.5), 1000, 1000, CropRules(min_side=28))
    assert box_to_pixels((0.0, 0.0, 0.028, 0.5), 1000, 1000, CropRules(min_side=28)) == (0, 0, 28, 500)


def test_aspect_ratio_at_200_is_rejected():
    with pytest.raises(ActionError, match=r"1000x5 pixels; its aspect ratio must stay below 200"):
        box_to_pixels((0.0, 0.0, 1.0, 0.005), 1000, 1000)
    with pytest.raises(ActionError, match="aspect ratio"):
        box_to_pixels((0.0, 0.0, 0.005, 1.0), 1000, 1000)
    assert box_to_pixels((0.0, 0.0, 1.0, 0.006), 1000, 1000) == (0, 0, 1000, 6)  # 166.7 < 200
    with pytest.raises(ActionError, match="below 10"):
        box_to_pixels((0.0, 0.0, 1.0, 0.006), 1000, 1000, CropRules(max_aspect_ratio=10))


@pytest.mark.parametrize("kwargs, key", [({"min_side": 0}, "min_side"), ({"max_aspect_ratio": 1}, "max_aspect_ratio")])
def test_crop_rules_validate(kwargs, key):
    with pytest.raises(ValueError, match=key):
        CropRules(**kwargs)


def test_crop_returns_exact_pixels_and_box():
    img = coord_image(400, 300)
    region, box = crop(img, (0.25, 0.5, 0.75, 1.0))
    assert box == (100, 150, 300, 300)
    assert_is_region(region, box)


@settings(max_examples=200, deadline=None)
@given(b=st.lists(st.floats(0, 1), min_size=4, max_size=4), w=st.integers(1, 5000), h=st.integers(1, 5000))
def test_box_to_pixels_stays_inside_or_rejects(b, w, h):
    x0, x1 = sorted(b[:2])
    y0, y1 = sorted(b[2:])
    try:
        px0, py0, px1, py1 = box_to_pixels((x0, y0, x1, y1), w, h)
    except ActionError as e:
        assert "pixel" in str(e) or "aspect ratio" in str(e)
        return
    assert (px0, py0, px1, py1) == (int(x0 * w), int(y0 * h), int(x1 * w), int(y1 * h))
    assert 0 <= px0 < px1 <= w and 0 <= py0 < py1 <= h
    assert max(px1 - px0, py1 - py0) / min(px1 - px0, py1 - py0) < 200


def zoom(bbox, source="original_image"):
    return "<think>closer</think>" + get_dialect().render(Zoom(bbox, source))


def test_three_deep_chain_crops_the_raw_image_not_the_view(big_coord_image):
    """original 2400x1800 (view shrunk) -> obs1 2160x1620 (view shrunk) -> obs2 135x101
    (view enlarged) -> obs3 68x51. Every raw crop must be exact pixels of the original."""
    ep = Episode(big_coord_image, EpisodeConfig(max_turns=8))
    first_view_size = model_size(2400, 1800, ep.config.view)
    assert first_view_size != (2400, 1800)

    obs1 = ep.step(zoom((0.0, 0.0, 0.9, 0.9)))
    obs2 = ep.step(zoom((0.5, 0.5, 0.5625, 0.5625), "observation_1"))
    obs3 = ep.step(zoom((0.25, 0.5, 0.75, 1.0), "observation_2"))
    assert [o.index for o in (obs1, obs2, obs3)] == [1, 2, 3]

    # the model-facing views differ from the raw crops both ways
    assert obs1.image.size == model_size(2160, 1620, ep.config.view) and obs1.image.width < 2160
    assert obs2.image.width > 135 and obs2.image.width * obs2.image.height >= 40_000

    # hand-computed: obs2 = obs1[int(.5*2160), int(.5*1620), int(.5625*2160), int(.5625*1620)]
    #                obs3 = obs2[int(.25*135), int(.5*101), int(.75*135), 101]
    boxes = [r.box for r in ep.records]
    assert boxes == [(0, 0, 2160, 1620), (1080, 810, 1215, 911), (33, 50, 101, 101)]
    in_original = [r.box_in_original for r in ep.records]
    assert in_original == [(0, 0, 2160, 1620), (1080, 810, 1215, 911), (1113, 860, 1181, 911)]
    assert [r.source for r in ep.records] == ["original_image", "observation_1", "observation_2"]

    assert ep.raw_image("observation_3").size == (68, 51)
    for name, box in zip(["observation_1", "observation_2", "observation_3"], in_original):
        assert_is_region(ep.raw_image(name), box)
    assert ep.summary()["actions"][2]["box_in_original"] == (1113, 860, 1181, 911)


def test_pixel_coordinates_of_the_view_map_to_raw_pixels(big_coord_image):
    """Qwen-style absolute coordinates refer to the resized view; the crop is still raw."""
    config = EpisodeConfig.from_options(coords="pixel")
    ep = Episode(big_coord_image, config)
    vw, vh = model_size(2400, 1800, config.view)
    text = '<grounding>{"bbox_2d": [%s, %s, %s, %s]}</grounding>' % (vw / 4, vh / 2, vw / 2, vh)
    obs = ep.step(text)
    assert obs is not None and obs.error is None
    assert ep.records[0].box == (600, 900, 1200, 1800)
    assert_is_region(ep.raw_image("observation_1"), (600, 900, 1200, 1800))


def test_crop_errors_reach_the_model_and_episode_continues(big_coord_image):
    ep = Episode(big_coord_image)
    obs = ep.step(zoom((0.0, 0.0, 0.0001, 0.5)))  # int(0.24) = 0 px wide
    assert obs.image is None and obs.index is None and "at least 1 pixel" in obs.error
    assert obs.error in obs.text and not ep.done
    obs = ep.step(zoom((0.0, 0.0, 1.0, 0.002)))  # 2400x3: aspect ratio 800
    assert obs.image is None and "aspect ratio" in obs.error
    assert ep.invalid_actions == 2 and ep.num_observations == 0
