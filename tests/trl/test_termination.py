"""Termination reasons read from TRL tool-loop messages (no trainer needed)."""

from __future__ import annotations

import pytest
from PIL import Image

from minio3_ext.core import Episode, EpisodeConfig
from minio3_ext.trl.termination import rollout_record, termination_reason

CALL = {"type": "function", "function": {"name": "zoom", "arguments": {"bbox_2d": [0, 0, 0.5, 0.5]}}}


def _assistant(text="", calls=None):
    m = {"role": "assistant", "content": text}
    if calls:
        m["tool_calls"] = calls
    return m


TOOL = {"role": "tool", "name": "zoom", "content": [{"type": "text", "text": "crop"}]}


@pytest.mark.parametrize("messages, truncated, cap, expected", [
    ([_assistant("<answer>B</answer>")], False, 5, "answered"),
    ([_assistant("", [CALL]), TOOL, _assistant("<think>x</think><answer>B</answer>")], False, 5, "answered"),
    ([_assistant("I give up")], False, 5, "no_answer"),
    ([_assistant("", [CALL]), TOOL, _assistant("", [CALL])], False, 1, "turn_limit"),
    # still calling a tool before the cap: TRL rolled back an overlong tool result
    ([_assistant("", [CALL]), TOOL, _assistant("", [CALL])], False, 5, "context_limit"),
    ([_assistant("<think>long")], True, 5, "context_limit"),
    ([_assistant("", [CALL]), TOOL], True, 5, "context_limit"),  # post-tool turn fully truncated
    ("<answer>4</answer>", False, 0, "answered"),
    ("plain text", True, 0, "context_limit"),
])
def test_termination_reason(messages, truncated, cap, expected):
    assert termination_reason(messages, truncated=truncated, max_tool_rounds=cap) == expected


class _Env:
    def __init__(self, episode):
        self.episode = episode


def test_rollout_record_closes_the_environment_episode():
    img = Image.new("RGB", (400, 300), "white")
    ep = Episode(img, EpisodeConfig(max_turns=2, dialect="hermes", max_context_tokens=None))
    assert ep.step('<tool_call>{"name": "zoom", "arguments": {"bbox_2d": [0, 0, 0.5, 0.5]}}</tool_call>') is not None
    messages = [_assistant("", [CALL]), TOOL, _assistant("<answer>7</answer>")]
    record = rollout_record(messages, truncated=False, max_tool_rounds=1, environment=_Env(ep))
    assert record == {"reason": "answered", "turns": 2, "zooms": 1, "invalid_actions": 0}
    assert ep.answer == "7" and ep.termination_reason == "answered"


def test_rollout_record_keeps_a_reason_the_episode_reached_itself():
    img = Image.new("RGB", (400, 300), "white")
    ep = Episode(img, EpisodeConfig(max_turns=6, max_images=2, dialect="hermes", max_context_tokens=None))
    call = '<tool_call>{"name": "zoom", "arguments": {"bbox_2d": [0, 0, 0.5, 0.5]}}</tool_call>'
    ep.step(call)
    assert ep.step(call) is None and ep.termination_reason == "image_limit"
    messages = [_assistant("", [CALL]), TOOL, _assistant("", [CALL]), TOOL, _assistant("<answer>7</answer>")]
    assert rollout_record(messages, truncated=False, max_tool_rounds=5, environment=_Env(ep))["reason"] == "image_limit"


def test_rollout_record_without_environment_counts_tool_errors():
    err = {"role": "tool", "name": "zoom", "content": "{'error': 'bad box'}"}
    record = rollout_record([_assistant("", [CALL]), err, _assistant("nothing")], truncated=False, max_tool_rounds=5)
    assert record == {"reason": "no_answer", "turns": 2, "zooms": 1, "invalid_actions": 1}
