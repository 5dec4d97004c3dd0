"""Bad-image corpus, generated at test time, through the full zoom path.

ImageBank.get → ImageBank.first_view → Episode → zoom → resize. Every file either
raises an :class:`ImageError` that names it, or yields RGB views and correct crops
(checked by the colour of each quadrant of a four-colour test card). A byte-flip
corpus of valid files (300 by default, 3,000 with ``MINIO3_FULL=1``) must do the same.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minio3_ext.core.actions import Zoom
from minio3_ext.core.dialect import get_dialect
from minio3_ext.core.episode import Episode, EpisodeConfig
from minio3_ext.core.images import ImageBank, ImageError, model_size

from .conftest import TALLY, scale

pytestmark = pytest.mark.reliability

W, H = 320, 240
#: Quadrant colours of the test card: top-left, top-right, bottom-left, bottom-right.
CARD = ((220, 30, 30), (30, 200, 40), (30, 40, 220), (240, 240, 240))
QUADRANT_BOXES = ((0.05, 0.05, 0.45, 0.45), (0.55, 0.05, 0.95, 0.45), (0.05, 0.55, 0.45, 0.95), (0.55, 0.55, 0.95, 0.95))
WHITE = (255, 255, 255)


def card_array(colours=CARD) -> np.ndarray:
    arr = np.zeros((H, W, 3), np.uint8)
    arr[: H // 2, : W // 2], arr[: H // 2, W // 2:] = colours[0], colours[1]
    arr[H // 2:, : W // 2], arr[H // 2:, W // 2:] = colours[2], colours[3]
    return arr


def card(colours=CARD) -> Image.Image:
    return Image.fromarray(card_array(colours), "RGB")


# -- the corpus --------------------------------------------------------------------------

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width``×``height`` with almost no data: a bomb by its header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _rgba() -> bytes:
    arr = np.dstack([card_array(), np.full((H, W), 255, np.uint8)])
    arr[H // 2:, W // 2:, 3] = 0  # bottom-right fully transparent: composited on white
    return _save(Image.fromarray(arr, "RGBA"), "PNG")


def _palette_transparent() -> bytes:
    img = card().quantize(colors=4)
    bottom_right = img.getpixel((W - 1, H - 1))
    img.info["transparency"] = bottom_right
    return _save(img, "PNG", transparency=bottom_right)


def _i16() -> bytes:
    arr = np.zeros((H, W), np.uint16)
    arr[: H // 2, W // 2:], arr[H // 2:, : W // 2], arr[H // 2:, W // 2:] = 21845, 43690, 65535
    return _save(Image.fromarray(arr), "PNG")  # opens as mode I;16


def _exif_rotated() -> bytes:
    # Orientation 6 ("rotate 90° clockwise to display") is ignored, as verl's fetch_image and
    # the released code ignore it: the stored card is what every path sees.
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(card(), "JPEG", quality=95, exif=exif.tobytes())


def _animated_gif() -> bytes:
    frames = [card(), card(((0, 0, 0),) * 4), card((WHITE,) * 4)]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


def _truncated(fmt: str) -> bytes:
    data = _save(card(), fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return data[: len(data) // 2]


def _bad_png_crc() -> bytes:
    data = bytearray(_save(card(), "PNG"))
    data[29] ^= 0xFF  # inside the IHDR CRC
    return bytes(data)


GREYS = ((0, 0, 0), (85, 85, 85), (170, 170, 170), (255, 255, 255))
REJECT, GREY, SPECIAL = "reject", "grey", "special"
#: name -> (writer, expectation): quadrant colours, REJECT (a named ImageError), GREY
#: (grey card, checked by brightness order) or SPECIAL (its own test).
CORPUS = {
    "corrupt.jpg": (lambda: bytes(random.Random(1).randrange(256) for _ in range(4096)), REJECT),
    "jpeg_header_then_garbage.jpg": (lambda: b"\xff\xd8\xff\xe0" + bytes(random.Random(2).randrange(256) for _ in range(2048)), REJECT),
    "empty.png": (lambda: b"", REJECT),
    "text.png": (lambda: b"this is not an image\n" * 10, REJECT),
    "truncated.jpg": (lambda: _truncated("JPEG"), REJECT),
    "truncated.png": (lambda: _truncated("PNG"), REJECT),
    "bad_crc.png": (_bad_png_crc, REJECT),
    "bomb_header_100000x100000.png": (lambda: _png_header_only(100_000, 100_000), REJECT),
    "bomb_header_20000x13000.png": (lambda: _png_header_only(20_000, 13_000), REJECT),
    "aspect_100000x10.png": (lambda: _save(Image.new("RGB", (100_000, 10), (9, 9, 9)), "PNG"), REJECT),
    "aspect_10x100000.png": (lambda: _save(Image.new("L", (10, 100_000), 9), "PNG"), REJECT),
    "cmyk.jpg": (lambda: _save(card().convert("CMYK"), "JPEG", quality=95), CARD),
    "rgba.png": (_rgba, CARD[:3] + (WHITE,)),
    "palette_transparent.png": (_palette_transparent, CARD[:3] + (WHITE,)),
    "palette.gif": (lambda: _save(card().quantize(colors=8), "GIF"), CARD),
    "grey_L.png": (lambda: _save(card().convert("L"), "PNG"), GREY),
    "grey_LA.png": (lambda: _save(card().convert("LA"), "PNG"), GREY),
    "bilevel_1.png": (lambda: _save(card().convert("1"), "PNG"), GREY),
    "i16.png": (_i16, GREYS),
    "int32_I.tiff": (lambda: _save(Image.fromarray(np.asarray(card().convert("L"), np.int32)), "TIFF"), GREY),
    "float_F.tiff": (lambda: _save(card().convert("F"), "TIFF"), GREY),
    "exif_rotated.jpg": (_exif_rotated, CARD),
    "animated.gif": (_animated_gif, CARD),
    "one_pixel.png": (lambda: _save(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG"), SPECIAL),
    "webp.webp": (lambda: _save(card(), "WEBP", quality=95), CARD),
    "bmp.bmp": (lambda: _save(card(), "BMP"), CARD),
}
REJECTED = sorted(name for name, (_, expect) in CORPUS.items() if expect == REJECT)
GREY_CARDS = sorted(name for name, (_, expect) in CORPUS.items() if expect == GREY)
COLOUR_CARDS = sorted(name for name, (_, expect) in CORPUS.items() if isinstance(expect, tuple))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad_images")
    for name, (write, _) in CORPUS.items():
        (folder / name).write_bytes(write())
    return folder


def _zoom_all(path: Path, bank: ImageBank) -> tuple[Episode, list]:
    """The full path: bank decode and first view, then one zoom per quadrant."""
    raw = bank.get(path)
    view = bank.first_view(path)
    assert raw.mode == "RGB" and view.mode == "RGB"
    assert view.size == model_size(raw.width, raw.height, bank.view_rules)
    episode = Episode(raw, EpisodeConfig(max_turns=10), first_view=view)
    return episode, [episode.step(get_dialect().render(Zoom(box))) for box in QUADRANT_BOXES]


def _mean(img: Image.Image) -> np.ndarray:
    return np.asarray(img, np.float64).reshape(-1, 3).mean(axis=0)


@pytest.mark.parametrize("name", REJECTED)
def test_unusable_files_raise_an_image_error_naming_the_file(corpus, name):
    bank = ImageBank()
    with pytest.raises(ImageError) as err:
        _zoom_all(corpus / name, bank)
    assert name in str(err.value)
    assert bank.stats()["bytes"] == 0


def test_missing_file_and_directory_are_named(corpus):
    bank = ImageBank()
    for path in (corpus / "missing.jpg", corpus):
        with pytest.raises(ImageError, match=str(path.name)):
            bank.get(path)


@pytest.mark.parametrize("name", COLOUR_CARDS)
def test_odd_modes_give_correct_rgb_crops(corpus, name):
    episode, observations = _zoom_all(corpus / name, ImageBank())
    expected = CORPUS[name][1]
    assert episode.raw_image("original_image").size == (W, H)  # EXIF rotation applied
    for obs, colour, box in zip(observations, expected, QUADRANT_BOXES):
        assert obs is not None and obs.image is not None, obs
        assert obs.image.mode == "RGB"
        raw_crop = episode.raw_image(f"observation_{obs.index}")
        assert raw_crop.size == (int(box[2] * W) - int(box[0] * W), int(box[3] * H) - int(box[1] * H))
        np.testing.assert_allclose(_mean(obs.image), colour, atol=24, err_msg=f"{name} quadrant {box}")


@pytest.mark.parametrize("name", GREY_CARDS)
def test_grey_modes_keep_their_brightness_order(corpus, name):
    """Greyscale variants of the card: dark red/blue quadrants stay darker than white."""
    episode, observations = _zoom_all(corpus / name, ImageBank())
    means = [_mean(obs.image) for obs in observations]
    assert all(np.ptp(m) < 1.0 for m in means), means  # grey: R = G = B
    assert means[3][0] > means[0][0] and means[3][0] > means[2][0], means


def test_one_pixel_image_zooms_and_rejects_empty_boxes(corpus):
    episode, observations = _zoom_all(corpus / "one_pixel.png", ImageBank())
    assert all(obs.error and "at least 1 pixel" in obs.error for obs in observations)
    obs = episode.step(get_dialect().render(Zoom((0.0, 0.0, 1.0, 1.0))))
    assert obs.image is not None and obs.image.size == (224, 224)
    assert tuple(_mean(obs.image)) == (10, 200, 30)


def test_bank_refuses_images_over_its_decode_limit(tmp_path):
    """A highly compressible 3000x3000 PNG (a few kB) against a 4 MP decode limit."""
    path = tmp_path / "zeros_3000x3000.png"
    Image.new("RGB", (3000, 3000)).save(path)
    assert path.stat().st_size < 100_000
    with pytest.raises(ImageError, match="zeros_3000x3000.png.*decode limit"):
        ImageBank(max_decode_pixels=4_000_000).get(path)


def _flip_bytes(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice([1, 2, 8, 64])):
        i = rng.randrange(len(out))
        out[i] = rng.randrange(256) if rng.random() < 0.7 else out[i] ^ (1 << rng.randrange(8))
    if rng.random() < 0.2:
        out = out[: rng.randrange(1, len(out))]
    return bytes(out)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning", "ignore:Tag data larger than file:UserWarning",
                            "ignore:.*EXIF.*:UserWarning")  # Pillow's notes on the damage we made on purpose
def test_byte_flipped_files_fail_cleanly_or_zoom(tmp_path):
    """Random damage to valid files of every format: a named ImageError or a working zoom path."""
    n = scale(300, 3_000)
    rng = random.Random(7)
    seeds = {name: CORPUS[name][0]() for name in ("cmyk.jpg", "exif_rotated.jpg", "rgba.png", "i16.png",
                                                  "animated.gif", "webp.webp", "bmp.bmp", "int32_I.tiff")}
    failures, rejected, loaded = [], 0, 0
    for i in range(n):
        name = rng.choice(sorted(seeds))
        path = tmp_path / f"flip{i:05d}_{name}"
        path.write_bytes(_flip_bytes(rng, seeds[name]))
        try:
            _, observations = _zoom_all(path, ImageBank())
            assert all(obs is not None for obs in observations)
            loaded += 1
        except ImageError as e:
            if path.name not in str(e):
                failures.append(f"{path.name}: ImageError does not name the file: {e}")
            rejected += 1
        except Exception as e:  # noqa: BLE001 - anything else is a failure
            failures.append(f"{path.name}: {type(e).__name__}: {e}")
        path.unlink()
    TALLY["byte-flipped images"] = f"{n} files, {loaded} loaded and zoomed, {rejected} rejected with ImageError, {len(failures)} failures"
    assert not failures, f"{len(failures)} of {n} failed:\n" + "\n".join(failures[:20])


def test_corpus_tally(corpus):
    """Record the corpus size in the tally (the per-file tests above do the checking)."""
    files = sorted(p.name for p in corpus.iterdir())
    assert files == sorted(CORPUS)
    TALLY["bad-image corpus"] = (f"{len(files)} generated files ({len(REJECTED)} must be rejected, "
                                 f"{len(files) - len(REJECTED)} must zoom correctly)")
