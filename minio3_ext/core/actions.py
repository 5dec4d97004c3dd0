"""Typed actions and the two dialects (SPEC 1.1, 1.2, 1.2b).

``parse_action`` turns one assistant turn into :class:`Zoom`, :class:`ToolCall`,
:class:`Answer` or :class:`Invalid`; it never raises. ``render_action`` is its
inverse. Boxes come out in *relative* coordinates of the named source whatever the
coordinate system the model writes in; pixels of the raw image are computed later
by the crop engine.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

from .jsonish import JsonishError, loads_tolerant

__all__ = [
    "Action", "Answer", "Invalid", "ToolCall", "Zoom", "Dialect", "CoordSystem",
    "ORIGINAL", "parse_action", "parse_source", "parse_bbox", "render_action",
    "ActionError",
]

Dialect = Literal["minio3", "hermes"]
CoordSystem = Literal["relative", "thousand", "pixel"]
DIALECTS = ("minio3", "hermes")
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

# case-insensitive like answers.extract_answer, so the reward and the episode agree
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_ANSWER_OPEN_RE = re.compile(r"<answer>", re.IGNORECASE)
_TAGS = {
    "minio3": ("<grounding>", "</grounding>"),
    "hermes": ("<tool_call>", "</tool_call>"),
}


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


def _action_from_call(
    name: Any, args: Any, *, num_observations, coords, view_sizes, clamp,
) -> Action:
    if not isinstance(args, Mapping):
        return Invalid(f"tool arguments must be a JSON object, got {type(args).__name__}")
    try:
        source = parse_source(args.get("source"), num_observations)
        if name == "zoom":
            bbox_value = args["bbox_2d"] if "bbox_2d" in args else args.get("bbox")
            if bbox_value is None:
                raise ActionError("missing 'bbox_2d': give [x0, y0, x1, y1]")
            view = (view_sizes or {}).get(source)
            return Zoom(parse_bbox(bbox_value, coords=coords, view_size=view, clamp=clamp), source)
    except ActionError as e:
        return Invalid(str(e))
    if not isinstance(name, str) or not name:
        return Invalid("tool call is missing its 'name'")
    # the source travels in ToolCall.source, not twice
    return ToolCall(name, {k: v for k, v in args.items() if k != "source"}, source)


def parse_action(
    text: str,
    *,
    dialect: str = "minio3",
    num_observations: int | None = None,
    coords: str = "relative",
    view_sizes: Mapping[str, tuple[int, int]] | None = None,
    clamp: bool = False,
) -> Action:
    """Parse one assistant turn. Never raises.

    The first action tag in the text wins. In the ``minio3`` dialect a
    ``<grounding>`` body is zoom arguments; ``<tool_call>`` (Hermes) is accepted in
    both dialects so that other registered tools can be called.

    >>> parse_action('<think>top left</think><grounding>{"source": "original_image", "bbox_2d": [0, 0, 0.5, 0.5]}</grounding>')
    Zoom(bbox=(0.0, 0.0, 0.5, 0.5), source='original_image')
    >>> parse_action("<answer>blue</answer>")
    Answer(text='blue')
    """
    if not isinstance(text, str):
        return Invalid(f"model output must be text, got {type(text).__name__}", attempted=False)
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; expected one of {DIALECTS}")
    if coords not in COORD_SYSTEMS:
        raise ValueError(f"unknown coordinate system {coords!r}; expected one of {COORD_SYSTEMS}")
    kw = dict(num_observations=num_observations, coords=coords, view_sizes=view_sizes, clamp=clamp)
    answer_open = _ANSWER_OPEN_RE.search(text)
    candidates = [(answer_open.start() if answer_open else -1, "answer"), (text.find("<tool_call>"), "hermes")]
    if dialect == "minio3":
        candidates.append((text.find("<grounding>"), "minio3"))
    found = sorted((pos, kind) for pos, kind in candidates if pos >= 0)
    if not found:
        how = "<grounding>{...}</grounding>" if dialect == "minio3" else "a zoom tool call"
        return Invalid(f"no action found: zoom with {how} or give <answer>...</answer>", attempted=False)
    pos, kind = found[0]
    if kind == "answer":
        m = _ANSWER_RE.search(text, pos)
        if m is None:
            return Invalid("unterminated <answer>: close it with </answer>")
        return Answer(m.group(1).strip())
    open_tag, close_tag = _TAGS[kind]
    body_start = pos + len(open_tag)
    end = text.find(close_tag, body_start)
    body = text[body_start:] if end < 0 else text[body_start:end]
    try:
        obj = loads_tolerant(body)
    except JsonishError as e:
        return Invalid(f"could not read the action: {e}")
    if kind == "minio3":
        return _action_from_call("zoom", obj, **kw)
    args = obj.get("arguments", {})
    if isinstance(args, str):
        try:
            args = loads_tolerant(args)
        except JsonishError as e:
            return Invalid(f"could not read the tool arguments: {e}")
    return _action_from_call(obj.get("name"), args, **kw)


def render_action(action: Action, dialect: str = "minio3") -> str:
    """Render an action as the model would write it (inverse of :func:`parse_action`)."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; expected one of {DIALECTS}")
    if isinstance(action, Answer):
        return f"<answer>{action.text}</answer>"
    if isinstance(action, Zoom):
        args = {"bbox_2d": list(action.bbox), "source": action.source}
        if dialect == "minio3":
            return "<grounding>" + json.dumps(args) + "</grounding>"
        return "<tool_call>" + json.dumps({"name": "zoom", "arguments": args}) + "</tool_call>"
    if isinstance(action, ToolCall):
        args = {**action.arguments, "source": action.source}
        return "<tool_call>" + json.dumps({"name": action.name, "arguments": args}) + "</tool_call>"
    raise TypeError(f"cannot render {type(action).__name__}")
