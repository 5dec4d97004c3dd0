"""Parity (issue 10): the parser fuzz corpus through the TRL path gives the core's action.

For every fuzz input (``tests/reliability/generators.py``; both dialects; relative,
thousand and pixel coordinates) the text is tokenised, parsed by transformers' response
parsing as TRL does it (``trl.chat_template_utils.parse_response`` with the dialect's
``response_schema`` for ``minio3``, TRL's own Qwen schema for ``hermes``), run through
``ZoomEnvironment`` the way TRL's tool loop calls it, and the episode's record of that
turn (kind, source, crop box, error, answer, termination) is compared with a core
``Episode.step`` on the same text. Inputs TRL cannot parse into a call while the core
reads one (e.g. the Python-literal ``{'bbox_2d': ...}`` the released code's ``eval``
accepted; TRL ends such a rollout as text), and turns whose text holds an action tag left
open before the calls (its body, for the core, runs on into the call TRL split off), are
counted, not compared; the counts are printed.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from PIL import Image

from minio3_ext.core import Episode, EpisodeConfig, ImageBank, ViewRules
from minio3_ext.core.actions import Invalid, ToolCall, Zoom
from minio3_ext.trl import ZoomEnvironment
from minio3_ext.trl.environment import bind_conversations, close_episode, turn_calls, turn_text


def _load_generators():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("_fuzz_generators", Path(__file__).parents[1] / "reliability" / "generators.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fuzz_text = _load_generators().fuzz_text

pytestmark = pytest.mark.slow

VIEW = ViewRules(max_pixels=28 * 28 * 64, min_pixels=28 * 28 * 4)
PER_CASE = 150
MAX_CHARS = 1500  # the corpus has 250k-character inputs; the regex parsing is what is compared, not its speed


@pytest.fixture(scope="module")
def parsers(tiny_qwen_dir):
    from trl.chat_template_utils import add_response_schema

    from minio3_ext.testing import load_tiny_qwen
    from minio3_ext.trl.templates import use_minio3_dialect, use_tool_chat_template

    out = {}
    for dialect in ("minio3", "hermes"):
        _, processor = load_tiny_qwen(tiny_qwen_dir)
        if dialect == "minio3":
            use_minio3_dialect(processor, EpisodeConfig.from_options(dialect="minio3", tools=("zoom", "rotate")))
        else:
            add_response_schema(use_tool_chat_template(processor, force=True))  # what GRPOTrainer sets itself
        out[dialect] = processor.tokenizer
    return out


def _record(episode: Episode) -> tuple:
    last = episode.records[-1] if episode.records else None
    return (episode.termination_reason, episode.answer, episode.num_observations, episode.invalid_actions,
            last and (last.kind, last.source, last.box, last.error))


@pytest.mark.parametrize("dialect", ["minio3", "hermes"])
@pytest.mark.parametrize("coords", ["relative", "thousand", "pixel"])
def test_fuzz_corpus_gives_the_same_action_through_trl_as_in_the_core(parsers, tmp_path, dialect, coords):
    from trl.chat_template_utils import parse_response

    path = tmp_path / "img.png"
    Image.new("RGB", (640, 480), (40, 90, 140)).save(path)
    bank = ImageBank(view_rules=VIEW)
    config = EpisodeConfig.from_options(dialect=dialect, coords=coords, tools=("zoom", "rotate"), max_turns=6,
                           max_context_tokens=None, view=VIEW)
    tok = parsers[dialect]
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    rng = random.Random(f"{dialect}-{coords}")
    tally, differ = Counter(), []
    warmup = [config.dialect.parse_call("zoom", {"bbox_2d": b}) for b in ([0, 0, 320, 240] if coords == "pixel" else
              [0, 0, 500, 500] if coords == "thousand" else [0, 0, 0.5, 0.5], ) * 2]
    while sum(tally.values()) < PER_CASE:
        text = fuzz_text(rng, 2).split("<|im_end|>")[0][:MAX_CHARS]
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: a model cannot emit them
            continue
        ids = tok(text, add_special_tokens=False)["input_ids"]
        text = tok.decode(ids)  # what the model would have written
        # the core: two zooms first, so observation_1/2 exist, then the turn
        core = Episode(bank.get(str(path)), config, first_view=bank.first_view(str(path)))
        for action in warmup:
            core.act(action)
        core.step(text)
        # TRL: parse_response, then the environment as TRL's tool loop calls it
        env = ZoomEnvironment(config, bank)
        env.reset(image_path=str(path), question="q")
        messages: list = []
        bind_conversations([env], [messages])
        for action in warmup:
            messages.append({"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "function": {"name": "zoom", "arguments": {}}}]})  # consumed below
            env._episode.act(action)  # the same warm-up state as the core episode
            env._next = len(messages)
        message = parse_response(tok, ids + [im_end])
        messages.append(message)
        calls = turn_calls(message)
        tools = set(env.tools)
        for name, arguments in calls:
            if name in tools and isinstance(arguments, dict):
                messages.append({"role": "tool", "name": name, "content": getattr(env, name)(**arguments)})
            else:  # TRL answers this call itself with {'error': ...}; the environment reads the turn later
                messages.append({"role": "tool", "name": str(name), "content": "{'error': 'not run'}"})
        ran = env.episode.turns > len(warmup)
        if not ran:
            close_episode(env, messages)
        if not calls and isinstance(core.dialect.parse(text), (Zoom, ToolCall)):
            tally["core reads a call TRL's parser could not"] += 1  # TRL ends the rollout as text
            continue
        before = config.dialect.parse(turn_text(message, config.dialect))
        if calls and isinstance(before, Invalid) and before.attempted:
            # an action tag left open in the text before the calls (e.g. inside <think>): the core reads
            # its body on into the call's text, which TRL's parser has split off
            tally["TRL split an open action tag from its body"] += 1
            continue
        same = _record(core) == _record(env.episode) if ran or core.done else _record(core)[1:] == _record(env.episode)[1:]
        tally["same" if same else "different"] += 1
        if not same:
            differ.append((text[:300], _record(core), _record(env.episode), message))
    print(dict(tally))
    assert not differ, f"{len(differ)} of {sum(tally.values())} differ, e.g. {differ[:3]}"
    assert tally["same"] >= PER_CASE // 2
