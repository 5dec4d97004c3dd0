"""Synthetic visual-search data: determinism, target size, glyph presence, row format, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minio3_ext.cli import main as cli_main
from minio3_ext.data.synthetic import (
    ANSWER_CHARS,
    COLOURS,
    DATA_SOURCE,
    MAX_TARGET_AREA_FRACTION,
    SHAPES,
    generate,
    load_rows,
    make_scene,
    render_scene,
    without_target_glyph,
)

SMALL = {"width": 640, "height": 480}


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_writes_same_bytes_and_other_seed_differs(tmp_path):
    generate(tmp_path / "a", n=3, seed=7, **SMALL)
    generate(tmp_path / "b", n=3, seed=7, **SMALL)
    generate(tmp_path / "c", n=3, seed=8, **SMALL)
    a, b, c = (_files(tmp_path / k) for k in "abc")
    assert len(a) == 4  # rows.jsonl + 3 images
    assert a == b
    assert a["rows.jsonl"] != c["rows.jsonl"]
    assert a["images/synth-00000.jpg"] != c["images/synth-00000.jpg"]


def test_rows_within_a_dataset_differ(tmp_path):
    rows = load_rows(generate(tmp_path, n=4, seed=0, **SMALL))
    assert len({(r["problem"], tuple(r["target_bbox"])) for r in rows}) == 4


@pytest.mark.parametrize("size", [(4000, 3000), (640, 480), (320, 320), (320, 5000), (8000, 6000)])
def test_target_is_small_unique_in_bounds_and_shapes_do_not_overlap(size):
    width, height = size
    for index in range(3):
        scene = make_scene(0, index, width, height)
        x0, y0, x1, y1 = scene.target.box
        assert (x1 - x0) * (y1 - y0) <= MAX_TARGET_AREA_FRACTION * width * height
        assert x1 - x0 >= 20, "target too small to carry a legible glyph"
        same = [s for s in scene.shapes if (s.colour, s.kind) == (scene.target.colour, scene.target.kind)]
        assert same == [scene.target]
        assert len(scene.shapes) >= 10, "need many distractors"
        # Look-alikes share the target's colour or its shape: the question must be read closely.
        distractors = [s for s in scene.shapes if s is not scene.target]
        assert any(s.colour == scene.target.colour for s in distractors)
        assert any(s.kind == scene.target.kind for s in distractors)
        boxes = np.array([s.box for s in scene.shapes])
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
        assert (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
        for i, (ax0, ay0, ax1, ay1) in enumerate(boxes):
            others = np.delete(boxes, i, axis=0)
            overlap = (others[:, 0] < ax1) & (ax0 < others[:, 2]) & (others[:, 1] < ay1) & (ay0 < others[:, 3])
            assert not overlap.any()


def test_target_glyph_is_drawn_inside_the_target_box_only():
    scene = make_scene(3, 0, 640, 480)
    with_glyph = np.asarray(render_scene(scene), dtype=np.int16)
    without = np.asarray(render_scene(without_target_glyph(scene)), dtype=np.int16)
    changed = np.argwhere(np.abs(with_glyph - without).sum(axis=2) > 0)
    assert len(changed) > 20, "the target's character was not drawn"
    x0, y0, x1, y1 = scene.target.box
    assert changed[:, 0].min() >= y0 and changed[:, 0].max() < y1
    assert changed[:, 1].min() >= x0 and changed[:, 1].max() < x1


def test_saved_target_shows_its_colour_and_a_contrasting_glyph(tmp_path):
    rows = load_rows(generate(tmp_path, n=4, seed=1, **SMALL))
    for row in rows:
        crop = np.asarray(Image.open(row["images"][0]).convert("RGB").crop(row["target_bbox"]), dtype=np.float64)
        colour = next(c for c in COLOURS if f" {c} " in row["problem"])
        dist = np.linalg.norm(crop - np.array(COLOURS[colour]), axis=2)
        assert (dist < 60).mean() > 0.25, f"{row['doc_id']}: target colour {colour} not dominant in its box"
        assert (dist > 150).mean() > 0.02, f"{row['doc_id']}: no contrasting glyph pixels in the target box"


def test_row_format(tmp_path):
    jsonl = generate(tmp_path / "ds", n=2, seed=0, **SMALL)
    assert jsonl == tmp_path / "ds" / "rows.jsonl"
    raw = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["doc_id"] for r in raw] == ["synth-00000", "synth-00001"]
    for r in raw:
        assert set(r) == {"doc_id", "problem", "images", "solution", "data_source", "target_bbox", "width", "height"}
        assert r["images"] == [f"images/{r['doc_id']}.jpg"]
        assert r["problem"].startswith("<image>\n") and r["problem"].count("<image>") == 1
        assert any(f"small {c} {s}?" in r["problem"] for c in COLOURS for s in SHAPES)
        assert len(r["solution"]) == 1 and r["solution"] in ANSWER_CHARS
        assert r["data_source"] == DATA_SOURCE
        assert all(type(v) is int for v in r["target_bbox"])
        assert (r["width"], r["height"]) == (640, 480)
    rows = load_rows(jsonl)
    for r in rows:
        path = Path(r["images"][0])
        assert path.is_absolute() and path.is_file()
        with Image.open(path) as im:
            assert im.size == (r["width"], r["height"]) and im.mode == "RGB"


def test_load_rows_names_the_bad_line(tmp_path):
    bad = tmp_path / "rows.jsonl"
    bad.write_text('{"doc_id": "a", "problem": "<image>", "images": [], "solution": "A"}\n{not json\n')
    with pytest.raises(ValueError, match=r"rows.jsonl:2: not valid JSON"):
        load_rows(bad)
    bad.write_text('{"doc_id": "a", "problem": "<image>"}\n')
    with pytest.raises(ValueError, match=r"rows.jsonl:1: .*missing.*images"):
        load_rows(bad)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"width": 100}, "width"), ({"height": 3000.5}, "height"), ({"n": -1}, "n must"), ({"seed": -3}, "seed")],
)
def test_bad_arguments_fail_with_the_argument_name(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate(tmp_path, **{"n": 1, **kwargs})


def test_cli_writes_the_same_dataset_as_the_api(tmp_path, capsys):
    assert cli_main(["synth", "--out", str(tmp_path / "cli"), "--n", "2", "--seed", "5", "--width", "640", "--height", "480"]) == 0
    assert "wrote 2 rows" in capsys.readouterr().out
    generate(tmp_path / "api", n=2, seed=5, **SMALL)
    assert _files(tmp_path / "cli") == _files(tmp_path / "api")


def test_cli_rejects_bad_size_with_a_message(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "minio3_ext.cli", "synth", "--out", str(tmp_path), "--width", "10"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "--width" in proc.stderr and "320" in proc.stderr
