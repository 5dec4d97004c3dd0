"""Reward functions with TRL's signature; the judge is the real rule-path Judge."""

from __future__ import annotations

import pytest

from minio3_ext.judge import Judge, JudgeConfig, Verdict
from minio3_ext.trl import AccuracyReward, format_reward


def _completion(*turns):
    return [{"role": "assistant", "content": t} for t in turns]


PROMPTS = [[{"role": "user", "content": "What character is in the red circle?"}]] * 4


def test_accuracy_reward_judges_the_first_answer_of_the_trajectory():
    logged = {}
    reward = AccuracyReward(Judge(JudgeConfig()))
    completions = [
        _completion("<think>zoom</think>", "<answer>K</answer> then <answer>Q</answer>"),
        _completion("<answer>Q</answer>"),
        _completion("no idea"),
        _completion("<answer> k </answer>"),
    ]
    scores = reward(PROMPTS, completions, solution=["K", "K", "K", "K"], question=["q?"] * 4,
                    log_metric=lambda k, v: logged.__setitem__(k, v))
    assert scores == [1.0, 0.0, 0.0, 1.0]
    assert logged["minio3/answer_share"] == 0.75 and logged["minio3/judge/unscorable_share"] == 0.0


class _FailingJudge:
    def score_sync(self, items):
        return [Verdict(None, "unscorable", error="timeout") for _ in items]


def test_an_unscorable_verdict_is_none_never_zero():
    scores = AccuracyReward(_FailingJudge())(PROMPTS[:1], [_completion("<answer>K</answer>")], solution=["K"])
    assert scores == [None]


def test_accuracy_reward_names_the_missing_column():
    with pytest.raises(ValueError, match="'solution' column"):
        AccuracyReward(Judge(JudgeConfig()))(PROMPTS[:1], [_completion("<answer>K</answer>")])


def test_format_reward():
    parsed_think = {"role": "assistant", "content": "<answer>K</answer>", "reasoning_content": "look"}
    completions = [
        _completion("<think>a</think>", "<think>b</think><answer>K</answer>"),
        [parsed_think],  # TRL's Qwen parser moved <think> into reasoning_content
        _completion("<think>a</think>", "<answer>K</answer>"),  # second turn does not think
        _completion("<think>a</think>"),  # never answers
    ]
    assert format_reward(completions) == [1.0, 1.0, 0.0, 0.0]
