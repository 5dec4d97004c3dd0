"""Environment soak: many episodes of random valid and invalid actions, memory checked flat.

1,000 episodes by default, 10,000 with ``MINIO3_FULL=1``, run by 4 threads that
share one small :class:`ImageBank` (so it evicts constantly) over a pool of images
that includes unreadable files. After every bank call the bank's bytes must stay
within its budget and match its entries; process RSS may not grow past a bound
between the end of warm-up and the end of the run.
"""

from __future__ import annotations

import gc
import json
import random
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minio3_ext.core.actions import Answer, ToolCall, Zoom
from minio3_ext.core.dialect import get_dialect
from minio3_ext.core.episode import TERMINATION_REASONS, Episode, EpisodeConfig
from minio3_ext.core.images import ImageBank, ImageError, model_size

from .conftest import TALLY, scale
from .generators import fuzz_text, random_box

pytestmark = pytest.mark.reliability

THREADS = 4
#: RSS growth allowed after warm-up: the bank is already full then, so this only
#: absorbs allocator slack (glibc arenas of 4 threads: +16 to +40 MB seen, the same
#: after 1,000 and 10,000 episodes). A leak of one small crop per episode exceeds it.
RSS_GROWTH_LIMIT = 96 << 20
SIZES = [(400, 300), (640, 480), (1024, 768), (1300, 900), (2000, 1500), (2400, 1000), (300, 1200), (900, 900)]
CONFIGS = [
    EpisodeConfig(),
    EpisodeConfig.from_options(max_turns=12, max_images=4, dialect="hermes", tools=("zoom", "rotate")),
    EpisodeConfig.from_options(max_turns=8, max_context_tokens=6000, clamp=True),
    EpisodeConfig.from_options(max_turns=3, coords="thousand", tools=("zoom", "rotate")),
    EpisodeConfig.from_options(max_turns=10, dialect="hermes", coords="pixel", max_context_tokens=None),
]


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


@pytest.fixture(scope="module")
def image_pool(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("soak")
    rng = np.random.default_rng(3)
    paths = []
    for i, (w, h) in enumerate(SIZES):
        coarse = rng.integers(0, 256, (h // 20 + 1, w // 20 + 1, 3), dtype=np.uint8)
        img = Image.fromarray(coarse).resize((w, h), Image.Resampling.BILINEAR)
        path = folder / f"img{i}.{'jpg' if i % 2 else 'png'}"
        img.save(path)
        paths.append(path)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "too_thin.png").write_bytes(b"")
    Image.new("RGB", (4000, 10)).save(folder / "too_thin.png")
    return paths + [folder / "broken.jpg", folder / "too_thin.png"]


def _turn(rng: random.Random, episode: Episode) -> str:
    """A random turn: mostly sensible, often broken."""
    sources = ["original_image"] + [f"observation_{i}" for i in range(1, episode.num_observations + 1)]
    roll = rng.random()
    if roll < 0.50:
        box, source = random_box(rng), rng.choice(sources)
        if episode.config.dialect.coords == "thousand":
            box = [v * 1000 for v in box]
        elif episode.config.dialect.coords == "pixel":  # pixels of the view the model saw
            w, h = model_size(*episode.raw_image(source).size, episode.config.view)
            box = [box[0] * w, box[1] * h, box[2] * w, box[3] * h]
        return get_dialect(episode.config.dialect).render(Zoom(tuple(box), source))
    if roll < 0.58:
        return get_dialect().render(ToolCall("rotate", {"angle": rng.choice([90, 180, 270, 45])}, rng.choice(sources)))
    if roll < 0.66:
        return "<think>done</think>" + get_dialect().render(Answer(rng.choice(["red", "7", "a cat"])))
    if roll < 0.70:
        return "I am not sure what to do."
    return fuzz_text(rng, episode.num_observations)


class _Soak:
    def __init__(self, bank: ImageBank, pool: list[Path]):
        self.bank, self.pool = bank, pool
        self.lock = threading.Lock()
        self.reasons: Counter = Counter()
        self.turns = self.image_errors = self.max_bank_bytes = 0
        self.failures: list[str] = []

    def check_bank(self) -> None:
        stats = self.bank.stats()
        with self.lock:
            self.max_bank_bytes = max(self.max_bank_bytes, stats["bytes"])
        if stats["bytes"] > self.bank.max_bytes:
            raise AssertionError(f"bank holds {stats['bytes']} bytes over its budget of {self.bank.max_bytes}")

    def episode(self, rng: random.Random) -> None:
        path = rng.choice(self.pool)
        try:
            raw, view = self.bank.get(path), self.bank.first_view(path)
        except ImageError as e:
            assert path.name in str(e), e
            with self.lock:
                self.image_errors += 1
            return
        finally:
            self.check_bank()
        counter = (lambda text: len(text) // 4) if rng.random() < 0.5 else None
        episode = Episode(raw, rng.choice(CONFIGS), first_view=view, token_counter=counter, prompt_tokens=rng.choice([0, 300]))
        turns = 0
        while not episode.done:
            episode.step(_turn(rng, episode))
            turns += 1
            assert turns <= episode.config.max_turns
        assert episode.termination_reason in TERMINATION_REASONS
        assert episode.num_images <= episode.config.max_images
        assert episode.is_overturn == (episode.termination_reason in episode.config.masked_reasons)
        json.dumps(episode.summary())
        with self.lock:
            self.turns += turns
            self.reasons[episode.termination_reason] += 1

    def worker(self, seed: int, count: int) -> None:
        rng = random.Random(seed)
        for i in range(count):
            try:
                self.episode(rng)
            except Exception as e:  # noqa: BLE001 - every failure is collected and reported
                with self.lock:
                    self.failures.append(f"thread seed {seed} episode {i}: {type(e).__name__}: {e}")


def _run(soak: _Soak, episodes: int, seed: int) -> None:
    threads = [threading.Thread(target=soak.worker, args=(seed + t, episodes // THREADS)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.mark.slow  # 1,000 episodes (~19 s); `pytest -m reliability` runs it too
def test_soak_memory_stays_flat(image_pool):
    n = scale(1_000, 10_000)
    biggest = max(w * h for w, h in SIZES) * 3
    bank = ImageBank(max_bytes=3 * biggest)
    soak = _Soak(bank, image_pool)

    _run(soak, max(n // 10, THREADS), seed=100)  # warm-up: allocator pools and bank fill up
    gc.collect()
    rss_warm = _rss_bytes()
    warm = Counter(soak.reasons), soak.image_errors
    _run(soak, n, seed=1000)
    gc.collect()
    growth = _rss_bytes() - rss_warm

    stats = bank.stats()
    ended = sum((soak.reasons - warm[0]).values())
    TALLY["environment soak"] = (
        f"{n} episodes after {max(n // 10, THREADS)} warm-up ({ended} ran, {soak.image_errors - warm[1]} refused an "
        f"unreadable image; {soak.turns} turns in all) on {THREADS} threads, "
        f"{len(soak.failures)} failures; ends {dict(soak.reasons - warm[0])}; bank peak {soak.max_bank_bytes / 2**20:.1f} of "
        f"{bank.max_bytes / 2**20:.1f} MB budget, {stats['evictions']} evictions, {stats['decodes']} decodes; "
        f"RSS growth after warm-up {growth / 2**20:+.1f} MB")
    assert not soak.failures, f"{len(soak.failures)} episodes failed:\n" + "\n".join(soak.failures[:20])
    assert soak.max_bank_bytes <= bank.max_bytes
    assert stats["evictions"] > 0, "the budget is meant to force evictions"
    assert set(soak.reasons) >= {"answered", "turn_limit", "no_answer", "image_limit", "context_limit"}, soak.reasons
    assert stats["bytes"] == sum(e.nbytes for e in bank._entries.values()), "bank byte count drifted"  # noqa: SLF001
    assert growth <= RSS_GROWTH_LIMIT, f"RSS grew by {growth / 2**20:.1f} MB after warm-up"
