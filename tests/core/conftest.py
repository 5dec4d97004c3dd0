"""Shared helpers for the core tests: images whose pixels name their own coordinates."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


def coord_array(width: int, height: int, x0: int = 0, y0: int = 0) -> np.ndarray:
    """RGB pixels encoding their position: R = x mod 256, G = y mod 256, B = 16·(x div 256) + y div 256.

    Unique for x, y < 4096, so any crop can be checked against its exact source box.
    """
    ys, xs = np.mgrid[y0 : y0 + height, x0 : x0 + width]
    return np.stack([xs % 256, ys % 256, (xs // 256) * 16 + ys // 256], axis=-1).astype(np.uint8)


def coord_image(width: int, height: int) -> Image.Image:
    return Image.fromarray(coord_array(width, height), "RGB")


def assert_is_region(img: Image.Image, box: tuple[int, int, int, int]) -> None:
    """``img`` is exactly the pixels of ``box`` in a :func:`coord_image`, not a resampled copy."""
    x0, y0, x1, y1 = box
    assert img.size == (x1 - x0, y1 - y0)
    np.testing.assert_array_equal(np.asarray(img), coord_array(x1 - x0, y1 - y0, x0, y0))


@pytest.fixture(scope="session")
def big_coord_image() -> Image.Image:
    """2400x1800 (4.3 MP): its first view is shrunk, so view and raw differ."""
    return coord_image(2400, 1800)


@pytest.fixture
def image() -> Image.Image:
    """400x300 coordinate image (inside the pixel budget: its view is only snapped to 28)."""
    return coord_image(400, 300)
