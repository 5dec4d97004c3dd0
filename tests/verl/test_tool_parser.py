"""The ``<grounding>`` dialect as a registered verl tool parser."""

from __future__ import annotations

import asyncio
import json

import pytest
from verl.experimental.agent_loop.tool_parser import ToolParser

from minio3_ext.testing import build_tokenizer
from minio3_ext.verl.metrics import batch_metrics, trajectory_indicators
from minio3_ext.verl.tool_parser import Minio3ToolParser


@pytest.fixture(scope="module")
def parser():
    return ToolParser.get_tool_parser("minio3", build_tokenizer())


def _calls(parser, text):
    ids = parser.tokenizer.encode(text, add_special_tokens=False)
    return asyncio.run(parser.extract_tool_calls(ids))


def test_registered_under_its_name(parser):
    assert isinstance(parser, Minio3ToolParser)


@pytest.mark.parametrize("text, args", [
    ('<think>t</think><grounding>{"bbox_2d": [0.1, 0.2, 0.3, 0.4], "source": "observation_1"}</grounding>',
     {"bbox_2d": [0.1, 0.2, 0.3, 0.4], "source": "observation_1"}),
    # any key order, single quotes, trailing text, no closing tag (generation stopped)
    ("<grounding>{'source': 'original_image', 'bbox_2d': [0, 0, 0.5, 0.5]} done", {"source": "original_image", "bbox_2d": [0, 0, 0.5, 0.5]}),
])
def test_grounding_becomes_a_zoom_call(parser, text, args):
    content, calls = _calls(parser, text)
    assert content == text and [c.name for c in calls] == ["zoom"] and json.loads(calls[0].arguments) == args


def test_unreadable_body_is_still_a_zoom_call_that_the_tool_rejects(parser):
    _, calls = _calls(parser, "<grounding>[[[ not json")
    assert calls[0].name == "zoom" and calls[0].arguments.startswith("[[[")
    with pytest.raises(json.JSONDecodeError):
        json.loads(calls[0].arguments)


@pytest.mark.parametrize("text", ["<answer>B</answer>", "<answer>B</answer><grounding>{}</grounding>", "no action"])
def test_answers_and_plain_text_have_no_call(parser, text):
    assert _calls(parser, text)[1] == []


def test_metrics_skip_rows_of_other_loops_and_average_the_rest():
    rows = [{"termination_reason": "turn_limit", "masked": True, "turns": 6, "zooms": 5, "invalid_actions": 1},
            {"termination_reason": "answered", "masked": False, "turns": 2, "zooms": 1, "invalid_actions": 0},
            {}]
    m = batch_metrics(rows)
    assert m["minio3/turn_limit"] == 0.5 and m["minio3/masked"] == 0.5 and m["minio3/turns"] == 4.0
    assert m["minio3/invalid_rate"] == pytest.approx((1 / 6) / 2)
    assert trajectory_indicators({}) == {} and batch_metrics([{}]) == {}
