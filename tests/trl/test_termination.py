"""Termination reasons read from TRL tool-loop messages (no trainer needed)."""

from __future__ import annotations

import pytest

from minio3_ext.core import EpisodeConfig
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
    # the first turn whose action is an answer ends the episode in the core: answered, even if TRL went on
    ([_assistant("<answer>A</answer>", [CALL]), TOOL, _assistant("", [CALL])], False, 1, "answered"),
])
def test_termination_reason(messages, truncated, cap, expected):
    assert termination_reason(messages, truncated=truncated, max_tool_rounds=cap) == expected


def test_rollout_record_without_environment_counts_tool_errors():
    err = {"role": "tool", "name": "zoom", "content": "{'error': 'bad box'}"}
    record = rollout_record([_assistant("", [CALL]), err, _assistant("nothing")], truncated=False, max_tool_rounds=5)
    assert record == {"reason": "no_answer", "turns": 2, "zooms": 1, "invalid_actions": 1, "extra_calls": 0}


# -- with the zoom environment: the record is the core episode's --------------------------------

@pytest.fixture
def env_row(synthetic_rows):
    from minio3_ext.core import ImageBank, ViewRules
    from minio3_ext.trl import grpo_rows

    view = ViewRules(max_pixels=28 * 28 * 48, min_pixels=28 * 28 * 8)

    def make(**config):
        from minio3_ext.trl import ZoomEnvironment

        env = ZoomEnvironment(EpisodeConfig(**{"dialect": "hermes", "max_context_tokens": None, "view": view, **config}),
                              ImageBank(view_rules=view))
        env.reset(**grpo_rows(synthetic_rows[:1])[0])
        return env

    return make


def _loop(env, messages, turns):
    """TRL's tool loop by hand: append each assistant message, run its calls, append the tool messages."""
    from minio3_ext.trl.environment import bind_conversations

    bind_conversations([env], [messages])
    for turn in turns:
        messages.append(turn)
        results = []
        for c in turn.get("tool_calls", []):
            fn = c["function"]
            if fn["name"] in env.tools:
                results.append((fn["name"], getattr(env, fn["name"])(**fn["arguments"])))
            else:  # TRL answers a call it cannot route itself
                results.append((fn["name"], str({"error": f"Tool {fn['name']} not found."})))
        messages.extend({"role": "tool", "name": name, "content": r} for name, r in results)
    return messages


def test_rollout_record_closes_the_environment_episode(env_row):
    env = env_row(max_turns=2)
    messages = _loop(env, [], [_assistant("", [CALL])])
    messages.append(_assistant("<answer>7</answer>"))
    record = rollout_record(messages, truncated=False, max_tool_rounds=1, environment=env)
    assert record == {"reason": "answered", "turns": 2, "zooms": 1, "invalid_actions": 0, "extra_calls": 0}
    assert env.episode.answer == "7" and env.episode.termination_reason == "answered"


def test_rollout_record_keeps_a_reason_the_episode_reached_itself(env_row):
    env = env_row(max_turns=6, max_images=2)
    messages = _loop(env, [], [_assistant("", [CALL]), _assistant("", [CALL])])
    assert env.episode.termination_reason == "image_limit"
    messages.append(_assistant("<answer>7</answer>"))
    assert rollout_record(messages, truncated=False, max_tool_rounds=5, environment=env)["reason"] == "image_limit"


def test_an_answer_written_before_a_call_ends_the_episode_and_the_reward_judges_it(env_row):
    """Turn 1: <answer>K</answer> plus a zoom call, turn 2: <answer>Q</answer>. The core episode ends
    at turn 1 with "K"; the TRL record and AccuracyReward agree with it (old code: reward judged "K",
    the record had "Q" and ``answered`` at turn 2)."""
    from minio3_ext.judge import Judge, JudgeConfig
    from minio3_ext.trl import AccuracyReward

    env = env_row(max_turns=3)
    messages = _loop(env, [], [_assistant("<think>sure</think><answer>K</answer>", [CALL])])
    assert env.episode.termination_reason == "answered" and env.episode.num_observations == 0
    messages.append(_assistant("<answer>Q</answer>"))
    record = rollout_record(messages, truncated=False, max_tool_rounds=2, environment=env)
    assert record["reason"] == "answered" and env.episode.answer == "K" and record["turns"] == 1
    scores = AccuracyReward(Judge(JudgeConfig()))([[]] * 2, [messages, messages], solution=["K", "Q"],
                                                  question=["q"] * 2, environments=[env, env])
    assert scores == [1.0, 0.0]


def test_two_calls_in_one_message_are_one_turn(env_row):
    """Parallel calls: one turn per assistant message; the extra call is not run (an error note)."""
    env = env_row(max_turns=2)
    two = _assistant("<think>two at once</think>", [CALL, CALL])
    messages = _loop(env, [], [two])
    first, second = messages[1]["content"], messages[2]["content"]
    assert isinstance(first, list) and any(p["type"] == "image" for p in first)
    assert isinstance(second, str) and "one call per turn" in second
    assert env.episode.turns == 1 and env.episode.num_observations == 1 and not env.episode.done
    messages.append(_assistant("<answer>7</answer>"))
    record = rollout_record(messages, truncated=False, max_tool_rounds=1, environment=env)
    assert record["reason"] == "answered" and record["extra_calls"] == 1 and record["turns"] == 2


def test_the_environment_runs_the_call_trl_hands_it(env_row):
    """Issue 20: a message whose first call names a tool TRL cannot route (TRL answers it
    with an error) and whose second is a zoom: the environment acts on the zoom TRL hands it,
    with TRL's arguments (it read the message again and ran the unknown tool: an error turn
    answered to the zoom call)."""
    env = env_row(max_turns=3)
    unknown = {"type": "function", "function": {"name": "crop", "arguments": {"box": [0, 0, 1, 1]}}}
    box = {"type": "function", "function": {"name": "zoom", "arguments": {"bbox_2d": [0.5, 0.5, 1.0, 1.0]}}}
    messages = _loop(env, [], [_assistant("<think>look</think>", [unknown, box])])
    assert "not found" in messages[1]["content"]  # TRL's own answer
    assert isinstance(messages[2]["content"], list) and any(p["type"] == "image" for p in messages[2]["content"])
    (record,) = env.episode.records
    assert record.kind == "zoom" and record.box == (env.episode.raw_image("original_image").width // 2,
                                                    env.episode.raw_image("original_image").height // 2,
                                                    env.episode.raw_image("original_image").width,
                                                    env.episode.raw_image("original_image").height)
    assert env.episode.exchanges[0].call == ("zoom", {"bbox_2d": [0.5, 0.5, 1.0, 1.0]})
    messages.append(_assistant("<answer>7</answer>"))
    record = rollout_record(messages, truncated=False, max_tool_rounds=2, environment=env)
    assert record["reason"] == "answered" and record["turns"] == 2 and record["zooms"] == 1


def test_the_released_preset_runs_a_zoom_written_after_another_call(synthetic_rows):
    """``grounding_wins`` (released preset): a zoom anywhere in the turn is the turn's action,
    as the core reads the turn, even when TRL hands the environment another call first."""
    from minio3_ext.core import ImageBank, ViewRules
    from minio3_ext.core.dialect import get_dialect
    from minio3_ext.trl import ZoomEnvironment, grpo_rows

    view = ViewRules(max_pixels=28 * 28 * 48, min_pixels=28 * 28 * 8)
    d = get_dialect("minio3", preset="released", tools=("zoom", "rotate"))
    env = ZoomEnvironment(EpisodeConfig(max_turns=3, dialect=d, max_context_tokens=None, view=view), ImageBank(view_rules=view))
    env.reset(**grpo_rows(synthetic_rows[:1])[0])
    rotate = {"type": "function", "function": {"name": "rotate", "arguments": {"angle": 90}}}
    messages = _loop(env, [], [_assistant("<think>turn it, then look</think>", [rotate, CALL])])
    assert [r.kind for r in env.episode.records] == ["zoom"] and env.extra_calls == 1
    text = "<think>turn it, then look</think>" + d.render_call("rotate", {"angle": 90}) + d.render(
        d.parse_call("zoom", CALL["function"]["arguments"]))
    assert isinstance(d.parse(text), type(d.parse_call("zoom", CALL["function"]["arguments"])))  # the core's reading
    assert isinstance(messages[1]["content"], list)  # the zoom's image, answered to the first call


def test_a_stock_trainer_without_binding_is_replayed_per_message(env_row):
    env = env_row(max_turns=2)
    messages = [_assistant("", [CALL, CALL])]
    for c in messages[0]["tool_calls"]:  # a stock GRPOTrainer: every call reaches the environment unbound
        messages.append({"role": "tool", "name": "zoom", "content": env.zoom(**c["function"]["arguments"])})
    assert env.episode.termination_reason == "turn_limit"  # counted per call while the rollout ran
    messages.append(_assistant("<answer>7</answer>"))
    assert rollout_record(messages, truncated=False, max_tool_rounds=1, environment=env)["reason"] == "answered"
    assert env.episode.turns == 2 and env.episode.answer == "7"


@pytest.mark.parametrize("final, truncated, reason", [
    (_assistant("", [CALL]), False, "turn_limit"),          # TRL's cap: the call never ran
    (_assistant("<think>long"), True, "context_limit"),     # cut by max_completion_length in a tool loop
    (_assistant("<think>done"), False, "no_answer"),
    (_assistant("<answer>7</answer>"), True, "answered"),   # cut after a complete answer
])
def test_the_final_message_is_read_by_the_episode(env_row, final, truncated, reason):
    env = env_row(max_turns=2)
    messages = _loop(env, [], [_assistant("", [CALL])]) + [final]
    assert rollout_record(messages, truncated=truncated, max_tool_rounds=1, environment=env)["reason"] == reason


def test_a_rolled_back_tool_result_is_context_limit(env_row):
    env = env_row(max_turns=3)
    messages = _loop(env, [], [_assistant("", [CALL]), _assistant("", [CALL])])
    del messages[-1]  # TRL dropped the second result: it would not fit max_completion_length
    assert rollout_record(messages, truncated=False, max_tool_rounds=2, environment=env)["reason"] == "context_limit"


def test_both_trl_paths_ask_the_core_for_the_reason(env_row, monkeypatch):
    """The reason of a stop event is the core's table (``core.termination.STOP_EVENTS``), with
    and without the environment: change the table and both follow (they kept copies before)."""
    from minio3_ext.core import termination

    cut = [_assistant("", [CALL]), TOOL, _assistant("<think>long")]
    assert termination_reason(cut, truncated=True, max_tool_rounds=5) == "context_limit"
    monkeypatch.setitem(termination.STOP_EVENTS, "length", "no_answer")
    monkeypatch.setitem(termination.STOP_EVENTS, "turn_cap", "image_limit")
    assert termination_reason(cut, truncated=True, max_tool_rounds=5) == "no_answer"
    env = env_row(max_turns=2)
    messages = _loop(env, [], [_assistant("", [CALL])]) + [_assistant("<think>long")]
    assert rollout_record(messages, truncated=True, max_tool_rounds=1, environment=env)["reason"] == "no_answer"
    env = env_row(max_turns=3)
    messages = _loop(env, [], [_assistant("", [CALL])]) + [_assistant("", [CALL])]
    assert rollout_record(messages, truncated=False, max_tool_rounds=1, environment=env)["reason"] == "image_limit"
