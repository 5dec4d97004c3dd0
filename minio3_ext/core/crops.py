"""Relative box → raw-pixel crop, with the released code's rules."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from .actions import ActionError

__all__ = ["CropRules", "box_to_pixels", "crop"]


@dataclass(frozen=True)
class CropRules:
    """Limits on a crop, applied in raw pixels of the source image."""

    min_side: int = 1
    """Smallest allowed crop side after clamping (released code: 1 px)."""
    max_aspect_ratio: float = 200.0
    """Crops whose long/short side ratio reaches this are rejected."""
    clamp_to_last_pixel: bool = False
    """Clamp the right/bottom edge to ``w - 1`` / ``h - 1`` as the released code does (its
    clamp option); the default clamps to ``w`` / ``h``, so ``[0, 0, 1, 1]`` is the whole image."""

    def __post_init__(self) -> None:
        if self.min_side < 1:
            raise ValueError(f"CropRules.min_side must be >= 1, got {self.min_side}")
        if self.max_aspect_ratio <= 1:
            raise ValueError(f"CropRules.max_aspect_ratio must be > 1, got {self.max_aspect_ratio}")


def box_to_pixels(
    bbox: tuple[float, float, float, float], width: int, height: int, rules: CropRules = CropRules()
) -> tuple[int, int, int, int]:
    """Relative box × source size → integer pixels → clamp → size and aspect checks.

    >>> box_to_pixels((0.25, 0.5, 0.75, 1.0), 400, 200)
    (100, 100, 300, 200)
    """
    x0, y0, x1, y1 = bbox
    px = [int(x0 * width), int(y0 * height), int(x1 * width), int(y1 * height)]
    hi_x, hi_y = (width - 1, height - 1) if rules.clamp_to_last_pixel else (width, height)
    px0, py0 = min(max(px[0], 0), hi_x), min(max(px[1], 0), hi_y)
    px1, py1 = min(max(px[2], 0), hi_x), min(max(px[3], 0), hi_y)
    if px1 - px0 < rules.min_side or py1 - py0 < rules.min_side:
        raise ActionError(
            f"the box covers {max(px1 - px0, 0)}x{max(py1 - py0, 0)} pixels of a {width}x{height} image; "
            f"each side must be at least {rules.min_side} pixel(s), so make the box larger"
        )
    w, h = px1 - px0, py1 - py0
    if max(w, h) / min(w, h) >= rules.max_aspect_ratio:
        raise ActionError(f"the box is {w}x{h} pixels; its aspect ratio must stay below {rules.max_aspect_ratio:g}")
    return px0, py0, px1, py1


def crop(source: Image.Image, bbox: tuple[float, float, float, float], rules: CropRules = CropRules()) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """Crop ``bbox`` (relative) out of the raw ``source``; returns the raw crop and its pixel box."""
    box = box_to_pixels(bbox, source.width, source.height, rules)
    return source.crop(box), box
