"""Image decoding, model-facing resize, and the shared raw-image bank.

The bank decodes each image once and hands the *same* raw ``PIL.Image`` to every
rollout of a prompt; crops are always cut from that raw image. The model-facing first
view (the original shrunk to the pixel budget) is cached next to it.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Union

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["ImageError", "ViewRules", "load_image", "to_rgb", "resize_for_model", "ImageBank"]

PathLike = Union[str, "os.PathLike[str]"]
_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


class ImageError(ValueError):
    """An image that cannot be used; the message names the file."""


@dataclass(frozen=True)
class ViewRules:
    """How an image is resized before the model sees it (released-code defaults)."""

    max_pixels: int = 2_000_000
    min_pixels: int = 40_000
    min_side: int = 28
    max_aspect_ratio: float = 200.0
    first_resample: str = "lanczos"
    observation_resample: str = "nearest"
    factor: int = 28
    """Every model-facing side is a multiple of this (Qwen2.5-VL: 14-px patches merged 2×2),
    so a processor's ``smart_resize`` leaves views unchanged and the image-token count
    cannot differ between generation and training. 1 disables snapping."""

    def __post_init__(self) -> None:
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(f"ViewRules: need 0 < min_pixels <= max_pixels, got {self.min_pixels}, {self.max_pixels}")
        if self.factor < 1 or self.factor * self.factor * 4 > self.max_pixels:
            raise ValueError(f"ViewRules.factor must be >= 1 and leave room under max_pixels, got {self.factor}")
        for key in ("first_resample", "observation_resample"):
            if getattr(self, key) not in _RESAMPLE:
                raise ValueError(f"ViewRules.{key}: expected one of {sorted(_RESAMPLE)}, got {getattr(self, key)!r}")


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB: alpha composited on white, 16-bit scaled."""
    if "transparency" in img.info and img.mode in ("P", "L", "RGB"):
        img = img.convert("RGBA")  # a transparent colour/index: composite like an alpha channel
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") else max(float(arr.max(initial=0.0)), 1.0)
        grey = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return img.convert("RGB")


def load_image(path: PathLike, *, max_decode_pixels: int = 250_000_000, max_aspect_ratio: float | None = None) -> Image.Image:
    """Decode ``path`` fully into an RGB image, stored pixel order (EXIF orientation ignored).

    One orientation rule on every path: verl's ``fetch_image``, the processors and the
    released code all ignore EXIF orientation, so the bank, every first view and every
    export do too; boxes are then cut from the same raw pixels the model was shown.

    Raises :class:`ImageError` naming the file for anything unusable: missing,
    not an image, truncated, larger than ``max_decode_pixels`` (decompression bombs;
    Pillow's own ``Image.MAX_IMAGE_PIXELS`` guard applies too), or, when
    ``max_aspect_ratio`` is given, too elongated.
    """
    name = os.fspath(path)
    im = None
    try:
        im = Image.open(name)
        w, h = im.size
        if w * h > max_decode_pixels:
            raise ImageError(f"{name}: {w}x{h} = {w * h} pixels exceeds the decode limit of {max_decode_pixels}")
        if max_aspect_ratio is not None and max(w, h) / max(min(w, h), 1) >= max_aspect_ratio:
            raise ImageError(f"{name}: aspect ratio {w}x{h} is at or above the limit of {max_aspect_ratio:g}")
        if getattr(im, "n_frames", 1) > 1:
            im.seek(0)
        im.load()  # single-frame files close their file handle here
        img = to_rgb(im)
        if img is not im:
            im.close()
        return img
    except ImageError:
        if im is not None:
            im.close()
        raise
    except FileNotFoundError:
        raise ImageError(f"{name}: file not found") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not a readable image (corrupt or unknown format)") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{name}: refused as a decompression bomb ({e})") from None
    except Exception as e:  # decoders of damaged files raise OSError, EOFError, struct.error, IndexError, ...
        if im is not None:
            im.close()
        raise ImageError(f"{name}: cannot decode image ({type(e).__name__}: {e})") from e


def model_size(width: int, height: int, rules: ViewRules) -> tuple[int, int]:
    """The size an image of ``width``×``height`` is shown to the model at.

    Released rules (shrink or enlarge by √(area ratio) into [min_pixels, max_pixels],
    shortest side ≥ ``min_side``), then each side snapped to a multiple of
    ``rules.factor`` without leaving the pixel range — the fixed point of Qwen2.5-VL's
    ``smart_resize`` for any limits that contain [min_pixels, max_pixels].
    """
    area = width * height
    w, h = float(width), float(height)
    if area > rules.max_pixels:
        s = math.sqrt(rules.max_pixels / area)
        w, h = width * s, height * s
    elif area < rules.min_pixels:
        s = math.sqrt(rules.min_pixels / area)
        w, h = width * s, height * s
    short = min(w, h)
    if short < rules.min_side:
        s = rules.min_side / short
        w, h = w * s, h * s
    f = rules.factor
    if f == 1:
        if area > rules.max_pixels:
            return max(1, int(w)), max(1, int(h))
        return max(1, math.ceil(w - 1e-9)), max(1, math.ceil(h - 1e-9))
    fw, fh = max(f, round(w / f) * f), max(f, round(h / f) * f)
    if fw * fh > rules.max_pixels:
        fw, fh = max(f, math.floor(w / f) * f), max(f, math.floor(h / f) * f)
        while fw * fh > rules.max_pixels:  # only when a side was raised to one factor
            if fw >= fh:
                fw -= f
            else:
                fh -= f
    elif fw * fh < rules.min_pixels:
        fw, fh = math.ceil(w / f) * f, math.ceil(h / f) * f
        while fw * fh < rules.min_pixels:
            if fw <= fh:
                fw += f
            else:
                fh += f
    if max(fw, fh) / min(fw, fh) >= rules.max_aspect_ratio > max(w, h) / min(w, h):
        # rounding the short side down made the view too elongated (processors refuse ≥ 200): round it up
        if fw < fh:
            fw = math.ceil(w / f) * f
        else:
            fh = math.ceil(h / f) * f
        while fw * fh > rules.max_pixels:
            if fw >= fh:
                fw -= f
            else:
                fh -= f
    return fw, fh


def resize_for_model(img: Image.Image, rules: ViewRules = ViewRules(), *, first: bool = False) -> Image.Image:
    """Resize to the pixel budget and convert to RGB (LANCZOS first view, NEAREST observations)."""
    img = to_rgb(img)
    size = model_size(img.width, img.height, rules)
    if size == img.size:
        return img
    method = rules.first_resample if first else rules.observation_resample
    return img.resize(size, _RESAMPLE[method])


class _Entry:
    __slots__ = ("raw", "view", "error", "nbytes", "lock")

    def __init__(self) -> None:
        self.raw: Image.Image | None = None
        self.view: Image.Image | None = None
        self.error: ImageError | None = None
        self.nbytes = 0
        self.lock = threading.Lock()


def _image_bytes(img: Image.Image | None) -> int:
    """Resident bytes of a decoded image: Pillow pads 3-band pixels to 4 bytes."""
    if img is None:
        return 0
    bands = len(img.getbands())
    return img.width * img.height * (4 if bands == 3 else bands)


class ImageBank:
    """Decode-once, share-everywhere store of raw images, bounded by ``max_bytes`` (LRU).

    Thread-safe: concurrent requests for the same path decode it once; requests for
    different paths decode in parallel. An evicted image stays alive for as long as
    a rollout still references it, but the bank no longer counts or holds it. A file
    that fails to decode raises the same :class:`ImageError` on every later request,
    without decoding again, until the file changes on disk.
    """

    def __init__(self, max_bytes: int = 2 << 30, view_rules: ViewRules = ViewRules(), *, max_decode_pixels: int = 250_000_000):
        if max_bytes <= 0:
            raise ValueError(f"ImageBank.max_bytes must be positive, got {max_bytes}")
        self.max_bytes = max_bytes
        self.view_rules = view_rules
        self.max_decode_pixels = max_decode_pixels
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.nbytes = 0
        self.decodes = 0
        self.resizes = 0
        self.hits = 0
        self.evictions = 0

    @staticmethod
    def key(path: PathLike) -> str:
        name = os.path.realpath(os.fspath(path))
        try:
            st = os.stat(name)
            return f"{name}@{st.st_mtime_ns}:{st.st_size}"
        except OSError:
            return name

    def _entry(self, key: str) -> _Entry:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
            else:
                self._entries.move_to_end(key)
            return entry

    def _account(self, key: str, entry: _Entry) -> None:
        with self._lock:
            view_bytes = 0 if entry.view is entry.raw else _image_bytes(entry.view)
            new = _image_bytes(entry.raw) + view_bytes
            if self._entries.get(key) is entry:
                self.nbytes += new - entry.nbytes
            entry.nbytes = new
            while self.nbytes > self.max_bytes:
                # least recently used first; never the image just stored, and never an entry
                # still being decoded (0 bytes): evicting it would free nothing and make the
                # rollouts that arrive after it decode the same file again
                victim = next((k for k, e in self._entries.items() if k != key and e.nbytes > 0), None)
                if victim is None:
                    break
                self.nbytes -= self._entries.pop(victim).nbytes
                self.evictions += 1

    def _decoded(self, path: PathLike) -> tuple[str, _Entry, Image.Image]:
        key = self.key(path)
        entry = self._entry(key)
        with entry.lock:
            if entry.raw is None and entry.error is None:
                try:
                    entry.raw = load_image(path, max_decode_pixels=self.max_decode_pixels,
                                           max_aspect_ratio=self.view_rules.max_aspect_ratio)
                except ImageError as e:
                    entry.error = e  # 16 rollouts of a bad file fail fast, not 16 decodes
                with self._lock:
                    self.decodes += 1
                decoded = True
            else:
                decoded = False
            raw, error = entry.raw, entry.error
        if error is not None:
            raise ImageError(str(error))
        if decoded:
            self._account(key, entry)
        else:
            with self._lock:
                self.hits += 1
        return key, entry, raw

    def get(self, path: PathLike) -> Image.Image:
        """The raw, full-resolution RGB image at ``path`` (shared; do not mutate)."""
        return self._decoded(path)[2]

    def first_view(self, path: PathLike) -> Image.Image:
        """The model-facing first view of ``path`` (resized once, LANCZOS; shared)."""
        key, entry, raw = self._decoded(path)
        with entry.lock:
            resized = entry.view is None
            if resized:
                entry.view = resize_for_model(raw, self.view_rules, first=True)
                with self._lock:
                    self.resizes += 1
            view = entry.view
        if resized:
            self._account(key, entry)
        return view

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:  # an empty bank is still a bank (``bank or default_bank()``)
        return True

    def stats(self) -> dict[str, int]:
        return {"entries": len(self._entries), "bytes": self.nbytes, "decodes": self.decodes,
                "resizes": self.resizes, "hits": self.hits, "evictions": self.evictions}


_default_bank: ImageBank | None = None
_default_lock = threading.Lock()


def default_bank() -> ImageBank:
    """The process-wide bank used by the framework adapters."""
    global _default_bank
    with _default_lock:
        if _default_bank is None:
            value = os.environ.get("MINIO3_IMAGE_BANK_BYTES", str(2 << 30))
            try:
                limit = int(value)
            except ValueError:
                raise ValueError(f"MINIO3_IMAGE_BANK_BYTES must be an integer number of bytes, got {value!r}") from None
            _default_bank = ImageBank(max_bytes=limit)
        return _default_bank

