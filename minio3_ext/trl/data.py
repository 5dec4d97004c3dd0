"""Dataset rows for TRL: GRPO prompts for the zoom environment, and oracle SFT trajectories.

- :func:`grpo_rows`: one conversational prompt per dataset row, no pixels; the
  :class:`~minio3_ext.trl.environment.ZoomEnvironment` adds the image on ``reset``.
- :func:`oracle_conversation`: a cold-start trajectory for rows with a known
  ``target_bbox`` (the synthetic set): think, zoom onto the target with a margin, read
  the crop, answer. The crop is cut by a core :class:`~minio3_ext.core.Episode`, so it
  is exactly what the environment would return. The toy analogue of the paper's
  few-shot trajectory synthesis.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

from ..core.actions import ORIGINAL, Answer
from ..core.answers import ground_truth_text
from ..core.chat import episode_images, episode_messages
from ..core.dialect import get_dialect
from ..core.episode import Episode, EpisodeConfig
from ..core.images import ImageBank, default_bank, resize_for_model
from .environment import IMAGE_PATH_KEY, row_image_path

__all__ = ["grpo_rows", "oracle_box", "oracle_conversation", "ZOOM_TOOL_NAME", "ZOOM_THOUGHT", "ANSWER_THOUGHT"]

ZOOM_TOOL_NAME = "zoom"
_PASS_THROUGH = ("doc_id", "solution", "data_source", "target_bbox", "width", "height")


def grpo_rows(rows: Iterable[Mapping[str, Any]], system_prompt: str | None = None, dialect: str = "hermes",
              config: EpisodeConfig | None = None) -> list[dict[str, Any]]:
    """Rows for ``GRPOTrainer(train_dataset=...)`` with the zoom environment.

    The system prompt is the dialect's (:meth:`~minio3_ext.core.dialect.Dialect.system_prompt`):
    pass the environment's ``config`` so it names the same coordinate system and tools
    (``dialect`` alone: that dialect, relative boxes, zoom only). The user turn is empty
    text: ``ZoomEnvironment.reset`` appends the first view and the question to it (TRL's
    convention for environment-owned prompts).
    """
    d = config.dialect if config is not None else get_dialect(dialect)
    system = d.system_prompt() if system_prompt is None else system_prompt
    out = []
    for i, row in enumerate(rows):
        if "solution" not in row:
            raise ValueError(f"grpo_rows: row {i} ({row.get('doc_id', '?')!r}) has no 'solution'")
        question = row.get("question") or row.get("problem")
        if not question:
            raise ValueError(f"grpo_rows: row {i} ({row.get('doc_id', '?')!r}) has no 'problem'/'question'")
        item = {k: row[k] for k in _PASS_THROUGH if k in row}
        item.update({
            "prompt": [{"role": "system", "content": system}, {"role": "user", "content": ""}],
            IMAGE_PATH_KEY: row_image_path(dict(row)),
            "question": d.strip_slots(question),
            "solution": _solution(row, i),
        })
        out.append(item)
    return out


def _solution(row: Mapping[str, Any], i: int) -> str:
    try:
        return ground_truth_text(row["solution"])
    except ValueError as e:
        raise ValueError(f"grpo_rows: row {i} ({row.get('doc_id', '?')!r}): {e}") from None


def oracle_box(row: Mapping[str, Any], margin: float = 1.0, grid: float = 0.01) -> tuple[float, float, float, float]:
    """Relative box around ``target_bbox`` grown by ``margin`` × its size on each side,
    rounded *outwards* to multiples of ``grid`` (so it always contains the target), clamped to [0, 1].

    A coarse grid (e.g. 0.1) gives short, learnable tool calls for a tiny model.
    """
    try:
        x0, y0, x1, y1 = (float(v) for v in row["target_bbox"])
        w, h = float(row["width"]), float(row["height"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"oracle_box: row {row.get('doc_id', '?')!r} needs target_bbox, width, height ({e})") from None
    if not 0 < grid <= 1:
        raise ValueError(f"oracle_box: grid must be in (0, 1], got {grid}")
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    steps = round(1 / grid)

    def down(v: float) -> float:
        return max(0.0, math.floor(v * steps + 1e-9) / steps)

    def up(v: float) -> float:
        return min(1.0, math.ceil(v * steps - 1e-9) / steps)

    return (down((x0 - dx) / w), down((y0 - dy) / h), up((x1 + dx) / w), up((y1 + dy) / h))


ZOOM_THOUGHT = "Too small to read: zoom in."
ANSWER_THOUGHT = "I can read it."


def oracle_conversation(
    row: Mapping[str, Any],
    config: EpisodeConfig | None = None,
    bank: ImageBank | None = None,
    *,
    system_prompt: str | None = None,
    margin: float = 1.0,
    grid: float = 0.01,
    boxes: Sequence[Sequence[float]] | None = None,
    explicit_source: bool = False,
    zoom_thought: str = ZOOM_THOUGHT,
) -> dict[str, Any]:
    """``{"messages": [...], "images": [first view, crop, ...]}`` for TRL's ``SFTTrainer``:
    one oracle zoom per box (each on the latest observation), then the answer.

    ``boxes``: the zoom boxes (default: :func:`oracle_box` of the row's ``target_bbox``
    with ``margin`` and ``grid``); the demo passes the nested-zoom oracle's. Each call
    names its ``source`` from the second on (``explicit_source``: the first too). The
    crops are cut by a core :class:`~minio3_ext.core.Episode` (exactly what the
    environment returns) and the messages are the episode's
    (:func:`~minio3_ext.core.chat.episode_messages`), images as ``{"type": "image"}``
    placeholders, so the row stores in a ``datasets.Dataset``; train with
    :class:`minio3_ext.trl.sft.ToolImageCollator`, which fills them.
    """
    config = config or EpisodeConfig(dialect="hermes", max_context_tokens=None)
    bank = bank if bank is not None else default_bank()
    path = row_image_path(dict(row))
    raw = bank.get(path)
    first_view = bank.first_view(path) if bank.view_rules == config.view else resize_for_model(raw, config.view, first=True)
    episode = Episode(raw, config, first_view=first_view)
    d = episode.dialect
    for box in (boxes if boxes is not None else [oracle_box(row, margin, grid)]):
        arguments: dict[str, Any] = {"bbox_2d": list(box)}  # short calls train faster
        if episode.num_observations or explicit_source:
            arguments["source"] = f"observation_{episode.num_observations}" if episode.num_observations else ORIGINAL
        obs = episode.call(ZOOM_TOOL_NAME, arguments, text=d.render_thought(zoom_thought))
        if obs is None or obs.image is None:
            raise ValueError(f"oracle_conversation: row {row.get('doc_id', '?')!r}: oracle zoom failed ({obs and obs.text})")
    episode.act(Answer(str(row["solution"])), text=d.render_thought(ANSWER_THOUGHT) + d.render(Answer(str(row["solution"]))))
    question = d.strip_slots(row.get("question") or row.get("problem") or "")
    return {"messages": episode_messages(episode, question, system=system_prompt, placeholders=True),
            "images": episode_images(episode)}
