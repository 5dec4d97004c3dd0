"""Zoom environment for TRL's multi-turn tool loop (``GRPOTrainer(environment_factory=...)``).

TRL creates one instance per rollout, calls ``reset(**row)`` with the dataset row, and
exposes every public method except ``reset``/``get_reward`` as a tool, its schema read
from the signature and docstring. Here the only tool is :meth:`ZoomEnvironment.zoom`;
it drives a core :class:`~minio3_ext.core.Episode` and returns the crop as an image
content block, which TRL puts into the tool message, hands to generation and keeps
for the training forward.

``reset`` returns the model-facing first view (from the shared raw-image bank, decoded
once per path) and the question, appended to the row's last user message, so the
dataset itself carries no pixels::

    from functools import partial
    env_factory = partial(ZoomEnvironment, config=EpisodeConfig(max_turns=6, dialect="hermes"))
    trainer = MaskedGRPOTrainer(model, reward_funcs=[AccuracyReward()], args=MaskedGRPOConfig(max_turns=6),
                                train_dataset=grpo_dataset(rows), environment_factory=env_factory)

Both dialects work: TRL hands the environment parsed arguments either way; with
``dialect="minio3"`` pair it with :func:`minio3_ext.trl.templates.use_minio3_dialect`,
which renders and parses ``<grounding>`` calls and shows observations as user turns.

Rows need ``image_path`` (or ``images``: a list of paths, first one used) and
``question`` (or ``problem``); see :func:`minio3_ext.trl.data.grpo_rows`.
"""

from __future__ import annotations

import json
from typing import Any

from ..core import prompts
from ..core.episode import Episode, EpisodeConfig
from ..core.images import ImageBank, default_bank, resize_for_model

__all__ = ["ZoomEnvironment", "IMAGE_PATH_KEY", "content_with_image", "row_image_path"]

IMAGE_PATH_KEY = "image_path"
"""Row column with the raw image path (not ``image``/``images``: TRL would treat those as pixels)."""


def row_image_path(row: dict[str, Any]) -> str:
    path = row.get(IMAGE_PATH_KEY)
    if path is None and row.get("images"):
        images = row["images"]
        path = images[0] if isinstance(images, (list, tuple)) else images
    if not isinstance(path, str) or not path:
        raise ValueError(f"ZoomEnvironment.reset: row {row.get('doc_id', '?')!r} has no '{IMAGE_PATH_KEY}' (a raw image path)")
    return path


def _question(row: dict[str, Any]) -> str:
    question = row.get("question") or row.get("problem")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"ZoomEnvironment.reset: row {row.get('doc_id', '?')!r} has no 'question' text")
    return question


def content_with_image(text: str, image) -> list[dict[str, Any]]:
    """Observation text with the image placed at its ``<image>`` slot."""
    before, _, after = text.partition("<image>")
    parts: list[dict[str, Any]] = []
    if before:
        parts.append({"type": "text", "text": before})
    parts.append({"type": "image", "image": image})
    if after:
        parts.append({"type": "text", "text": after})
    return parts


class ZoomEnvironment:
    """One rollout's visual-search state. The public methods are TRL tools; keep helpers private."""

    def __init__(self, config: EpisodeConfig | None = None, bank: ImageBank | None = None):
        self._config = config or EpisodeConfig(dialect="hermes", max_context_tokens=None)
        self._bank = bank if bank is not None else default_bank()  # an empty bank is falsy (__len__)
        self._episode: Episode | None = None
        self._row: dict[str, Any] = {}

    @property
    def config(self) -> EpisodeConfig:
        return self._config

    @property
    def episode(self) -> Episode | None:
        """The current episode (``None`` before the first ``reset``)."""
        return self._episode

    @property
    def row(self) -> dict[str, Any]:
        return self._row

    def reset(self, **row: Any) -> list[dict[str, Any]]:
        """Start an episode on the row's image; return the first view and the question."""
        path = row_image_path(row)
        raw = self._bank.get(path)
        if self._bank.view_rules == self._config.view:
            view = self._bank.first_view(path)  # resized once per path, shared by all rollouts
        else:
            view = resize_for_model(raw, self._config.view, first=True)
        self._episode = Episode(raw, self._config, first_view=view)
        self._row = row
        return content_with_image(prompts.user_prompt(_question(row)), view)

    def zoom(self, bbox_2d: list[float], source: str = "original_image") -> list[dict[str, Any]] | str:
        """Zoom in: crop a region of an image to look at it in detail.

        Args:
            bbox_2d: The region as [x0, y0, x1, y1] in relative coordinates: the image width and height are both 1.0, so each value is in [0, 1], with x0 < x1 and y0 < y1.
            source: The image to crop: "original_image", or "observation_i" for the i-th zoomed-in image returned earlier.

        Returns:
            The zoomed-in image, or a message explaining why the zoom failed.
        """
        if self._episode is None:
            raise RuntimeError("ZoomEnvironment.zoom called before reset")
        if self._episode.done:
            return f"The episode has ended ({self._episode.termination_reason}); give your final answer."
        call = {"name": "zoom", "arguments": {"bbox_2d": bbox_2d, "source": source}}
        obs = self._episode.step("<tool_call>" + json.dumps(call, default=str) + "</tool_call>")
        if obs is None:
            return f"No more zooms are allowed ({self._episode.termination_reason}); give your final answer."
        if obs.image is None:
            return obs.text
        return content_with_image(obs.text, obs.image)
