"""Typed actions: :class:`Zoom`, :class:`ToolCall`, :class:`Answer` and :class:`Invalid`,
and the argument checks they share.

A dialect (:func:`minio3_ext.core.dialect.get_dialect`) reads a turn into one
(``Dialect.parse``, which never raises) and writes one back (``Dialect.render``).
Boxes come out in *relative* coordinates of the named source whatever the coordinate
system the model writes in; pixels of the raw image are computed later by the crop
engine.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

__all__ = [
    "Action", "Answer", "Invalid", "ToolCall", "Zoom", "COORD_SYSTEMS",
    "ORIGINAL", "parse_source", "parse_bbox",
    "ActionError",
]

COORD_SYSTEMS = ("relative", "thousand", "pixel")
ORIGINAL = "original_image"
_OBS_RE = re.compile(r"^observation[_ ]?(\d{1,9})$")


class ActionError(ValueError):
    """An action the environment cannot execute; ``str(err)`` is shown to the model."""


@dataclass(frozen=True)
class Zoom:
    """Crop ``bbox`` (relative ``[x0, y0, x1, y1]`` in [0, 1]) out of ``source``."""

    bbox: tuple[float, float, float, float]
    source: str = ORIGINAL
    name: str = field(default="zoom", init=False, repr=False)


@dataclass(frozen=True)
class ToolCall:
    """A call to another registered image tool; arguments are validated by the tool."""

    name: str
    arguments: Mapping[str, Any]
    source: str = ORIGINAL


@dataclass(frozen=True)
class Answer:
    text: str


@dataclass(frozen=True)
class Invalid:
    """Unusable turn. ``attempted=False`` means the turn held no action at all."""

    reason: str
    attempted: bool = True


Action = Zoom | ToolCall | Answer | Invalid

def parse_source(value: Any, num_observations: int | None) -> str:
    """Validate a source name: ``original_image`` or ``observation_i`` (1-based)."""
    if value is None:
        return ORIGINAL
    if not isinstance(value, str):
        raise ActionError(f"'source' must be a string like 'original_image' or 'observation_1', got {_preview(value)}")
    name = value.strip().lower()
    if name in (ORIGINAL, "original", "image"):
        return ORIGINAL
    m = _OBS_RE.match(name)
    if m is None:
        raise ActionError(f"unknown source {_preview(value)}; use 'original_image' or 'observation_i'")
    i = int(m.group(1))
    if i < 1 or (num_observations is not None and i > num_observations):
        have = "no observations exist yet" if not num_observations else f"only observation_1..observation_{num_observations} exist"
        raise ActionError(f"source 'observation_{i}' does not exist: {have}")
    return f"observation_{i}"


def _coord_range(coords: str, view_size: tuple[int, int] | None) -> tuple[float, float]:
    if coords == "relative":
        return 1.0, 1.0
    if coords == "thousand":
        return 1000.0, 1000.0
    if view_size is None:
        raise ActionError("pixel coordinates need the size of the source image, which is unknown")
    return float(view_size[0]), float(view_size[1])


def parse_bbox(
    value: Any,
    *,
    coords: str = "relative",
    view_size: tuple[int, int] | None = None,
    clamp: bool = False,
) -> tuple[float, float, float, float]:
    """Validate a box in ``coords`` and return it in relative [0, 1] units."""
    if isinstance(value, str):  # a quoted list: "[0.1, 0.2, 0.5, 0.6]"
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            pass
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        n = len(value) if isinstance(value, (list, tuple)) else type(value).__name__
        raise ActionError(f"'bbox_2d' must be a list of 4 numbers [x0, y0, x1, y1], got {n}")
    nums = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise ActionError(f"'bbox_2d' values must be numbers, got {_preview(v)}")
        try:
            f = float(v)
        except (ValueError, OverflowError):  # OverflowError: an integer too large for a float
            raise ActionError(f"'bbox_2d' values must be numbers, got {_preview(v)}") from None
        if not math.isfinite(f):
            raise ActionError(f"'bbox_2d' values must be finite numbers, got {_preview(v)}")
        nums.append(f)
    sx, sy = _coord_range(coords, view_size)
    lims = (sx, sy, sx, sy)
    if clamp:
        nums = [min(max(v, 0.0), lim) for v, lim in zip(nums, lims)]
    elif any(v < 0.0 or v > lim for v, lim in zip(nums, lims)):
        rng = {"relative": "[0, 1] (relative to the image width and height)",
               "thousand": "[0, 1000]"}.get(coords, f"[0, {int(sx)}] x [0, {int(sy)}] pixels")
        raise ActionError(f"bbox_2d {_fmt(nums)} is outside the valid range {rng}")
    x0, y0, x1, y1 = nums
    if x0 >= x1 or y0 >= y1:
        raise ActionError(f"bbox_2d {_fmt(nums)} is empty or inverted; need x0 < x1 and y0 < y1")
    return (x0 / sx, y0 / sy, x1 / sx, y1 / sy)


def _fmt(nums: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in nums) + "]"


def _preview(value: Any, limit: int = 40) -> str:
    """``repr`` cut to ``limit`` characters: error messages go back into the context."""
    if isinstance(value, int) and value.bit_length() > 128:  # repr() of a huge int can raise
        return "an integer too large to use"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
