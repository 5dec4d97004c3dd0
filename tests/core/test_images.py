"""Decoding, model-facing resize, and the shared image bank."""

from __future__ import annotations

import io
import os
import struct
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from minio3_ext.core import Episode, ImageBank, ImageError, ViewRules, default_bank, load_image, resize_for_model
from minio3_ext.core import images as images_module
from minio3_ext.core.images import model_size

from .conftest import assert_is_region, coord_array, coord_image

# -- resize for the model -------------------------------------------------------------


@pytest.mark.parametrize("size, expected", [
    # x sqrt(2e6 / area) = 1731.2 x 1154.3, then each side to the nearest multiple of 28
    ((5200, 3467), (1736, 1148)),
    ((1000, 1000), (1008, 1008)),  # inside the budget: only snapped to 28 (1000 / 28 = 35.7)
    ((100, 50), (308, 168)),  # x sqrt(8) = 282.8 x 141.4 -> 280 x 140 < min_pixels -> ceil: 308 x 168
    ((1000, 10), (2800, 28)),  # x2 for min_pixels gives 2000x20, then x1.4 for the 28-px side
    ((1, 1), (224, 224)),  # 200 x 200 -> 196 x 196 < 40,000 -> 224 x 224
])
def test_model_size_hand_computed(size, expected):
    assert model_size(*size, ViewRules()) == expected


def test_model_size_respects_the_budget():
    for w, h in [(5200, 3467), (4000, 3000), (20000, 150), (1999, 1001)]:
        mw, mh = model_size(w, h, ViewRules())
        assert mw * mh <= 2_000_000 and mw * mh > 1_800_000 and mw % 28 == 0 and mh % 28 == 0
    assert model_size(2000, 2000, ViewRules(max_pixels=1_000_000)) == (980, 980)
    assert model_size(2000, 2000, ViewRules(max_pixels=1_000_000, factor=1)) == (1000, 1000)


def is_nearest_sample(img: Image.Image, width: int, height: int) -> bool:
    """Is ``img`` a nearest-neighbour resampling of ``coord_image(width, height)``: every
    pixel copied from the source pixel under its centre?"""
    a = np.asarray(img).astype(np.int64)
    x = a[..., 0] + 256 * (a[..., 2] // 16)
    y = a[..., 1] + 256 * (a[..., 2] % 16)
    want_x = ((np.arange(img.width) + 0.5) * width / img.width).astype(np.int64)
    want_y = ((np.arange(img.height) + 0.5) * height / img.height).astype(np.int64)
    return bool((np.abs(x - want_x[None, :]) <= 1).all() and (np.abs(y - want_y[:, None]) <= 1).all())


def test_first_view_is_lanczos_and_observations_nearest():
    img = coord_image(1500, 1500)  # 2.25 MP: shrunk
    nearest = resize_for_model(img, ViewRules())
    lanczos = resize_for_model(img, ViewRules(), first=True)
    assert nearest.size == lanczos.size == model_size(1500, 1500, ViewRules())
    assert is_nearest_sample(nearest, 1500, 1500)
    assert not is_nearest_sample(lanczos, 1500, 1500)
    enlarged = resize_for_model(coord_image(100, 50), ViewRules())
    assert enlarged.size == (308, 168) and is_nearest_sample(enlarged, 100, 50)


def test_resize_for_model_returns_rgb_of_any_mode():
    assert resize_for_model(Image.new("L", (300, 300), 7)).mode == "RGB"
    same = coord_image(308, 280)
    assert resize_for_model(same) is same  # nothing to do: no copy


@pytest.mark.parametrize("kwargs, key", [
    ({"min_pixels": 0}, "min_pixels"), ({"max_pixels": 10, "min_pixels": 20}, "min_pixels"),
    ({"first_resample": "cubic"}, "first_resample"), ({"observation_resample": "box"}, "observation_resample"),
])
def test_view_rules_validate(kwargs, key):
    with pytest.raises(ValueError, match=key):
        ViewRules(**kwargs)


# -- the bank: decode once, share, bounded --------------------------------------------


def save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def test_sixteen_rollouts_decode_once_resize_once_and_share_one_object(tmp_path, monkeypatch):
    path = save(coord_image(2400, 1800), tmp_path / "big.png")
    calls = {"load": 0, "resize": 0}
    real_load, real_resize = images_module.load_image, images_module.resize_for_model

    def slow_load(*a, **kw):
        calls["load"] += 1
        time.sleep(0.05)  # widen the race window
        return real_load(*a, **kw)

    def counting_resize(*a, **kw):
        calls["resize"] += 1
        return real_resize(*a, **kw)

    monkeypatch.setattr(images_module, "load_image", slow_load)
    monkeypatch.setattr(images_module, "resize_for_model", counting_resize)
    bank = ImageBank()
    start = threading.Barrier(16)
    got: list[tuple[Image.Image, Image.Image]] = [None] * 16  # type: ignore[list-item]

    def rollout(i):
        start.wait()
        got[i] = (bank.get(path), bank.first_view(str(path)))

    threads = [threading.Thread(target=rollout, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert calls == {"load": 1, "resize": 1}
    raw, view = got[0]
    assert all(r is raw and v is view for r, v in got)
    assert raw.size == (2400, 1800) and view.size == model_size(2400, 1800, ViewRules())
    stats = bank.stats()
    assert stats == {"entries": 1, "bytes": 2400 * 1800 * 4 + view.width * view.height * 4,
                     "decodes": 1, "resizes": 1, "hits": 31, "evictions": 0}
    # episodes built from the shared raw image crop it without copying it
    episodes = [Episode(raw, first_view=view) for _ in range(16)]
    assert all(e.raw_image("original_image") is raw for e in episodes)


def test_first_view_within_budget_is_the_raw_image_itself(tmp_path):
    path = save(coord_image(252, 196), tmp_path / "small.png")
    bank = ImageBank()
    assert bank.first_view(path) is bank.get(path)
    assert bank.stats()["bytes"] == 252 * 196 * 4


def test_lru_eviction_under_max_bytes(tmp_path):
    paths = {k: save(coord_image(250, 200), tmp_path / f"{k}.png") for k in "abc"}
    one = 250 * 200 * 4
    bank = ImageBank(max_bytes=2 * one + 10)
    a = bank.get(paths["a"])
    bank.get(paths["b"])
    assert bank.get(paths["a"]) is a  # touch a: b is now least recently used
    bank.get(paths["c"])
    assert bank.stats() == {"entries": 2, "bytes": 2 * one, "decodes": 3, "resizes": 0, "hits": 1, "evictions": 1}
    assert bank.get(paths["a"]) is a  # still cached
    bank.get(paths["b"])  # evicted: decoded again, and c (now oldest) goes
    stats = bank.stats()
    assert stats["decodes"] == 4 and stats["evictions"] == 2 and stats["bytes"] == 2 * one and len(bank) == 2


def test_an_image_being_decoded_is_not_evicted(tmp_path, monkeypatch):
    """Rollouts of a prompt whose image is still decoding must not trigger a second decode
    when other prompts' images fill the budget meanwhile."""
    paths = {k: save(coord_image(250, 200), tmp_path / f"{k}.png") for k in "abc"}
    one = 250 * 200 * 4
    started, release = threading.Event(), threading.Event()
    loads = []
    real_load = images_module.load_image

    def load(path, **kw):
        loads.append(os.path.basename(path))
        if os.path.basename(path) == "a.png":
            started.set()
            release.wait(10)
        return real_load(path, **kw)

    monkeypatch.setattr(images_module, "load_image", load)
    bank = ImageBank(max_bytes=2 * one - 1)
    first = threading.Thread(target=bank.get, args=(paths["a"],))
    first.start()
    assert started.wait(10)
    bank.get(paths["b"])
    bank.get(paths["c"])  # over budget: b goes, not the pending a
    release.set()
    first.join()
    raw = bank.get(paths["a"])
    assert loads == ["a.png", "b.png", "c.png"]
    assert bank.get(paths["a"]) is raw and bank.stats()["decodes"] == 3


def test_an_image_larger_than_the_budget_is_kept_alone(tmp_path):
    small = save(coord_image(100, 100), tmp_path / "small.png")
    big = save(coord_image(400, 400), tmp_path / "big.png")
    bank = ImageBank(max_bytes=100_000)
    bank.get(small)
    img = bank.get(big)
    assert bank.stats()["entries"] == 1 and bank.stats()["bytes"] == 400 * 400 * 4
    assert bank.get(big) is img


def test_a_rewritten_file_is_decoded_again(tmp_path):
    path = tmp_path / "img.png"
    save(Image.new("RGB", (300, 300), "red"), path)
    bank = ImageBank()
    assert bank.get(path).getpixel((0, 0)) == (255, 0, 0)
    save(Image.new("RGB", (300, 301), "blue"), path)
    assert bank.get(path).getpixel((0, 0)) == (0, 0, 255)


def test_a_bad_file_fails_every_rollout_but_is_decoded_once(tmp_path, monkeypatch):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    calls = []
    real_load = images_module.load_image
    monkeypatch.setattr(images_module, "load_image", lambda *a, **kw: calls.append(1) or real_load(*a, **kw))
    bank = ImageBank()
    for _ in range(16):
        with pytest.raises(ImageError, match="broken.jpg"):
            bank.get(path)
    assert len(calls) == 1


def test_bank_and_default_bank_configuration(monkeypatch):
    with pytest.raises(ValueError, match="max_bytes"):
        ImageBank(max_bytes=0)
    monkeypatch.setattr(images_module, "_default_bank", None)
    monkeypatch.setenv("MINIO3_IMAGE_BANK_BYTES", "lots")
    with pytest.raises(ValueError, match="MINIO3_IMAGE_BANK_BYTES"):
        default_bank()
    monkeypatch.setenv("MINIO3_IMAGE_BANK_BYTES", "12345")
    bank = default_bank()
    assert bank is default_bank() and bank.max_bytes == 12345


# -- bad and unusual images ------------------------------------------------------------


def png_with_header_size(path, width, height):
    """A tiny valid PNG whose IHDR then claims ``width`` x ``height`` (CRC fixed up)."""
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = data[12:29]  # chunk type + 13 data bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


def assert_names_file(err: pytest.ExceptionInfo, path) -> None:
    assert os.fspath(path) in str(err.value)


def test_corrupt_file(tmp_path):
    path = tmp_path / "noise.jpg"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(ImageError, match="not a readable image") as err:
        load_image(path)
    assert_names_file(err, path)


def test_text_file_and_missing_file(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(ImageError) as err:
        load_image(path)
    assert_names_file(err, path)
    with pytest.raises(ImageError, match="file not found") as err:
        load_image(tmp_path / "absent.png")
    assert_names_file(err, tmp_path / "absent.png")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file(tmp_path, fmt):
    path = tmp_path / f"cut.{fmt.lower()}"
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(buf, fmt)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="cannot decode") as err:
        ImageBank().get(path)
    assert_names_file(err, path)


def test_decompression_bomb(tmp_path):
    path = png_with_header_size(tmp_path / "bomb.png", 100_000, 100_000)
    with pytest.raises(ImageError, match="decompression bomb|decode limit") as err:
        load_image(path)
    assert_names_file(err, path)
    path = png_with_header_size(tmp_path / "big_header.png", 3000, 2000)
    with pytest.raises(ImageError, match="6000000 pixels exceeds the decode limit of 1000000") as err:
        ImageBank(max_decode_pixels=1_000_000).get(path)
    assert_names_file(err, path)


def test_cmyk_jpeg(tmp_path):
    path = save(Image.new("CMYK", (300, 200), (0, 255, 255, 0)), tmp_path / "cmyk.jpg")
    img = load_image(path)
    assert img.mode == "RGB" and img.size == (300, 200)
    assert np.abs(np.asarray(img, dtype=int) - (255, 0, 0)).max() <= 3


def test_rgba_png_is_composited_on_white(tmp_path):
    arr = np.zeros((200, 300, 4), dtype=np.uint8)
    arr[:, :100] = (255, 0, 0, 0)  # fully transparent red -> white
    arr[:, 100:200] = (0, 0, 255, 255)  # opaque blue
    arr[:, 200:] = (0, 0, 0, 128)  # half-transparent black -> mid grey
    path = save(Image.fromarray(arr, "RGBA"), tmp_path / "rgba.png")
    img = load_image(path)
    assert img.mode == "RGB"
    assert img.getpixel((50, 10)) == (255, 255, 255)
    assert img.getpixel((150, 10)) == (0, 0, 255)
    assert all(abs(c - 127) <= 1 for c in img.getpixel((250, 10)))


@pytest.mark.parametrize("transparent", [False, True])
def test_palette_png(tmp_path, transparent):
    img = Image.new("P", (300, 200), 0)
    img.putpalette([10, 200, 30] + [250, 0, 250] + [0] * 762)
    img.paste(1, (150, 0, 300, 200))
    kw = {"transparency": 1} if transparent else {}
    path = save(img, tmp_path / "palette.png", **kw)
    out = load_image(path)
    assert out.mode == "RGB"
    assert out.getpixel((10, 10)) == (10, 200, 30)
    assert out.getpixel((200, 10)) == ((255, 255, 255) if transparent else (250, 0, 250))


def test_grey_png_with_transparent_value(tmp_path):
    arr = np.full((200, 300), 40, dtype=np.uint8)
    arr[:, 150:] = 90
    path = save(Image.fromarray(arr, "L"), tmp_path / "grey.png", transparency=90)
    out = load_image(path)
    assert out.getpixel((10, 10)) == (40, 40, 40) and out.getpixel((200, 10)) == (255, 255, 255)


def test_sixteen_bit_png(tmp_path):
    arr = np.zeros((200, 300), dtype=np.uint16)
    arr[:, 100:200] = 65535
    arr[:, 200:] = 32768
    source = Image.fromarray(arr)
    assert source.mode == "I;16"
    out = load_image(save(source, tmp_path / "deep.png"))
    assert out.mode == "RGB"
    assert [out.getpixel((x, 5)) for x in (50, 150, 250)] == [(0, 0, 0), (255, 255, 255), (128, 128, 128)]


def test_exif_orientation_is_ignored_like_verl_and_the_released_code(tmp_path):
    arr = np.zeros((200, 300, 3), dtype=np.uint8)
    arr[:, :150] = (255, 0, 0)  # left half red, right half blue as stored
    arr[:, 150:] = (0, 0, 255)
    stored = Image.fromarray(arr)
    exif = stored.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    path = save(stored, tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95)
    bank = ImageBank()
    img = bank.get(path)
    assert img.size == (300, 200)  # stored pixel order, as verl's fetch_image and the processors see it
    left, right = np.asarray(img)[:, :140].mean(axis=(0, 1)), np.asarray(img)[:, 160:].mean(axis=(0, 1))
    assert left[0] > 200 and left[2] < 50 and right[2] > 200 and right[0] < 50
    assert bank.first_view(path).size == (308, 196)  # the same orientation, snapped to 28
    ep = Episode(img, first_view=bank.first_view(path))
    ep.step('<grounding>{"bbox_2d": [0, 0, 0.4, 1]}</grounding>')
    assert ep.records[0].box == (0, 0, 120, 200)
    assert np.asarray(ep.raw_image("observation_1"))[..., 0].min() > 200


def test_one_by_one_image(tmp_path):
    path = save(Image.new("RGB", (1, 1), (9, 8, 7)), tmp_path / "dot.png")
    bank = ImageBank()
    assert bank.get(path).size == (1, 1)
    view = bank.first_view(path)
    assert view.size == (224, 224) and view.getpixel((223, 223)) == (9, 8, 7)
    ep = Episode(bank.get(path), first_view=view)
    obs = ep.step('<grounding>{"bbox_2d": [0, 0, 0.5, 0.5]}</grounding>')
    assert "at least 1 pixel" in obs.error
    obs = ep.step('<grounding>{"bbox_2d": [0, 0, 1, 1]}</grounding>')
    assert obs.error is None and ep.raw_image("observation_1").size == (1, 1) and obs.image.size == (224, 224)


def test_extreme_aspect_ratio(tmp_path):
    path = save(Image.fromarray(coord_array(20000, 10)), tmp_path / "strip.png")
    with pytest.raises(ImageError, match="aspect ratio 20000x10 is at or above the limit of 200") as err:
        ImageBank().get(path)
    assert_names_file(err, path)
    assert_is_region(load_image(path), (0, 0, 20000, 10))  # only the bank applies the view rules' limit


def test_animated_gif_uses_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (300, 200), c) for c in ("red", "blue")]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert load_image(path).getpixel((5, 5)) == (255, 0, 0)
