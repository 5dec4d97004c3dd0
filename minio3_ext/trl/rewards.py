"""Reward functions with TRL's signature: ``f(prompts, completions, **columns) -> list[float | None]``.

- :class:`AccuracyReward`: the first ``<answer>`` of the trajectory judged against the
  row's ``solution`` by :class:`minio3_ext.judge.Judge` (rule-only without a judge
  endpoint). An unscorable verdict returns ``None``, which TRL turns into NaN and
  leaves out of the group baseline: a judge failure never becomes a silent 0.
- :func:`format_reward`: 1.0 when every assistant turn thinks inside ``<think>`` and
  the trajectory ends with an ``<answer>``; optional, weight it with
  ``GRPOConfig.reward_weights``.

Both log ``minio3/...`` metrics through TRL's ``log_metric`` hook.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from ..core.answers import extract_answer
from .termination import message_text

__all__ = ["AccuracyReward", "format_reward", "trajectory_text"]

_THINK_RE = re.compile(r"<think>.*?</think>", re.DOTALL)


def trajectory_text(completion: Any) -> str:
    """All assistant text of a completion (a string or a list of chat messages)."""
    if isinstance(completion, str):
        return completion
    return "\n".join(message_text(m) for m in completion if m.get("role") == "assistant")


def _question(prompt: Any, kwargs: dict[str, Any], i: int) -> str:
    for key in ("question", "problem"):
        values = kwargs.get(key)
        if values is not None and values[i]:
            return str(values[i]).replace("<image>", "").strip()
    if isinstance(prompt, str):
        return prompt
    return "\n".join(message_text(m) for m in prompt if m.get("role") == "user").strip()


class AccuracyReward:
    """Binary answer accuracy through the judge. Needs a ``solution`` column.

    ``AccuracyReward()`` judges by rules only; ``AccuracyReward(preset="released")``
    asks the Mini-o3 authors' judge (:mod:`minio3_ext.judge.released`) at the
    ``MINIO3_JUDGE_*`` endpoint, ``preset="hardened"`` the package's LLM judge there.
    """

    __name__ = "accuracy"

    def __init__(self, judge: Any = None, *, preset: str | None = None):
        if judge is None:
            from ..judge import Judge, JudgeConfig

            judge = Judge(JudgeConfig() if preset is None else JudgeConfig.from_env(preset=preset))
        self.judge = judge

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], solution: Sequence[Any] | None = None,
                 log_metric=None, **kwargs: Any) -> list[float | None]:
        if solution is None:
            raise ValueError("AccuracyReward needs a 'solution' column in the training dataset")
        from ..judge import JudgeItem

        items = [
            JudgeItem(_question(p, kwargs, i), str(s), extract_answer(trajectory_text(c)))
            for i, (p, c, s) in enumerate(zip(prompts, completions, solution, strict=True))
        ]
        verdicts = self.judge.score_sync(items)
        scores = [None if v.score is None else float(v.score) for v in verdicts]
        if log_metric is not None:
            log_metric("minio3/judge/unscorable_share", sum(s is None for s in scores) / max(len(scores), 1))
            log_metric("minio3/answer_share", sum(it.prediction is not None for it in items) / max(len(items), 1))
        return scores


def format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """1.0 if every assistant turn has a ``<think>`` block and the last one answers, else 0.0."""
    out = []
    for c in completions:
        # TRL's Qwen response parser moves a leading <think> block into ``reasoning_content``
        turns = [{"content": c}] if isinstance(c, str) else [m for m in c if m.get("role") == "assistant"]
        thinks = bool(turns) and all(m.get("reasoning_content") or _THINK_RE.search(message_text(m)) for m in turns)
        answered = bool(turns) and extract_answer(message_text(turns[-1])) is not None
        out.append(1.0 if thinks and answered else 0.0)
    return out
