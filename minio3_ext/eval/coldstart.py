"""Cold-start synthesis: few-shot exemplar trajectories steer an existing VLM,
which solves training questions through the real environment; only trajectories the
judge marks correct become SFT data.

Exemplars live in a small JSON file (``minio3_ext/data/coldstart_exemplars.json``
ships six)::

    {"version": 1,
     "generator": {"seed": 2025, "width": 1600, "height": 1200},   # synthetic images
     "exemplars": [{"index": 0, "answer": "E", "turns": ["<think>…</think><grounding>…</grounding>", …,
                                                       "<think>…</think><answer>E</answer>"]},
                   {"image": "/path/own.jpg", "question": "…", "answer": "…", "turns": [...]}, …]}

An exemplar names either a synthetic ``index`` (image and question regenerated from
:mod:`minio3_ext.data.synthetic`) or its own ``image``, ``question`` and ``answer``.
Every exemplar is replayed through a real :class:`~minio3_ext.core.Episode` when loaded:
its crops are real crops, and an exemplar that fails (an action error, a wrong final
answer) is refused with a message naming it.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

from PIL import Image

from ..core.answers import normalize_answer
from ..core.chat import episode_messages
from ..core.episode import Episode, EpisodeConfig
from ..core.images import ViewRules, load_image, resize_for_model
from .runner import Policy

__all__ = ["DEFAULT_EXEMPLARS", "Exemplar", "load_exemplars", "FewShotPolicy", "ExemplarError"]

DEFAULT_EXEMPLARS = "coldstart_exemplars.json"


class ExemplarError(ValueError):
    """An exemplar file or exemplar that cannot be used."""


class Exemplar:
    """One replayed exemplar: its chat messages (images as PIL) without the system prompt."""

    def __init__(self, name: str, messages: list[dict[str, Any]], answer: str, actions: list[dict[str, Any]]):
        self.name = name
        self.messages = messages
        self.answer = answer
        self.actions = actions
        """``Episode.summary()["actions"]`` of the replay: kinds and pixel boxes."""


def _source(entry: Mapping[str, Any], generator: Mapping[str, Any], name: str) -> tuple[Image.Image, str, str]:
    if "image" in entry:
        for key in ("question", "answer"):
            if not entry.get(key):
                raise ExemplarError(f"{name}: an exemplar with its own image needs {key!r}")
        return load_image(entry["image"]), str(entry["question"]), str(entry["answer"])
    from ..data.synthetic import make_scene, question_for, render_scene

    try:
        scene = make_scene(int(generator["seed"]), int(entry["index"]), int(generator["width"]), int(generator["height"]))
    except KeyError as e:
        raise ExemplarError(f"{name}: synthetic exemplars need 'index' and generator seed/width/height (missing {e})") from None
    return render_scene(scene), question_for(scene), scene.target.char


def load_exemplars(
    path: str | os.PathLike[str] | None = None,
    *,
    config: EpisodeConfig = EpisodeConfig(max_turns=16),
    max_pixels: int = 250_000,
    limit: int | None = None,
) -> list[Exemplar]:
    """Load and replay exemplars (the shipped six by default), images shrunk to
    ``max_pixels`` so that several fit in the context next to the real question."""
    if path is None:
        text = resources.files("minio3_ext.data").joinpath(DEFAULT_EXEMPLARS).read_text(encoding="utf-8")
        where = DEFAULT_EXEMPLARS
    else:
        text, where = Path(path).read_text(encoding="utf-8"), str(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ExemplarError(f"{where}: not valid JSON ({e.msg} at line {e.lineno})") from None
    entries = doc.get("exemplars") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ExemplarError(f"{where}: expected an object with a non-empty 'exemplars' list")
    rules = ViewRules(max_pixels=max_pixels, min_pixels=min(40_000, max_pixels))
    cfg = replace(config, view=rules, max_turns=max(config.max_turns, max(len(e.get("turns", [])) for e in entries)))
    out = []
    for i, entry in enumerate(entries[:limit] if limit else entries):
        name = f"{where} exemplar {i}"
        original, question, answer = _source(entry, doc.get("generator", {}), name)
        out.append(_replay(name, entry.get("turns") or [], original, question, answer, cfg))
    return out


def _replay(name: str, turns: Sequence[str], original: Image.Image, question: str, answer: str,
            config: EpisodeConfig) -> Exemplar:
    first = resize_for_model(original, config.view, first=True)
    episode = Episode(original, config, first_view=first)
    for k, text in enumerate(turns):
        obs = episode.step(text)
        record = episode.records[-1]
        if record.error:
            raise ExemplarError(f"{name}, turn {k + 1}: the action failed: {record.error}")
        if obs is None:
            break
    if episode.termination_reason != "answered" or len(episode.records) != len(turns):
        raise ExemplarError(f"{name}: must end with an <answer> on its last turn (ended: {episode.termination_reason})")
    if normalize_answer(episode.answer or "") != normalize_answer(answer):
        raise ExemplarError(f"{name}: answers {episode.answer!r} but the correct answer is {answer!r}")
    messages = episode_messages(episode, question)[1:]  # the exemplar goes after the real system prompt
    return Exemplar(name, messages, answer, episode.summary()["actions"])


class FewShotPolicy:
    """Wraps a policy: exemplar conversations go between the system prompt and the
    real question, introduced as worked examples."""

    def __init__(self, policy: Policy, exemplars: Sequence[Exemplar]):
        self.policy = policy
        self.prefix: list[dict[str, Any]] = []
        n = len(exemplars)
        for k, ex in enumerate(exemplars, 1):
            first, *rest = ex.messages
            intro = {"type": "text", "text": f"Worked example {k} of {n}:\n"}
            self.prefix.append({"role": first["role"], "content": [intro, *first["content"]]})
            self.prefix.extend(rest)
        self.intro = {"type": "text", "text": "Now solve this new question in the same way:\n"} if n else None

    async def __call__(self, messages: list[dict[str, Any]]) -> str:
        system, question, *history = messages
        if self.intro is not None:
            question = {**question, "content": [self.intro, *question["content"]]}
        return await self.policy([system, *self.prefix, question, *history])
