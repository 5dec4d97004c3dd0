"""Image tools the policy can call, and their registry.

``zoom`` is built in. Register more with :func:`register_tool` or through the
``minio3_ext.tools`` entry-point group; both adapters (verl, TRL) expose every tool
named in the episode config. A tool gets the *raw* source image and returns a new
raw image, which becomes the next observation.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar, Mapping

from PIL import Image

from .actions import ActionError, parse_bbox
from .crops import CropRules, crop

__all__ = [
    "ImageTool", "ToolResult", "ZoomTool", "RotateTool", "register_tool", "get_tool",
    "available_tools", "ENTRY_POINT_GROUP",
]

ENTRY_POINT_GROUP = "minio3_ext.tools"
_SOURCE_SCHEMA = {
    "type": "string",
    "description": "Image to operate on: 'original_image' or 'observation_i' (an earlier result, 1-based).",
}


@dataclass
class ToolResult:
    image: Image.Image
    """The new raw image (full resolution); the environment resizes it for the model."""
    box: tuple[int, int, int, int] | None = None
    """Pixel box on the source, when the result is a crop of it."""


class ImageTool(ABC):
    """A small interface: a name, a JSON schema, argument checking, and ``apply``."""

    name: ClassVar[str]
    description: ClassVar[str]
    parameters: ClassVar[dict[str, Any]]
    """JSON schema of the arguments (OpenAI function-calling style)."""

    def check_arguments(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Validate the arguments; raise :class:`ActionError` with a model-readable reason."""
        return dict(arguments)

    @abstractmethod
    def apply(self, source: Image.Image, arguments: Mapping[str, Any]) -> ToolResult:
        """Run the tool on the raw source image."""

    def schema(self) -> dict[str, Any]:
        """OpenAI function-tool schema (what verl's tool YAML and TRL's tools use)."""
        return {"type": "function", "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


class ZoomTool(ImageTool):
    name = "zoom"
    description = (
        "Zoom in: crop a region of an image to look at it in detail. bbox_2d is [x0, y0, x1, y1] "
        "in relative coordinates (width and height are 1.0, each value in [0, 1], x0 < x1, y0 < y1)."
    )
    parameters = {
        "type": "object",
        "properties": {
            "bbox_2d": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4,
                        "description": "Relative box [x0, y0, x1, y1], each in [0, 1]."},
            "source": _SOURCE_SCHEMA,
        },
        "required": ["bbox_2d"],
    }

    def __init__(self, rules: CropRules = CropRules()):
        self.rules = rules

    def check_arguments(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        return {"bbox_2d": parse_bbox(arguments.get("bbox_2d"))}

    def apply(self, source: Image.Image, arguments: Mapping[str, Any]) -> ToolResult:
        image, box = crop(source, tuple(arguments["bbox_2d"]), self.rules)
        return ToolResult(image, box)


class RotateTool(ImageTool):
    name = "rotate"
    description = "Rotate an image counter-clockwise by 90, 180 or 270 degrees, e.g. to read sideways text."
    parameters = {
        "type": "object",
        "properties": {
            "angle": {"type": "integer", "enum": [90, 180, 270], "description": "Counter-clockwise angle in degrees."},
            "source": _SOURCE_SCHEMA,
        },
        "required": ["angle"],
    }
    _TRANSPOSE = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}

    def check_arguments(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        angle = arguments.get("angle")
        if (isinstance(angle, bool) or not isinstance(angle, (int, float))
                or (isinstance(angle, float) and not math.isfinite(angle))  # int(inf) raises OverflowError
                or int(angle) != angle or int(angle) % 360 not in self._TRANSPOSE):
            raise ActionError(f"'angle' must be one of 90, 180, 270; got {angle!r}")
        return {"angle": int(angle) % 360}

    def apply(self, source: Image.Image, arguments: Mapping[str, Any]) -> ToolResult:
        return ToolResult(source.transpose(self._TRANSPOSE[arguments["angle"]]))


_REGISTRY: dict[str, type[ImageTool]] = {}
_lock = threading.Lock()
_load_lock = threading.Lock()
_entry_points_loaded = False


def register_tool(cls: type[ImageTool]) -> type[ImageTool]:
    """Class decorator: make ``cls`` available by ``cls.name``."""
    if not (isinstance(cls, type) and issubclass(cls, ImageTool)):
        raise TypeError(f"register_tool expects an ImageTool subclass, got {cls!r}")
    with _lock:
        existing = _REGISTRY.get(cls.name)
        if existing is not None and existing is not cls:
            raise ValueError(f"image tool {cls.name!r} is already registered by {existing.__module__}.{existing.__qualname__}")
        _REGISTRY[cls.name] = cls
    return cls


register_tool(ZoomTool)


def _load_entry_points() -> None:
    global _entry_points_loaded
    with _load_lock:
        if _entry_points_loaded:
            return
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                cls = ep.load()
            except Exception as e:  # a broken third-party plugin must name itself
                raise ImportError(f"image tool entry point {ep.name!r} ({ep.value}) failed to load: {e}") from e
            if getattr(cls, "name", None) != ep.name:
                raise ValueError(f"image tool entry point {ep.name!r} loads {cls!r}, whose name is {getattr(cls, 'name', None)!r}")
            register_tool(cls)
        # only now: a broken plugin keeps failing loudly instead of silently hiding the tools after it
        _entry_points_loaded = True


def available_tools() -> list[str]:
    _load_entry_points()
    return sorted(_REGISTRY)


def get_tool(name: str, **kwargs: Any) -> ImageTool:
    """Instantiate the tool registered as ``name``."""
    if name not in _REGISTRY:
        _load_entry_points()
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown image tool {name!r}; registered: {available_tools()}") from None
    return cls(**kwargs)
