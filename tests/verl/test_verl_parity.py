"""Parity: every turn of the parser fuzz corpus, read through verl's registered tool
parser and the agent loop's step from its calls to an action
(:func:`minio3_ext.verl.tool_parser.action_of_turn`), gives the same action as the core
dialect, for both dialects, every coordinate system and both presets."""

from __future__ import annotations

import asyncio
import random

import pytest
from verl.experimental.agent_loop.tool_parser import ToolParser

from minio3_ext.core import Answer, Zoom
from minio3_ext.core.dialect import get_dialect
from minio3_ext.testing import build_tokenizer
from minio3_ext.verl import tool_parser

# tests/ is on sys.path (its conftest); the fuzz corpus is the reliability suite's
from reliability.generators import fuzz_text, valid_action

N = 400
REGISTERED = {("minio3", "strict"): tool_parser.NAME, ("minio3", "released"): tool_parser.RELEASED_NAME,
              ("hermes", "strict"): tool_parser.HERMES_NAME, ("hermes", "released"): tool_parser.HERMES_NAME}
VIEWS = {"original_image": (644, 476), "observation_1": (308, 252), "observation_2": (1400, 980),
         "observation_3": (224, 224)}


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="module")
def corpus(tokenizer) -> list[tuple[list[int], int]]:
    rng = random.Random(20261201)
    out = []
    for i in range(N):
        n_obs = rng.randrange(4)
        text = fuzz_text(rng, n_obs) if i % 4 else valid_action(rng, n_obs)
        # lone surrogates cannot reach a tokenizer: the text the model could emit
        text = text.encode("utf-8", "replace").decode("utf-8")
        out.append((tokenizer.encode(text, add_special_tokens=False), n_obs))
    return out


def _verl_actions(parser, dialect, corpus):
    async def run():
        out = []
        for ids, n_obs in corpus:
            content, calls = await parser.extract_tool_calls(ids)
            ctx = dict(num_observations=n_obs, view_sizes={k: v for k, v in VIEWS.items()})
            out.append((content, n_obs, tool_parser.action_of_turn(dialect, content, calls, **ctx)))
        return out

    return asyncio.run(run())


@pytest.mark.parametrize("coords", ["relative", "thousand", "pixel"])
@pytest.mark.parametrize("name, preset", list(REGISTERED))
def test_registered_parser_gives_the_core_action(name, preset, coords, tokenizer, corpus):
    dialect = get_dialect(name, coords=coords, preset=preset)
    parser = ToolParser.get_tool_parser(REGISTERED[(name, preset)], tokenizer)
    kinds = set()
    for content, n_obs, action in _verl_actions(parser, dialect, corpus):
        core = dialect.parse(content, num_observations=n_obs, view_sizes=VIEWS)
        assert action == core, content
        kinds.add(type(core).__name__)
    assert {"Zoom", "Answer", "Invalid", "ToolCall"} <= kinds  # the corpus exercises every kind


def test_the_agent_loop_parser_follows_its_dialect_options(tokenizer, corpus):
    """The loop builds its parser from the episode's dialect (any option mix)."""
    dialect = get_dialect("minio3", coords="thousand", preset="strict", grounding_wins=True, observation_zero=True)
    parser = tool_parser.parser_for(dialect, tokenizer)
    for content, n_obs, action in _verl_actions(parser, dialect, corpus):
        assert action == dialect.parse(content, num_observations=n_obs, view_sizes=VIEWS), content


@pytest.mark.parametrize("text", [
    '<ANSWER>B</ANSWER> then <grounding>{"bbox_2d": [0, 0, 0.5, 0.5], "source": "original_image"}</grounding>',
    '<think>sure</think><Answer>B</Answer><grounding>{"bbox_2d": [0, 0, 0.5, 0.5]}</grounding>',
])
def test_an_answer_in_any_case_before_a_grounding_is_the_answer(text, tokenizer):
    """The disagreement of issue 10: the core read Answer('B'), verl's case-sensitive
    parser a zoom. Both now follow the dialect; the released preset keeps the released
    loop's reading (any <grounding> is a zoom)."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    strict = ToolParser.get_tool_parser(tool_parser.NAME, tokenizer)
    content, calls = asyncio.run(strict.extract_tool_calls(ids))
    assert calls == []
    assert tool_parser.action_of_turn(get_dialect("minio3"), content, calls) == Answer("B")
    released = ToolParser.get_tool_parser(tool_parser.RELEASED_NAME, tokenizer)
    content, calls = asyncio.run(released.extract_tool_calls(ids))
    assert [c.name for c in calls] == ["zoom"]
    action = tool_parser.action_of_turn(get_dialect("minio3", preset="released"), content, calls)
    assert action == Zoom((0.0, 0.0, 0.5, 0.5), "original_image")
