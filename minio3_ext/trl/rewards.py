"""Reward functions with TRL's signature: ``f(prompts, completions, **columns) -> list[float | None]``.

- :class:`AccuracyReward`: the answer the rollout's core episode recorded (the zoom
  environment's episode; without one, the first turn whose action is an answer, read by
  the same core rule) judged against the row's ``solution`` by
  :class:`minio3_ext.judge.Judge` (rule-only without a judge endpoint). An unscorable
  verdict returns ``None``. It is a *required* reward: :func:`propagate_unscorable`
  (called by :class:`~minio3_ext.trl.MaskedGRPOTrainer`) makes the whole row unscorable
  then, whatever other reward functions and weights there are — TRL alone would
  ``nansum`` the other columns and score the row as if the judge had said 0.
- :func:`format_reward`: 1.0 when every assistant turn thinks inside ``<think>`` and
  the trajectory ends with an ``<answer>`` (the dialect's rules); optional, weight it
  with ``GRPOConfig.reward_weights``.

Mark any reward function of your own as required with :func:`required`.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ..core.dialect import get_dialect
from .environment import ZoomEnvironment, message_text, turn_text
from .termination import rollout_answer

__all__ = ["AccuracyReward", "format_reward", "trajectory_text", "required", "is_required", "propagate_unscorable"]


def trajectory_text(completion: Any) -> str:
    """All assistant text of a completion (a string or a list of chat messages)."""
    if isinstance(completion, str):
        return completion
    return "\n".join(message_text(m) for m in completion if m.get("role") == "assistant")


def required(func: Callable) -> Callable:
    """Mark a reward function as required: a ``None`` (unscorable) from it makes the whole row unscorable."""
    func.required = True
    return func


def is_required(func: Any) -> bool:
    return bool(getattr(func, "required", False))


def propagate_unscorable(rewards_per_func, reward_funcs: Sequence[Any]):
    """Set every column of a row to NaN where a required reward function returned NaN.

    ``rewards_per_func``: TRL's ``(rows, functions)`` reward tensor (modified in place and
    returned). TRL leaves an all-NaN row out of its group's mean/std and gives it
    advantage 0; a row with only *some* NaN columns it would ``nansum``.
    """
    import torch

    columns = [i for i, f in enumerate(reward_funcs) if is_required(f)]
    if columns and rewards_per_func.numel():
        rows = torch.isnan(rewards_per_func[:, columns]).any(dim=1)
        rewards_per_func[rows] = torch.nan
    return rewards_per_func


def _question(prompt: Any, kwargs: dict[str, Any], i: int) -> str:
    d = get_dialect()
    for key in ("question", "problem"):
        values = kwargs.get(key)
        if values is not None and values[i]:
            return d.strip_slots(str(values[i]))
    if isinstance(prompt, str):
        return prompt
    return "\n".join(message_text(m) for m in prompt if m.get("role") == "user").strip()


class AccuracyReward:
    """Binary answer accuracy through the judge, on the episode's answer. Needs a ``solution`` column.

    ``AccuracyReward()`` judges by rules only; ``AccuracyReward(preset="released")``
    asks the Mini-o3 authors' judge (:mod:`minio3_ext.judge.released`) at the
    ``MINIO3_JUDGE_*`` endpoint, ``preset="hardened"`` the package's LLM judge there.
    """

    __name__ = "accuracy"
    required = True
    """An unscorable verdict makes the whole row unscorable (:func:`propagate_unscorable`)."""

    def __init__(self, judge: Any = None, *, preset: str | None = None):
        if judge is None:
            from ..judge import Judge, JudgeConfig

            judge = Judge(JudgeConfig() if preset is None else JudgeConfig.from_env(preset=preset))
        self.judge = judge

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], solution: Sequence[Any] | None = None,
                 log_metric=None, environments: Sequence[Any] | None = None, **kwargs: Any) -> list[float | None]:
        if solution is None:
            raise ValueError("AccuracyReward needs a 'solution' column in the training dataset")
        from ..judge import JudgeItem

        envs = list(environments) if environments is not None else [None] * len(completions)
        items = [
            JudgeItem(_question(p, kwargs, i), str(s), rollout_answer(c, env))
            for i, (p, c, s, env) in enumerate(zip(prompts, completions, solution, envs, strict=True))
        ]
        verdicts = self.judge.score_sync(items)
        scores = [None if v.score is None else float(v.score) for v in verdicts]
        if log_metric is not None:
            log_metric("minio3/judge/unscorable_share", sum(s is None for s in scores) / max(len(scores), 1))
            log_metric("minio3/answer_share", sum(it.prediction is not None for it in items) / max(len(items), 1))
        return scores


def format_reward(completions: Sequence[Any], environments: Sequence[Any] | None = None, **kwargs: Any) -> list[float]:
    """1.0 if every assistant turn has a ``<think>`` block and the last one answers, else 0.0."""
    out = []
    for i, c in enumerate(completions):
        env = environments[i] if environments is not None else None
        d = env.dialect if isinstance(env, ZoomEnvironment) else get_dialect()
        # TRL's Qwen response parser moves a leading <think> block into ``reasoning_content``
        turns = [{"content": c}] if isinstance(c, str) else [m for m in c if m.get("role") == "assistant"]
        texts = [turn_text(m, d) for m in turns]
        thinks = bool(texts) and all(d.think_ok(t) for t in texts)
        answered = bool(texts) and d.answer(texts[-1]) is not None
        out.append(1.0 if thinks and answered else 0.0)
    return out
