"""Parity: every turn of the parser fuzz corpus, read through verl's registered tool
parsers and the step verl's stock ``ToolAgentLoop`` takes from a call to the image tool
(``json.loads`` of the arguments, then :meth:`Episode.parse_call`), and through the
``minio3_agent`` loop's :class:`~minio3_ext.verl.tool_parser.TurnReader`, gives the same
action as the core dialect, for both dialects, every coordinate system and both presets."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from verl.experimental.agent_loop.tool_parser import ToolParser

from minio3_ext.core import Answer, Invalid, ToolCall, Zoom
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


def _parsed(parser, corpus):
    async def run():
        return [(*(await parser.extract_tool_calls(ids)), n_obs) for ids, n_obs in corpus]

    return asyncio.run(run())


def _stock_step(dialect, calls, n_obs):
    """What verl's stock loop runs for a turn's calls: the first call's JSON arguments
    through the image tool (``ImageToolAdapter.execute`` → ``parse_call``); ``None`` when
    there is no call (verl ends the trajectory) or verl cannot read the arguments."""
    if not calls or calls[0].unreadable:
        return None
    return dialect.parse_call(calls[0].name, json.loads(calls[0].arguments), num_observations=n_obs, view_sizes=VIEWS)


@pytest.mark.parametrize("coords", ["relative", "thousand", "pixel"])
@pytest.mark.parametrize("name, preset", list(REGISTERED))
def test_registered_parser_gives_the_core_action(name, preset, coords, tokenizer, corpus):
    dialect = get_dialect(name, coords=coords, preset=preset)
    parser = ToolParser.get_tool_parser(REGISTERED[(name, preset)], tokenizer)
    kinds = set()
    for content, calls, n_obs in _parsed(parser, corpus):
        core = dialect.parse(content, num_observations=n_obs, view_sizes=VIEWS)
        stock = _stock_step(dialect, calls, n_obs)
        if stock is not None:
            assert stock == core, content
        elif calls:  # an unreadable body: verl answers it with an error turn, the core reads an attempt
            assert isinstance(core, Invalid) and core.attempted, content
        else:  # no call: the turn runs no tool
            assert not isinstance(core, (Zoom, ToolCall)), content
        kinds.add(type(core).__name__)
    assert {"Zoom", "Answer", "Invalid", "ToolCall"} <= kinds  # the corpus exercises every kind


class _Counting:
    """The tokenizer, counting decodes."""

    def __init__(self, tokenizer):
        self.tokenizer, self.decodes = tokenizer, 0

    def decode(self, ids, *a, **kw):
        self.decodes += 1
        return self.tokenizer.decode(ids, *a, **kw)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


def _reader(tokenizer):
    counting = _Counting(tokenizer)
    return tool_parser.TurnReader(counting), counting


def test_the_agent_loop_reader_decodes_each_turn_once_and_calls_nothing(tokenizer, corpus):
    """The loop's reader hands verl the decoded text and no call, and the loop the same text
    (``text_of`` of the same ids does not decode again); the episode reads it (``step``)."""
    dialect = get_dialect("minio3", coords="thousand", preset="strict", grounding_wins=True, observation_zero=True)
    kinds = set()
    for ids, n_obs in corpus:
        reader, counting = _reader(tokenizer)
        content, calls = asyncio.run(reader.extract_tool_calls(ids))
        assert content == tokenizer.decode(ids) and calls == []
        assert reader.text_of(ids) == content and counting.decodes == 1
        kinds.add(type(dialect.parse(content, num_observations=n_obs, view_sizes=VIEWS)).__name__)
    assert {"Zoom", "Answer", "Invalid"} <= kinds


def test_the_reader_decodes_a_turn_verl_did_not_parse(tokenizer):
    """verl returns before parsing when its own caps are hit: the loop decodes the ids itself, once."""
    ids = tokenizer.encode("<answer>B</answer>", add_special_tokens=False)
    reader, counting = _reader(tokenizer)
    assert reader.text_of(ids) == "<answer>B</answer>" and reader.text_of(ids) == "<answer>B</answer>"
    assert counting.decodes == 1
    other = list(ids)  # the next turn's ids: decoded again
    reader.text_of(other)
    assert counting.decodes == 2


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
    _, calls = asyncio.run(strict.extract_tool_calls(ids))
    assert calls == []
    reader, _ = _reader(tokenizer)
    asyncio.run(reader.extract_tool_calls(ids))
    assert get_dialect("minio3").parse(reader.text_of(ids)) == Answer("B")
    released = ToolParser.get_tool_parser(tool_parser.RELEASED_NAME, tokenizer)
    _, calls = asyncio.run(released.extract_tool_calls(ids))
    assert [c.name for c in calls] == ["zoom"]
    assert _stock_step(get_dialect("minio3", preset="released"), calls, 0) == Zoom((0.0, 0.0, 0.5, 0.5), "original_image")
