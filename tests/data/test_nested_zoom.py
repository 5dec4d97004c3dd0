"""Nested-zoom task: colours average equal, determinism, no colour leak above the readable level, oracle."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minio3_ext.core import Episode, EpisodeConfig
from minio3_ext.core.images import resize_for_model
from minio3_ext.data.nested_zoom import (
    COLOUR_NAMES, COLOURS, generate, load_rows, make_item, oracle_boxes, region_box, render, view_rules, with_colour,
)


def _views(item):
    """What a model sees along the oracle chain, through a real core Episode: first view, then each zoom."""
    config = EpisodeConfig(max_turns=8, dialect="hermes", max_context_tokens=None, view=view_rules(item.view))
    image = render(item)
    episode = Episode(image, config)
    views = [np.asarray(resize_for_model(image, config.view, first=True), dtype=int)]
    for k, box in enumerate(oracle_boxes({"quadrants": item.quadrants})):
        source = "original_image" if k == 0 else f"observation_{k}"
        obs = episode.step("<tool_call>" + json.dumps({"name": "zoom", "arguments": {"bbox_2d": list(box), "source": source}})
                           + "</tool_call>")
        assert obs is not None and obs.image is not None, obs and obs.text
        views.append(np.asarray(obs.image, dtype=int))
    return views


def test_every_colour_pair_averages_to_the_same_grey():
    means = {name: (np.array(c, float) + np.array(comp, float)) / 2 for name, (c, comp) in COLOURS.items()}
    assert len(COLOURS) == 4
    for mean in means.values():
        assert mean.tolist() == [127.5, 127.5, 127.5]
    # and the colours themselves are far apart (readable when resolved)
    firsts = [np.array(c) for c, _ in COLOURS.values()]
    assert min(np.abs(a - b).max() for i, a in enumerate(firsts) for b in firsts[i + 1:]) >= 128


@pytest.mark.parametrize("layout,view", [("centre", 56), ("quadrant", 32)])
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_colour_is_invisible_above_the_readable_level_and_plain_at_it(layout, depth, view):
    for seed in range(4):
        base = make_item(seed, 0, depth, layout=layout, view=view)
        chains = [_views(with_colour(base, c)) for c in COLOUR_NAMES]
        assert all(v.shape == (view, view, 3) for chain in chains for v in chain)
        for level in range(depth):  # every view before the last zoom: at most 5/255 apart across colours
            leak = max(np.abs(a[level] - b[level]).max() for a in chains for b in chains)
            assert leak <= 5, (seed, level, leak)
        readable = min(np.abs(a[depth] - b[depth]).max() for i, a in enumerate(chains) for b in chains[i + 1:])
        assert readable >= 128


def test_raw_side_and_regions():
    item = make_item(3, 1, 3, layout="quadrant", view=32)
    assert render(item).size == (32 * 8, 32 * 8)
    x0, y0, x1, y1 = region_box(item, 3)
    assert x1 - x0 == y1 - y0 == 32
    centre = make_item(0, 0, 2)
    assert region_box(centre, 2) == (84, 84, 140, 140) and render(centre).size == (224, 224)
    assert oracle_boxes({"quadrants": centre.quadrants}) == [(0.25, 0.25, 0.75, 0.75)] * 2


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_generate_is_deterministic_by_seed_and_rows_are_complete(tmp_path):
    generate(tmp_path / "a", 6, seed=5, depths=(1, 2, 3))
    generate(tmp_path / "b", 6, seed=5, depths=(1, 2, 3))
    generate(tmp_path / "c", 6, seed=6, depths=(1, 2, 3))
    a, b, c = (_files(tmp_path / k) for k in "abc")
    assert len(a) == 7 and a == b and a["rows.jsonl"] != c["rows.jsonl"]
    rows = load_rows(tmp_path / "a" / "rows.jsonl")
    assert [r["depth"] for r in rows] == [1, 2, 3, 1, 2, 3]
    assert all(r["solution"] in COLOUR_NAMES and r["difficulty"] == f"d{r['depth']}" for r in rows)
    assert all(r["images"][0].endswith(".png") and r["width"] == 56 * 2 ** r["depth"] for r in rows)


def test_colours_are_balanced_within_each_depth(tmp_path):
    from collections import Counter

    rows = load_rows(generate(tmp_path, 24, seed=2, depths=(1, 2, 3)))
    counts = Counter((r["depth"], r["solution"]) for r in rows)
    assert set(counts.values()) == {2} and len(counts) == 12


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="depth"):
        make_item(0, 0, 0)
    with pytest.raises(ValueError, match="layout"):
        make_item(0, 0, 1, layout="spiral")
    with pytest.raises(ValueError, match="colour"):
        make_item(0, 0, 1, colour="purple")
