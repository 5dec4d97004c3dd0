"""verl reward function: ``reward.custom_reward_function.path=pkg://minio3_ext.verl.reward``
(``name=compute_score``, the default).

The answer is the dialect's answer rule (:meth:`minio3_ext.core.dialect.Dialect.answer`:
the first answer tag, tight, length-capped): the one the ``minio3_agent`` loop's episode
recorded, else the final turn's (after the last observation), and it is judged by
:class:`minio3_ext.judge.Judge`: rule-only matching when no judge endpoint is
configured (``MINIO3_JUDGE_*`` environment, see :class:`~minio3_ext.judge.JudgeConfig`),
the LLM judge when it is. Over-turn trajectories are not judged: they leave the
gradient anyway. A judge failure is never a silent 0: the result says
``unscorable = 1`` and the ``minio3_agent`` loop, which scores in-loop, zeroes the
trajectory's response mask so it is excluded like an over-turn one.

Weights (``reward.custom_reward_function.reward_kwargs``): ``acc_weight`` (1.0),
``format_weight`` (0.0, an answer tag was given), ``tool_weight`` (0.0, zoomed and
correct: DeepEyes used 0.8 / 0.2 / 1.2), ``judge_preset`` (``hardened``, the default, or
``released``: the Mini-o3 authors' judge, :mod:`minio3_ext.judge.released`; the endpoint
still comes from ``MINIO3_JUDGE_*``). Any other reward kwarg is refused, naming it;
verl's own call-time kwargs (:data:`VERL_KWARGS`) are accepted and unused.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from typing import Any, Callable, Mapping

from minio3_ext.core.dialect import DIALECTS, get_dialect
from minio3_ext.judge import Judge, JudgeConfig, JudgeItem

from .metrics import trajectory_indicators

__all__ = ["compute_score", "get_judge", "call_reward_fn", "RESULT_KEYS", "OPTIONS", "VERL_KWARGS"]

#: ``reward.custom_reward_function.reward_kwargs`` keys :func:`compute_score` reads.
OPTIONS = ("acc_weight", "format_weight", "tool_weight", "judge_preset")
#: Keyword arguments verl's reward-loop managers add to every call when a reward-model
#: router is configured (``reward_loop/reward_manager/*.py``); no reward model is used here.
VERL_KWARGS = frozenset({"reward_router_address", "reward_model_tokenizer"})

#: Keys of every result (verl stacks reward extra info per key, so all rows share them).
RESULT_KEYS = ("score", "acc", "format", "judged", "unscorable", "overturn")

_judge: Judge | None = None
"""The judge of ``preset=None`` (``MINIO3_JUDGE_PRESET`` or hardened)."""
_judges: dict[str, Judge] = {}
"""Judges of explicitly named presets (``judge_preset`` reward kwarg)."""
_judge_lock = threading.Lock()


def get_judge(preset: str | None = None) -> Judge:
    """The process-wide judge (one per preset), configured from the environment on
    first use; ``preset=None`` takes ``MINIO3_JUDGE_PRESET`` or ``hardened``."""
    global _judge
    with _judge_lock:
        if preset is None:
            if _judge is None:
                _judge = Judge(JudgeConfig.from_env())
            return _judge
        if preset not in _judges:
            _judges[preset] = Judge(JudgeConfig.from_env(preset=preset))
        return _judges[preset]


async def call_reward_fn(fn: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
    """Call a ``reward.custom_reward_function`` the way verl's reward managers do: await
    a coroutine function, run a plain one in the event loop's executor (it may block on
    I/O). A bare number becomes ``{"score": number}``."""
    target = fn.args[0] if isinstance(fn, functools.partial) and fn.args else fn  # verl wraps it in a partial
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(target):
        result = await fn(**kwargs)
    else:
        result = await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, **kwargs))
    if inspect.isawaitable(result):  # a plain function that returned a coroutine
        result = await result
    return dict(result) if isinstance(result, Mapping) else {"score": float(result)}


def _question(extra_info: Mapping[str, Any]) -> str:
    q = extra_info.get("question")
    if q:
        return str(q)
    # verl's own rows keep the prompt messages; the last user turn holds the question
    for message in reversed(list(extra_info.get("raw_prompt") or [])):
        if isinstance(message, Mapping) and message.get("role") == "user" and isinstance(message.get("content"), str):
            return get_dialect().strip_slots(message["content"])
    return ""


def _answer(solution_str: str, extra_info: Mapping[str, Any]) -> str | None:
    """The policy's answer under the dialect's answer rule. The minio3 agent loop's
    episode recorded it from the assistant turns; otherwise it is read from the final
    turn: the text after the last observation, whose instructions quote the answer tags."""
    dialect = get_dialect()
    if extra_info.get("termination_reason") is not None:
        answer = extra_info.get("answer")
        return None if answer is None else str(answer)  # the episode recorded it capped
    text = solution_str or ""
    start = 0
    for name in DIALECTS:  # the instructions after an observation's image, in either dialect
        instructions = get_dialect(name).split_slots(get_dialect(name).observation_text(0, 1))[-1]
        if instructions in text:
            start = max(start, text.rfind(instructions) + len(instructions))
    return dialect.answer(text[start:])


async def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: Mapping[str, Any] | None = None,
    *,
    acc_weight: float = 1.0,
    format_weight: float = 0.0,
    tool_weight: float = 0.0,
    judge: Judge | None = None,
    judge_preset: str | None = None,
    **verl_kwargs: Any,
) -> dict[str, float]:
    """Score one trajectory; returns ``score`` plus the :data:`RESULT_KEYS` and ``minio3/*``
    indicators (numbers only, so verl can average them)."""
    unknown = sorted(set(verl_kwargs) - VERL_KWARGS)
    if unknown:
        raise ValueError(f"minio3_ext.verl.reward.compute_score: unknown option "
                         f"reward.custom_reward_function.reward_kwargs.{unknown[0]}; valid keys: {list(OPTIONS)}")
    extra_info = extra_info or {}
    indicators = trajectory_indicators(extra_info)
    overturn = bool(extra_info.get("is_overturn"))
    answer = _answer(solution_str, extra_info)
    result = {"score": 0.0, "acc": 0.0, "format": float(answer is not None), "judged": 0.0,
              "unscorable": 0.0, "overturn": float(overturn)}
    if overturn or answer is None:
        return {**result, **indicators}
    (verdict,) = await (judge or get_judge(judge_preset)).score([JudgeItem(_question(extra_info), str(ground_truth), answer)])
    if verdict.score is None:
        if indicators:  # the loop will mask this trajectory
            indicators["minio3/unscorable"] = indicators["minio3/masked"] = 1.0
        return {**result, "unscorable": 1.0, **indicators}
    acc = float(verdict.score)
    zoomed = float(extra_info.get("zooms") or 0) > 0
    score = acc_weight * acc + format_weight * result["format"] + tool_weight * float(zoomed and acc > 0)
    return {**result, "score": score, "acc": acc, "judged": 1.0, **indicators}
