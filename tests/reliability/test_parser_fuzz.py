"""Parser fuzzing at scale: structured mutations of valid actions, never an uncaught exception.

20,000 inputs by default, 100,000 with ``MINIO3_FULL=1``. Every input goes through
``Dialect.parse`` under a random dialect / coordinate system / observation count;
every 10th also through ``Episode.step`` with the zoom and rotate tools enabled.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from minio3_ext.core.actions import ORIGINAL, Answer, Invalid, ToolCall, Zoom
from minio3_ext.core.dialect import get_dialect
from minio3_ext.core.episode import TERMINATION_REASONS, Episode, EpisodeConfig

from .conftest import TALLY, scale
from .generators import fuzz_text

pytestmark = pytest.mark.reliability

SEED = 20260
_MAX_REASON = 2000


def _clip(text: str) -> str:
    return repr(text) if len(text) <= 400 else repr(text[:200]) + " ... " + repr(text[-200:])


def _check_action(action, num_observations: int | None) -> None:
    """Invariants of any parse result."""
    assert isinstance(action, (Zoom, ToolCall, Answer, Invalid)), type(action)
    if isinstance(action, Zoom):
        x0, y0, x1, y1 = action.bbox
        assert all(isinstance(v, float) and math.isfinite(v) for v in action.bbox), action
        assert 0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0, action
    if isinstance(action, (Zoom, ToolCall)):
        src = action.source
        assert src == ORIGINAL or (src.startswith("observation_") and 1 <= int(src[12:]) <= (num_observations or 0)), src
    if isinstance(action, ToolCall):
        assert isinstance(action.name, str) and action.name and action.name != "zoom"
        json.dumps(dict(action.arguments), allow_nan=True)
    if isinstance(action, Answer):
        assert isinstance(action.text, str)
    if isinstance(action, Invalid):
        # the reason is shown to the model: it must be text, and short
        assert isinstance(action.reason, str) and 0 < len(action.reason) <= _MAX_REASON, action.reason[:200]


def _round_trip(action, dialect: str, num_observations: int | None) -> None:
    """A parsed zoom or answer, rendered again, parses back to itself."""
    if isinstance(action, (Zoom, Answer)):
        again = get_dialect(dialect).parse(get_dialect(dialect).render(action), num_observations=num_observations)
        assert again == action, (action, again)


def test_parsing_never_raises():
    n = scale(20_000, 100_000)
    rng = random.Random(SEED)
    failures: list[str] = []
    kinds: Counter = Counter()
    for i in range(n):
        num_obs = rng.choice([None, 0, 1, 2, 5])
        text = fuzz_text(rng, num_observations=num_obs or 0)
        dialect = rng.choice(["minio3", "hermes"])
        coords = rng.choice(["relative", "relative", "thousand", "pixel"])
        views = {ORIGINAL: (rng.randrange(28, 4000), rng.randrange(28, 4000))}
        views.update({f"observation_{k}": (rng.randrange(28, 2000), rng.randrange(28, 2000)) for k in range(1, (num_obs or 0) + 1)})
        try:
            action = get_dialect(dialect, coords=coords, clamp=rng.random() < 0.3).parse(text, num_observations=num_obs, view_sizes=rng.choice([views, None]))
            _check_action(action, num_obs)
            if coords == "relative":
                _round_trip(action, dialect, num_obs)
        except Exception as e:  # noqa: BLE001 - the point is to catch anything
            failures.append(f"#{i} {type(e).__name__}: {str(e)[:200]} <- {_clip(text)}")
            continue
        kinds[type(action).__name__] += 1
    TALLY["parser fuzz"] = f"{n} strings, {len(failures)} failures; results {dict(kinds)}"
    assert not failures, f"{len(failures)} of {n} inputs failed:\n" + "\n".join(failures[:20])
    # the generator must reach every outcome, or it tests less than it claims
    assert all(kinds[k] > n // 100 for k in ("Zoom", "ToolCall", "Answer", "Invalid")), kinds


def _small_image(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8), "RGB")


def test_episode_step_never_raises():
    n = scale(2_000, 10_000)
    rng = random.Random(SEED + 1)
    image = _small_image(0)
    failures: list[str] = []
    reasons: Counter = Counter()
    configs = [EpisodeConfig.from_options(max_turns=t, dialect=d, coords=c, clamp=cl, tools=("zoom", "rotate"))
               for t, d, c, cl in [(4, "minio3", "relative", False), (6, "hermes", "relative", True),
                                   (3, "minio3", "thousand", False), (8, "hermes", "pixel", True)]]
    episode = Episode(image, rng.choice(configs))
    for i in range(n):
        text = fuzz_text(rng, num_observations=episode.num_observations)
        try:
            obs = episode.step(text)
            if obs is not None:
                assert isinstance(obs.text, str) and obs.text
                assert (obs.image is None) == (obs.error is not None)
                if obs.image is not None:
                    assert obs.image.mode == "RGB" and min(obs.image.size) >= 28
            if episode.done:
                assert episode.termination_reason in TERMINATION_REASONS
                json.dumps(episode.summary())
                reasons[episode.termination_reason] += 1
                episode = Episode(image, rng.choice(configs))
        except Exception as e:  # noqa: BLE001
            failures.append(f"#{i} {type(e).__name__}: {str(e)[:200]} <- {_clip(text)}")
            episode = Episode(image, rng.choice(configs))
    TALLY["episode.step fuzz"] = f"{n} turns, {sum(reasons.values())} episodes, {len(failures)} failures; ends {dict(reasons)}"
    assert not failures, f"{len(failures)} of {n} turns failed:\n" + "\n".join(failures[:20])
    assert {"answered", "turn_limit", "no_answer"} <= set(reasons), reasons
