"""Synthetic visual-search data: one small target among many look-alike distractors.

Each image is a large, cluttered canvas (default 4000×3000) covered with coloured
shapes (circle, square, triangle, diamond), each carrying one character. Exactly one
shape has the question's (colour, shape) pair; it is small (≤ 0.5% of the image
area), so at the model's pixel budget its character is hard to read without zooming.

    from minio3_ext.data.synthetic import generate, load_rows

    jsonl = generate("out/synth", n=8, seed=0)          # out/synth/rows.jsonl + images/
    rows = load_rows(jsonl)                              # image paths made absolute
    rows[0]["problem"]   # "<image>\\nWhat character is written inside the small red triangle? ..."
    rows[0]["solution"]  # "K"
    rows[0]["target_bbox"]  # [x0, y0, x1, y1] raw pixels, x1/y1 exclusive (PIL crop box)

Rows follow the VisualProbe row format plus ``target_bbox``, ``width`` and
``height``. Everything is a pure function of ``(seed, index, width, height)``: the
same seed writes the same bytes. Only stdlib, Pillow and numpy are used.
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .readers import read_jsonl

__all__ = [
    "ANSWER_CHARS",
    "COLOURS",
    "DATA_SOURCE",
    "MAX_TARGET_AREA_FRACTION",
    "SHAPES",
    "Scene",
    "Shape",
    "generate",
    "load_rows",
    "make_row",
    "make_scene",
    "question_for",
    "render_scene",
    "target_side",
    "without_target_glyph",
]

PathLike = Union[str, "os.PathLike[str]"]

DATA_SOURCE = "synthetic_visual_search"
#: Answer vocabulary: upper-case letters and digits minus look-alikes (O/0, I/1, S/5, Z/2).
ANSWER_CHARS = "ABCDEFGHJKLMNPQRTUVWXY346789"
SHAPES = ("circle", "square", "triangle", "diamond")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 150, 50),
    "blue": (40, 70, 215),
    "yellow": (240, 205, 20),
    "purple": (135, 45, 175),
    "orange": (245, 125, 15),
    "cyan": (20, 185, 200),
    "pink": (240, 110, 185),
}
MAX_TARGET_AREA_FRACTION = 0.005
MIN_SIDE = 320
_TARGET_SIDE_FRACTION = 0.02  # of the shorter image side
_MIN_TARGET_SIDE = 24  # pixels; below this the glyph stops being legible
_AREA_SAFETY = 0.9  # stay clearly under MAX_TARGET_AREA_FRACTION
_DISTRACTOR_SCALE = (0.8, 1.6)  # distractor side relative to the target side
_CELL_FILL = 0.6  # fraction of free grid cells that get a distractor
_JPEG_QUALITY = 92


@dataclass(frozen=True)
class Shape:
    """One drawn shape: ``box`` is ``(x0, y0, x1, y1)`` in pixels, x1/y1 exclusive."""

    kind: str
    colour: str
    box: tuple[int, int, int, int]
    char: str


@dataclass(frozen=True)
class Scene:
    """Everything needed to render one image; ``shapes[target_index]`` is the target."""

    width: int
    height: int
    seed: tuple[int, ...]
    shapes: tuple[Shape, ...]
    target_index: int

    @property
    def target(self) -> Shape:
        return self.shapes[self.target_index]


def _check_size(width: int, height: int) -> None:
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or isinstance(value, bool) or value < MIN_SIDE:
            raise ValueError(f"synthetic: {name} must be an int >= {MIN_SIDE}, got {value!r}")


def target_side(width: int, height: int) -> int:
    """Side of the target's square box: ~2% of the short side, area capped under 0.5%."""
    _check_size(width, height)
    wanted = max(_MIN_TARGET_SIDE, round(_TARGET_SIDE_FRACTION * min(width, height)))
    cap = math.floor(math.sqrt(_AREA_SAFETY * MAX_TARGET_AREA_FRACTION * width * height))
    return min(wanted, cap)


def make_scene(seed: int, index: int, width: int = 4000, height: int = 3000) -> Scene:
    """Lay out the target and distractors for row ``index`` of a dataset seeded ``seed``.

    Shapes sit in distinct cells of a jittered grid, so none overlap. The target's
    (colour, shape) pair is unique in the scene; distractors share its colour or its
    shape, and carry characters from the same vocabulary.
    """
    side = target_side(width, height)
    rng = np.random.default_rng([int(seed), int(index)])
    cell = math.ceil(_DISTRACTOR_SCALE[1] * side * 1.5)
    cols, rows = width // cell, height // cell
    cells = rng.permutation(cols * rows)
    combos = [(c, s) for c in COLOURS for s in SHAPES]
    target_colour, target_kind = combos[int(rng.integers(len(combos)))]
    others = [combo for combo in combos if combo != (target_colour, target_kind)]
    same_colour = [combo for combo in others if combo[0] == target_colour]
    same_kind = [combo for combo in others if combo[1] == target_kind]

    shapes: list[Shape] = []
    n_distractors = max(2, int(_CELL_FILL * (len(cells) - 1)))
    for order, flat in enumerate(cells[: n_distractors + 1]):
        if order == 0:
            colour, kind, size = target_colour, target_kind, side
        else:
            # The first two distractors are guaranteed look-alikes: same colour, then same shape.
            pool = same_colour if order == 1 else same_kind if order == 2 else others
            colour, kind = pool[int(rng.integers(len(pool)))]
            size = int(round(side * rng.uniform(*_DISTRACTOR_SCALE)))
        cx0, cy0 = int(flat % cols) * cell, int(flat // cols) * cell
        x0 = cx0 + int(rng.integers(0, cell - size + 1))
        y0 = cy0 + int(rng.integers(0, cell - size + 1))
        char = ANSWER_CHARS[int(rng.integers(len(ANSWER_CHARS)))]
        shapes.append(Shape(kind, colour, (x0, y0, x0 + size, y0 + size), char))
    # Draw order is shuffled so the target is not always painted first.
    order = rng.permutation(len(shapes))
    shuffled = tuple(shapes[i] for i in order)
    target_index = int(np.flatnonzero(order == 0)[0])
    return Scene(width, height, (int(seed), int(index)), shuffled, target_index)


@functools.lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.load_default(size=size)
    if not isinstance(font, ImageFont.FreeTypeFont):  # the bitmap fallback ignores size: glyphs would be illegible
        raise RuntimeError("synthetic: Pillow was built without FreeType; scalable glyphs need it")
    return font


def _background(scene: Scene) -> Image.Image:
    """Low-frequency colour noise plus thin lines and rings: clutter, not targets."""
    rng = np.random.default_rng([*scene.seed, 1])
    small = rng.integers(90, 200, size=(max(2, scene.height // 40), max(2, scene.width // 40), 3), dtype=np.uint8)
    canvas = Image.fromarray(small, "RGB").resize((scene.width, scene.height), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(canvas)
    n_clutter = scene.width * scene.height // 40_000
    line_width = max(1, min(scene.width, scene.height) // 600)
    for _ in range(n_clutter):
        x, y = int(rng.integers(scene.width)), int(rng.integers(scene.height))
        dx, dy = (int(v) for v in rng.integers(-scene.width // 12, scene.width // 12, size=2))
        grey = tuple(int(v) for v in rng.integers(60, 220, size=3))
        if rng.random() < 0.5:
            draw.line((x, y, x + dx, y + dy), fill=grey, width=line_width)
        else:
            r = abs(dx) // 4 + 2
            draw.ellipse((x - r, y - r, x + r, y + r), outline=grey, width=line_width)
    return canvas


def _glyph_fill(colour: str) -> tuple[int, int, int]:
    r, g, b = COLOURS[colour]
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def _draw_shape(draw: ImageDraw.ImageDraw, shape: Shape) -> None:
    x0, y0, x1, y1 = shape.box
    right, bottom = x1 - 1, y1 - 1  # PIL draws inclusive coordinates
    cx, cy = (x0 + right) / 2, (y0 + bottom) / 2
    fill = COLOURS[shape.colour]
    glyph_size, glyph_y = 0.62 * (x1 - x0), cy
    if shape.kind == "circle":
        draw.ellipse((x0, y0, right, bottom), fill=fill)
    elif shape.kind == "square":
        draw.rectangle((x0, y0, right, bottom), fill=fill)
    elif shape.kind == "triangle":
        draw.polygon([(x0, bottom), (right, bottom), (cx, y0)], fill=fill)
        glyph_size, glyph_y = 0.42 * (x1 - x0), y0 + 0.64 * (bottom - y0)
    elif shape.kind == "diamond":
        draw.polygon([(cx, y0), (right, cy), (cx, bottom), (x0, cy)], fill=fill)
        glyph_size = 0.45 * (x1 - x0)
    else:
        raise ValueError(f"synthetic: unknown shape kind {shape.kind!r}")
    if shape.char:
        draw.text((cx, glyph_y), shape.char, fill=_glyph_fill(shape.colour), font=_font(max(6, int(glyph_size))), anchor="mm")


def render_scene(scene: Scene) -> Image.Image:
    """Draw ``scene`` as an RGB image of ``scene.width × scene.height``."""
    canvas = _background(scene)
    draw = ImageDraw.Draw(canvas)
    for shape in scene.shapes:
        _draw_shape(draw, shape)
    return canvas


def question_for(scene: Scene) -> str:
    target = scene.target
    return (
        f"What character is written inside the small {target.colour} {target.kind}? "
        "Answer with the single character."
    )


def make_row(scene: Scene, doc_id: str, image_relpath: str) -> dict:
    """The JSONL row for ``scene`` (VisualProbe row format plus target info)."""
    return {
        "doc_id": doc_id,
        "problem": "<image>\n" + question_for(scene),
        "images": [image_relpath],
        "solution": scene.target.char,
        "data_source": DATA_SOURCE,
        "target_bbox": list(scene.target.box),
        "width": scene.width,
        "height": scene.height,
    }


def generate(out_dir: PathLike, n: int = 8, *, seed: int = 0, width: int = 4000, height: int = 3000) -> Path:
    """Write ``n`` rows to ``out_dir/rows.jsonl`` and images to ``out_dir/images/``.

    Image paths in the JSONL are relative to ``out_dir``; :func:`load_rows` resolves
    them. Returns the JSONL path.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"synthetic: n must be a non-negative int, got {n!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"synthetic: seed must be a non-negative int, got {seed!r}")
    _check_size(width, height)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    jsonl_path = out / "rows.jsonl"
    with open(jsonl_path, "w", encoding="utf-8") as f:
        for index in range(n):
            doc_id = f"synth-{index:05d}"
            relpath = f"images/{doc_id}.jpg"
            scene = make_scene(seed, index, width, height)
            render_scene(scene).save(out / relpath, format="JPEG", quality=_JPEG_QUALITY, subsampling=0)
            f.write(json.dumps(make_row(scene, doc_id, relpath)) + "\n")
    return jsonl_path


_REQUIRED_KEYS = ("doc_id", "problem", "images", "solution")


def load_rows(jsonl_path: PathLike) -> list[dict]:
    """Read a rows JSONL; relative image paths become absolute (relative to its folder)."""
    path = Path(jsonl_path)
    base = path.resolve().parent
    rows: list[dict] = []
    for row in read_jsonl(path):
        where = row.pop("_source")
        missing = [k for k in _REQUIRED_KEYS if k not in row]
        if missing:
            raise ValueError(f"{where}: row is missing key(s) {missing}")
        if not isinstance(row["images"], list):
            raise ValueError(f"{where}: 'images' must be a list, got {type(row['images']).__name__}")
        row["images"] = [str(p if Path(p).is_absolute() else base / p) for p in row["images"]]
        rows.append(row)
    return rows


def without_target_glyph(scene: Scene) -> Scene:
    """The same scene with the target's character erased (for tests and ablations)."""
    shapes = list(scene.shapes)
    shapes[scene.target_index] = replace(scene.target, char="")
    return replace(scene, shapes=tuple(shapes))
