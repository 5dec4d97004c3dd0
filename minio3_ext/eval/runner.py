"""Run one visual-search episode against any chat policy, and derive turn budgets.

A *policy* is an async callable ``policy(messages) -> str`` that returns the next
assistant turn. ``messages`` is a list of chat messages whose ``content`` is always a
list of parts, images as PIL objects::

    [{"role": "system", "content": [{"type": "text", "text": "..."}]},
     {"role": "user", "content": [{"type": "image", "image": <PIL.Image>},
                                  {"type": "text", "text": "\\nWhat colour is the car?"}]},
     {"role": "assistant", "content": [{"type": "text", "text": "<think>..."}]},
     {"role": "user" | "tool", "content": [...observation text and image...]}, ...]

Observations are ``user`` turns in the ``minio3`` dialect and ``tool`` turns in the
``hermes`` dialect. The same runner thus serves an OpenAI-compatible endpoint
(:class:`minio3_ext.eval.openai_policy.OpenAIPolicy` turns images into base64 data
URLs) and a local Hugging Face model (its processor's chat template takes these
messages as they are).

Budgets: run each item once with the largest budget; the trajectory under a smaller
budget ``b`` is the prefix of its first ``b`` turns (:func:`at_budget`). The policy
never sees the budget, so the prefix is exactly what a run with ``max_turns=b``
would have sampled; if the policy was still acting at turn ``b`` that run ends in
``turn_limit``. This is how later budgets reuse earlier turns instead of
regenerating them.

See :mod:`minio3_ext.eval.records` for the trajectory record these functions return.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import math
import os
import re
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Mapping

from PIL import Image

from ..core.chat import episode_messages
from ..core.episode import OVERTURN_REASONS, Episode, EpisodeConfig
from ..core.images import ImageBank, default_bank
from .records import as_item

__all__ = [
    "Policy", "ContextLimitExceeded", "ImageLimitExceeded", "approx_tokens", "run_episode",
    "score_trajectory", "at_budget", "MAX_BUDGET_KEY",
]

Policy = Callable[[list[dict[str, Any]]], Awaitable[str]]
MAX_BUDGET_KEY = "budget"


class ContextLimitExceeded(Exception):
    """Raised by a policy when the conversation no longer fits the model's context
    (e.g. vLLM's 400 "maximum context length"): the episode ends as ``context_limit``."""


class ImageLimitExceeded(Exception):
    """Raised by a policy when the server takes no more images in one prompt (e.g.
    vLLM's 400 "At most 4 image(s) may be provided in one prompt"): the episode ends as
    ``image_limit``. ``limit`` is the server's limit when its message states it."""

    def __init__(self, message: str = "", limit: int | None = None):
        super().__init__(message)
        self.limit = limit


def approx_tokens(text: str) -> int:
    """A tokenizer-free estimate of a text's token count (~3.5 characters per token)."""
    return math.ceil(len(text) / 3.5)


def safe_name(text: str) -> str:
    """A file name for an item id; an id that cleaning changed gets a hash of the id, so
    ids that clean alike (``a/b``, ``a_b``) keep apart.

    >>> safe_name("a_b"), safe_name("a/b") != safe_name("a_b")
    ('a_b', True)
    """
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:80] or "item"
    if name != text:
        name += "-" + hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return name


async def run_episode(
    policy: Policy,
    row: Mapping[str, Any],
    config: EpisodeConfig = EpisodeConfig(max_turns=32),
    bank: ImageBank | None = None,
    *,
    sample: int = 0,
    crops_dir: str | os.PathLike[str] | None = None,
    token_counter: Callable[[str], int] | None = approx_tokens,
    system_prompt: str | None = None,
    exact_context: bool = False,
) -> dict[str, Any]:
    """Drive one :class:`~minio3_ext.core.Episode` with ``policy`` and return its trajectory.

    ``row`` is an evaluation item or a dataset row (see :func:`records.as_item`).
    ``config.max_turns`` is the budget the episode runs under (use the largest budget
    you want to report). ``crops_dir`` saves each observation the model saw as JPEG
    and records its path; without it ``observation_image`` is ``None`` and viewers
    recut the crops from the original. The trajectory is unscored (``verdict`` None,
    ``scored`` False): see :func:`score_trajectory`. Exceptions from ``policy``
    propagate (an endpoint failure is not a model failure); malformed model output
    never raises. ``exact_context``: a turn whose text carries ``context_tokens`` (the
    server's count, :class:`~.openai_policy.TurnText`) sets the context to that number
    instead of adding ``token_counter``'s count of the turn.
    """
    item = as_item(row)
    bank = bank if bank is not None else default_bank()
    # decoding, cropping and resizing run in worker threads: a 12M px original or a 2M px
    # crop takes tens of milliseconds, which on the event loop would stall every episode in flight
    original = await asyncio.to_thread(bank.get, item["image"])
    first_view = await asyncio.to_thread(bank.first_view, item["image"])
    question = item["question"]
    episode = Episode(original, config, first_view=first_view, token_counter=token_counter)
    if token_counter is not None:  # the opening's text counts too
        opening = episode_messages(episode, question, system=system_prompt)
        episode.context_tokens += sum(token_counter(p["text"]) for m in opening for p in m["content"] if p["type"] == "text")
    turns: list[dict[str, Any]] = []
    detail = None
    while not episode.done:
        messages = episode_messages(episode, question, system=system_prompt)
        try:
            text = await policy(messages)
        except ContextLimitExceeded as e:
            episode.end("context_full")
            detail = str(e) or None
            break
        except ImageLimitExceeded as e:
            episode.end("image_cap")
            detail = str(e) or None
            break
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        counted = getattr(text, "context_tokens", None) if exact_context else None
        text = str(text)
        obs = await asyncio.to_thread(episode.step, text, context_tokens=counted)
        turn: dict[str, Any] = {
            "turn": episode.turns, "assistant": text, "action": _record(episode.records[-1]),
            "observation_index": None, "observation_image": None, "observation_text": None,
        }
        if obs is not None:
            turn["observation_text"] = obs.text
            if obs.image is not None:
                turn["observation_index"] = obs.index
                if crops_dir is not None:
                    turn["observation_image"] = await asyncio.to_thread(
                        _save_crop, obs.image, crops_dir, item["id"], sample, obs.index)
        turns.append(turn)
    summary = episode.summary()
    return {
        **item,
        "sample": sample,
        "budget": config.max_turns,
        "dialect": config.dialect.name, "coords": config.dialect.coords, "preset": config.dialect.preset,
        "tools": list(config.dialect.tools),
        "turns": turns,
        "num_turns": len(turns),
        "answer": summary["answer"],
        "termination_reason": summary["termination_reason"],
        "is_overturn": summary["is_overturn"],
        "termination_detail": detail,
        "verdict": None,
        "scored": False,
    }


def _record(record: Any) -> dict[str, Any]:
    d = dict(vars(record))
    for key in ("box", "box_in_original"):
        if d.get(key) is not None:
            d[key] = list(d[key])
    return d


def _save_crop(image: Image.Image, crops_dir: str | os.PathLike[str], item_id: str, sample: int, index: int) -> str:
    folder = Path(crops_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{safe_name(str(item_id))}_s{sample}_obs{index}.jpg"
    image.save(path, quality=90, subsampling=0)  # 4:4:4: 1-px colour detail survives
    return str(path)


async def score_trajectory(trajectory: dict[str, Any], judge: Any) -> dict[str, Any]:
    """Set ``verdict`` with ``judge`` (a :class:`minio3_ext.judge.Judge` or anything with
    the same ``async score(items) -> verdicts``). No answer scores 0 without a judge call;
    an unscorable judge result stays ``None`` and is never turned into 0."""
    if trajectory.get("answer") is None:
        trajectory["verdict"] = 0
    else:
        from ..judge import JudgeItem

        item = JudgeItem(trajectory["question"], str(trajectory["ground_truth"]), trajectory["answer"])
        (verdict,) = await judge.score([item])
        score = getattr(verdict, "score", verdict)
        trajectory["verdict"] = None if score is None else int(float(score) >= 0.5)
    trajectory["scored"] = True
    return trajectory


def at_budget(trajectory: Mapping[str, Any], budget: int, masked_reasons: Iterable[str] = OVERTURN_REASONS) -> dict[str, Any]:
    """The trajectory a run with ``max_turns=budget`` would have produced (its prefix).

    Raises ``ValueError`` when the budget exceeds the one the trajectory ran under and
    the run was cut by that turn limit (what came after is unknown).
    """
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    ran = int(trajectory[MAX_BUDGET_KEY])
    out = copy.deepcopy(dict(trajectory))
    out["budget"] = budget
    n = len(out["turns"])
    if n <= budget and not (budget > ran and out["termination_reason"] == "turn_limit"):
        return out
    if n <= budget:
        raise ValueError(
            f"trajectory {out.get('id')!r} sample {out.get('sample')} ran under a budget of {ran} turns and hit it; "
            f"budget {budget} cannot be derived from it")
    out["turns"] = out["turns"][:budget]
    last = out["turns"][-1]
    action = dict(last["action"])
    action["box"] = action["box_in_original"] = None  # the budget-b run never executed it
    if action.get("kind") != "invalid":
        action["error"] = None
    last.update(action=action, observation_index=None, observation_image=None, observation_text=None)
    out.update(num_turns=budget, answer=None, termination_reason="turn_limit",
               is_overturn="turn_limit" in set(masked_reasons))
    if out.get("scored"):
        out["verdict"] = 0  # no answer within the budget scores 0
    return out
