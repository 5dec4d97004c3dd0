"""How an episode ends: the one stop-event map, the one answer cap, and that every driver
of an episode asks them instead of keeping a copy."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from PIL import Image

import minio3_ext
from minio3_ext.core import Episode, EpisodeConfig
from minio3_ext.core.dialect import get_dialect
from minio3_ext.core.termination import (
    MAX_ANSWER_CHARS, STOP_EVENTS, TERMINATION_REASONS, recorded_answer, stop_reason,
)

PACKAGE = Path(minio3_ext.__file__).parent
#: Modules that drive an episode for a framework: they name stop events, never reasons.
DRIVERS = ("verl/agent_loop.py", "trl/environment.py", "trl/termination.py", "eval/runner.py")


def test_the_stop_event_table():
    assert STOP_EVENTS == {
        "length": "context_limit", "context_full": "context_limit", "image_cap": "image_limit",
        "turn_cap": "turn_limit", "stopped": "no_answer",
    }
    assert set(STOP_EVENTS.values()) <= set(TERMINATION_REASONS)
    assert all(stop_reason(e) == r for e, r in STOP_EVENTS.items())
    with pytest.raises(ValueError, match="unknown stop event 'eos'; expected one of"):
        stop_reason("eos")


def test_the_episode_records_the_capped_answer():
    long = "x" * (MAX_ANSWER_CHARS + 200)
    ep = Episode(Image.new("RGB", (64, 64)), EpisodeConfig())
    assert ep.step(f"<think>t</think><answer>  {long} </answer>") is None
    assert ep.answer == "x" * MAX_ANSWER_CHARS == ep.summary()["answer"]
    # the text answer rule is the same function
    assert get_dialect().answer(f"<answer>{long}</answer>") == ep.answer == recorded_answer(long)
    assert recorded_answer(None) is None


def test_end_maps_the_event_and_can_count_the_cut_turn():
    ep = Episode(Image.new("RGB", (64, 64)), EpisodeConfig())
    ep.end("length", cut_turn=True)
    assert ep.termination_reason == "context_limit" and ep.is_overturn and ep.turns == 1
    assert ep.records[-1].kind == "none"
    ep.end("stopped")  # an ended episode keeps its reason
    assert ep.termination_reason == "context_limit"
    with pytest.raises(ValueError, match="unknown stop event"):
        Episode(Image.new("RGB", (64, 64))).end("context_limit")


def _code_strings(tree: ast.AST) -> list[str]:
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docs]


@pytest.mark.parametrize("module", DRIVERS)
def test_drivers_name_stop_events_and_never_map_them(module):
    """No driver ends an episode with a reason of its own (``terminate("context_limit")``) or
    caps an answer: it hands the core a stop event (``Episode.end``/``stop_reason``)."""
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    calls = [n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    assert "terminate" not in calls
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert "MAX_ANSWER_CHARS" not in names
    mapped = set(STOP_EVENTS.values())
    # eval's at_budget derives the budget-b run, whose end is the episode's own turn limit
    allowed = {"turn_limit"} if module == "eval/runner.py" else set()
    assert {s for s in _code_strings(tree) if s in mapped} <= allowed


@pytest.mark.parametrize("module", ("verl/reward.py", "judge/config.py", "judge/engine.py", "trl/termination.py"))
def test_nothing_downstream_of_the_episode_caps_the_answer_again(module):
    text = (PACKAGE / module).read_text(encoding="utf-8")
    assert "MAX_ANSWER_CHARS" not in text and "max_prediction_chars" not in text
