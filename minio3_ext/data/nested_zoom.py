"""Nested zoom: a task that can only be solved by zooming ``d`` times.

An item is a small 1-px checkerboard of a colour and its complement (red/cyan,
green/magenta, blue/yellow, orange/azure). Every pair averages to the same grey, so
one resampling level above the one where the checker is readable it has vanished: a
bilinear downsample of the view leaks at most a few 1/255 of colour (measured in the
tests). The checker sits inside ``d`` nested white frames; the raw image has side
``view · 2^d`` and every view the model sees is ``view × view`` (bilinear), so the
checker becomes readable only after ``d`` zooms, each onto the region inside the next
frame, which is half the side of the latest image.

Two layouts:

- ``centre``: every frame's region is the centre ``[0.25, 0.25, 0.75, 0.75]`` of the
  one around it, so the oracle is the same zoom on the latest observation ``d``
  times (the layout for a tiny VLM, which learns localisation too slowly);
- ``quadrant``: each region is a random quadrant of the one around it (the layout
  for a policy that must also choose where to look).

    from minio3_ext.data.nested_zoom import generate, load_rows, view_rules

    rows = load_rows(generate("out/nz", n=16, seed=0, depths=(1, 2, 3)))
    rows[0]["solution"]       # "green"
    rows[0]["depth"]          # 2 (zooms needed)
    oracle_boxes(rows[0])     # [(0.25, 0.25, 0.75, 0.75), (0.25, 0.25, 0.75, 0.75)]

Rows follow the VisualProbe row format plus ``depth``, ``colour``,
``layout``, ``quadrants``, ``benchmark`` and ``difficulty`` (``d<depth>``). Everything
is a pure function of ``(seed, index, ...)``: the same seed writes the same bytes
(PNG). Only stdlib, Pillow and numpy are used.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence, Union

import numpy as np
from PIL import Image

from ..core.images import ViewRules
from .readers import read_jsonl

__all__ = [
    "BENCHMARK", "CENTRE_BOX", "COLOURS", "COLOUR_NAMES", "LAYOUTS", "QUADRANT_BOXES", "QUESTION", "VIEW",
    "NestedItem", "generate", "load_rows", "make_item", "oracle_boxes", "region_box", "render", "view_rules",
]

PathLike = Union[str, "os.PathLike[str]"]

BENCHMARK = "nested_zoom"
VIEW = 56
"""Side of every view the model sees (two 28-px tokens)."""
#: Colour name → (colour, complement); each pair averages to (127.5, 127.5, 127.5).
COLOURS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "red": ((255, 0, 0), (0, 255, 255)),
    "green": ((0, 255, 0), (255, 0, 255)),
    "blue": ((0, 0, 255), (255, 255, 0)),
    "orange": ((255, 128, 0), (0, 127, 255)),
}
COLOUR_NAMES = tuple(COLOURS)
LAYOUTS = ("centre", "quadrant")
CENTRE_BOX = (0.25, 0.25, 0.75, 0.75)
#: Quadrant index → relative box of the latest image (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right).
QUADRANT_BOXES = ((0.0, 0.0, 0.5, 0.5), (0.5, 0.0, 1.0, 0.5), (0.0, 0.5, 0.5, 1.0), (0.5, 0.5, 1.0, 1.0))
QUESTION = ("What colour is the checkerboard inside the innermost frame? "
            "Answer with one word: red, green, blue or orange.")


@dataclass(frozen=True)
class NestedItem:
    """Everything that decides an image; all nuisance values are independent of ``colour``."""

    colour: str
    depth: int
    layout: str
    view: int
    quadrants: tuple[int, ...]
    """Per level, which quadrant of the latest image the next region is (-1: the centre)."""
    background: int
    """Grey of the outermost area."""
    fills: tuple[int, ...]
    """Grey inside each frame, level 1..depth."""
    frame: int
    """Brightness of the frames (near white)."""
    checker: tuple[int, int, int]
    """(x, y, side) of the checker in the innermost region's pixels (even values)."""
    phase: int = 0
    """Which of the two colours sits on even pixels (fixed: the colour maps to one linear image feature)."""

    @property
    def side(self) -> int:
        return self.view * 2 ** self.depth


def view_rules(view: int = VIEW) -> ViewRules:
    """Every view exactly ``view × view``, bilinear (first view and observations).

    A multiple of 28 keeps Qwen2.5-VL's snapping; other sides (the stage-B proxy's 32)
    are not for a Qwen model and switch snapping off.
    """
    return ViewRules(max_pixels=view * view, min_pixels=view * view, min_side=min(28, view),
                     first_resample="bilinear", observation_resample="bilinear", factor=28 if view % 28 == 0 else 1)


def _check(depth: int, layout: str, view: int) -> None:
    if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= 6:
        raise ValueError(f"nested_zoom: depth must be an int in 1..6, got {depth!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"nested_zoom: layout must be one of {LAYOUTS}, got {layout!r}")
    if not isinstance(view, int) or view < 16 or view % 8:
        raise ValueError(f"nested_zoom: view must be a multiple of 8 and >= 16, got {view!r}")


def make_item(seed: int, index: int, depth: int, *, layout: str = "centre", view: int = VIEW,
              colour: str | None = None) -> NestedItem:
    """The item number ``index`` of dataset ``seed`` (colour drawn unless given)."""
    _check(depth, layout, view)
    rng = random.Random(f"nested_zoom:{seed}:{index}:{depth}:{layout}:{view}")
    drawn = rng.choice(COLOUR_NAMES)
    colour = drawn if colour is None else colour
    if colour not in COLOURS:
        raise ValueError(f"nested_zoom: colour must be one of {COLOUR_NAMES}, got {colour!r}")
    quadrants = tuple(-1 if layout == "centre" else rng.randrange(4) for _ in range(depth))
    side = 2 * rng.randrange(view // 4, 3 * view // 8 + 1)  # view/2 .. 3·view/4, even
    margin = 4
    x = 2 * rng.randrange(margin // 2, (view - margin - side) // 2 + 1)
    y = 2 * rng.randrange(margin // 2, (view - margin - side) // 2 + 1)
    return NestedItem(
        colour=colour, depth=depth, layout=layout, view=view, quadrants=quadrants,
        background=rng.randrange(70, 111), fills=tuple(rng.randrange(100, 161) for _ in range(depth)),
        frame=rng.randrange(220, 256), checker=(x, y, side), phase=0,
    )


def region_box(item: NestedItem, level: int) -> tuple[int, int, int, int]:
    """Raw-pixel box of the region inside frame ``level`` (0 = the whole image)."""
    x0, y0, size = 0, 0, item.side
    for q in item.quadrants[:level]:
        size //= 2
        if q < 0:
            x0, y0 = x0 + size // 2, y0 + size // 2
        else:
            x0, y0 = x0 + (q % 2) * size, y0 + (q // 2) * size
    return x0, y0, x0 + size, y0 + size


def render(item: NestedItem) -> Image.Image:
    """The raw RGB image of ``item`` (side ``view · 2^depth``)."""
    s = item.side
    arr = np.full((s, s, 3), item.background, dtype=np.uint8)
    for level in range(1, item.depth + 1):
        x0, y0, x1, y1 = region_box(item, level)
        # the frame is one view pixel wide in the view that shows the region around it
        t = 2 ** (item.depth - level + 1)
        arr[y0:y1, x0:x1] = item.frame
        arr[y0 + t:y1 - t, x0 + t:x1 - t] = item.fills[level - 1]
    rx, ry, _, _ = region_box(item, item.depth)
    cx, cy, side = item.checker
    colour, complement = (np.array(c, dtype=np.uint8) for c in COLOURS[item.colour])
    yy, xx = np.mgrid[0:side, 0:side]
    odd = ((xx + yy + item.phase) % 2).astype(bool)
    patch = np.where(odd[..., None], complement, colour)
    arr[ry + cy:ry + cy + side, rx + cx:rx + cx + side] = patch
    return Image.fromarray(arr, "RGB")


def oracle_boxes(row: Mapping) -> list[tuple[float, float, float, float]]:
    """The zooms that make the checker readable, each a relative box of the latest image."""
    return [CENTRE_BOX if q < 0 else QUADRANT_BOXES[q] for q in row["quadrants"]]


def _row(item: NestedItem, doc_id: str, relpath: str, split: str) -> dict:
    return {
        "doc_id": doc_id,
        "problem": "<image>\n" + QUESTION,
        "images": [relpath],
        "solution": item.colour,
        "data_source": f"{BENCHMARK}_{split}",
        "benchmark": BENCHMARK,
        "difficulty": f"d{item.depth}",
        "depth": item.depth,
        "colour": item.colour,
        "layout": item.layout,
        "quadrants": list(item.quadrants),
        "width": item.side,
        "height": item.side,
    }


def generate(out_dir: PathLike, n: int, *, seed: int = 0, depths: Sequence[int] = (1, 2, 3), layout: str = "centre",
             view: int = VIEW, split: str = "train") -> Path:
    """Write ``n`` rows to ``out_dir/rows.jsonl`` and PNGs to ``out_dir/images/``.

    Depths cycle through ``depths``, and within each depth the colours cycle through a
    seeded order, so ``n`` a multiple of ``4 · len(depths)`` is balanced (a constant
    guess then scores exactly chance). Image
    paths in the JSONL are relative to ``out_dir`` (see :func:`load_rows`). Returns
    the JSONL path.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"nested_zoom: n must be a non-negative int, got {n!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"nested_zoom: seed must be a non-negative int, got {seed!r}")
    if not depths:
        raise ValueError("nested_zoom: depths must not be empty")
    for d in depths:
        _check(d, layout, view)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    path = out / "rows.jsonl"
    order = list(COLOUR_NAMES)
    random.Random(f"nested_zoom:colours:{seed}").shuffle(order)
    with open(path, "w", encoding="utf-8") as f:
        for index in range(n):
            colour = order[(index // len(depths) + index % len(depths)) % len(order)]
            item = make_item(seed, index, depths[index % len(depths)], layout=layout, view=view, colour=colour)
            doc_id = f"nz-{split}-s{seed}-{index:05d}"
            relpath = f"images/{doc_id}.png"
            render(item).save(out / relpath, format="PNG")
            f.write(json.dumps(_row(item, doc_id, relpath, split)) + "\n")
    return path


def load_rows(jsonl_path: PathLike) -> list[dict]:
    """Read rows written by :func:`generate`; image paths become absolute."""
    path = Path(jsonl_path)
    base = path.resolve().parent
    rows = []
    for row in read_jsonl(path):
        where = row.pop("_source")
        for key in ("doc_id", "problem", "images", "solution", "depth", "quadrants"):
            if key not in row:
                raise ValueError(f"{where}: row is missing key {key!r}")
        row["images"] = [str(p if Path(p).is_absolute() else base / p) for p in row["images"]]
        rows.append(row)
    return rows


def with_colour(item: NestedItem, colour: str) -> NestedItem:
    """The same image with another checker colour (for leak tests)."""
    if colour not in COLOURS:
        raise ValueError(f"nested_zoom: colour must be one of {COLOUR_NAMES}, got {colour!r}")
    return replace(item, colour=colour)
