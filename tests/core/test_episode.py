"""The episode state machine: budgets, termination reasons, over-turn flag, record."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minio3_ext.core import OVERTURN_REASONS, TERMINATION_REASONS, Episode, EpisodeConfig, Zoom
from minio3_ext.core.dialect import get_dialect
from minio3_ext.core.images import model_size

from .conftest import coord_image

THINK = "<think>the sign is small</think>"


def zoom(bbox=(0.0, 0.0, 0.5, 0.5), source="original_image", dialect="minio3"):
    return THINK + get_dialect(dialect).render(Zoom(bbox, source))


def answer(text="red"):
    return THINK + f"<answer>{text}</answer>"


@pytest.fixture
def image():
    return coord_image(400, 300)


def run(episode, turns, **kw):
    return [episode.step(t, **kw) for t in turns]


def test_answered(image):
    ep = Episode(image)
    obs, end = run(ep, [zoom(), answer(" red ")])
    assert obs.index == 1 and obs.image is not None and end is None
    assert ep.done and ep.termination_reason == "answered" and ep.answer == "red" and not ep.is_overturn


def test_no_answer_is_not_masked(image):
    ep = Episode(image)
    ep.step(zoom())
    assert ep.step("<think>I give up.</think>") is None
    assert ep.termination_reason == "no_answer" and not ep.is_overturn
    assert ep.records[-1].kind == "none" and "no action" in ep.records[-1].error


def test_turn_limit_when_still_zooming_on_the_last_turn(image):
    ep = Episode(image, EpisodeConfig(max_turns=3))
    first, second, last = run(ep, [zoom(), zoom(source="observation_1"), zoom(source="observation_2")])
    assert first.index == 1 and second.index == 2 and last is None
    assert ep.termination_reason == "turn_limit" and ep.is_overturn
    assert ep.num_observations == 2  # the last zoom was recorded, not executed
    assert (ep.records[-1].kind, ep.records[-1].source, ep.records[-1].box) == ("zoom", "observation_2", None)


def test_last_turn_outcomes(image):
    answered = Episode(image, EpisodeConfig(max_turns=2))
    run(answered, [zoom(), answer()])
    assert answered.termination_reason == "answered"
    silent = Episode(image, EpisodeConfig(max_turns=2))
    run(silent, [zoom(), "<think>hmm</think>"])
    assert silent.termination_reason == "no_answer"
    invalid = Episode(image, EpisodeConfig(max_turns=2))
    run(invalid, [zoom(), zoom((0.5, 0.5, 0.2, 0.9))])  # an attempted zoom, even a bad one, is still acting
    assert invalid.termination_reason == "turn_limit" and invalid.is_overturn and invalid.invalid_actions == 1


def test_image_limit(image):
    ep = Episode(image, EpisodeConfig(max_images=3, max_turns=10))
    assert run(ep, [zoom(), zoom()])[-1].index == 2
    assert ep.num_images == 3
    assert ep.step(zoom()) is None
    assert ep.termination_reason == "image_limit" and ep.is_overturn and ep.turns == 3


def test_invalid_action_gives_an_error_observation_and_the_episode_continues(image):
    ep = Episode(image)
    obs = ep.step(zoom((0.1, 0.2, 1.5, 0.9)))
    assert obs.image is None and obs.index is None and "outside the valid range" in obs.error
    assert obs.text.startswith("ERROR occurs during grounding. Error Information: ") and obs.error in obs.text
    assert "<image>" not in obs.text
    obs = ep.step(THINK + '<grounding>{"bbox_2d": [0, 0, 1, 1], "source": "observation_1"}</grounding>')
    assert "no observations exist yet" in obs.error
    assert not ep.done and ep.invalid_actions == 2 and ep.num_observations == 0
    obs = ep.step(zoom())
    # action 2 produced the first observation: the model must be told to call it observation_1
    assert obs.index == 1 and "After the above Action 2" in obs.text and "(Observation 1)" in obs.text
    assert [r.kind for r in ep.records] == ["invalid", "invalid", "zoom"]


def test_observation_text_follows_the_dialect(image):
    minio3 = Episode(image).step(zoom())
    hermes = Episode(image, EpisodeConfig(dialect="hermes")).step(zoom(dialect="hermes"))
    assert "<grounding>" in minio3.text and "<grounding>" not in hermes.text and "zoom tool" in hermes.text
    assert minio3.text.count("<image>") == hermes.text.count("<image>") == 1


def chars(text: str) -> int:
    return len(text)


def test_context_limit_with_an_injected_token_counter(image):
    # first view 400x300 -> snapped to 392x308 -> 14x11 patches of 28 px = 154 image tokens
    config = EpisodeConfig(max_context_tokens=1000, max_turns=10)
    ep = Episode(image, config, token_counter=chars)
    assert ep.context_tokens == 154
    t1 = zoom()
    obs = ep.step(t1)
    # the 200x150 crop is shown at 252x196 (min_pixels, snapped to 28): 9x7 = 63 image tokens
    assert obs.image.size == (252, 196)
    assert ep.context_tokens == 154 + len(t1) + 63 + len(obs.text)
    before = ep.context_tokens
    t2 = zoom(source="observation_1")
    assert before + len(t2) < 1000 <= before + len(t2) + 63 + len(obs.text)
    assert ep.step(t2) is None  # the second observation would not fit
    assert ep.termination_reason == "context_limit" and ep.is_overturn
    assert ep.num_observations == 2 and ep.summary()["context_tokens"] >= 1000


def test_without_a_counter_images_still_count(image):
    ep = Episode(image, EpisodeConfig(max_context_tokens=154 + 63 + 10))
    assert ep.context_tokens == 154  # the first view's image tokens
    assert ep.step(zoom()).index == 1 and ep.context_tokens == 154 + 63
    assert Episode(image, prompt_tokens=700).context_tokens == 700


def test_context_limit_with_explicit_context_tokens(image):
    config = EpisodeConfig(max_context_tokens=5000)
    ep = Episode(image, config)
    assert ep.step(zoom(), context_tokens=1200).index == 1
    assert ep.context_tokens == 1200 + 63  # plus the observation's image tokens
    assert ep.step(zoom(), context_tokens=5000) is None  # the turn itself filled the context
    assert ep.termination_reason == "context_limit" and ep.is_overturn and ep.num_observations == 1
    assert ep.records[-1].kind == "zoom" and ep.records[-1].box is None


def test_context_limit_outcomes_of_the_filling_turn(image):
    config = EpisodeConfig(max_context_tokens=100)
    answered = Episode(image, config)
    answered.step(answer(), context_tokens=150)
    assert answered.termination_reason == "answered"  # it finished: not masked
    cut = Episode(image, config)
    cut.step("<think>the sign on the left says", context_tokens=150)
    assert cut.termination_reason == "context_limit" and cut.is_overturn  # truncated mid-thought
    unlimited = Episode(image, EpisodeConfig(max_context_tokens=None))
    assert unlimited.step(zoom(), context_tokens=10**9).index == 1


def test_is_overturn_exactly_for_the_masked_reasons(image):
    assert OVERTURN_REASONS == {"turn_limit", "image_limit", "context_limit"}
    for masked in (OVERTURN_REASONS, frozenset({"turn_limit"}), frozenset(), frozenset(TERMINATION_REASONS)):
        for reason in TERMINATION_REASONS:
            ep = Episode(image, EpisodeConfig(masked_reasons=masked))
            assert not ep.is_overturn
            ep.terminate(reason)
            assert ep.is_overturn == (reason in masked), (masked, reason)


def test_masked_reasons_reach_real_episodes(image):
    ep = Episode(image, EpisodeConfig(max_turns=1, masked_reasons={"context_limit"}))
    ep.step(zoom())
    assert ep.termination_reason == "turn_limit" and not ep.is_overturn and not ep.summary()["is_overturn"]
    with pytest.raises(ValueError, match="masked_reasons.*'timeout'"):
        EpisodeConfig(masked_reasons={"turn_limit", "timeout"})


@pytest.mark.parametrize("kwargs, key", [
    ({"max_turns": 0}, "max_turns"), ({"max_images": 0}, "max_images"), ({"dialect": "qwen"}, "dialect"),
    ({"dialect": 3}, "dialect"), ({"max_context_tokens": 0}, "max_context_tokens"),
    ({"image_patch": 0}, "image_patch"), ({"masked_reasons": "turn_limit"}, "masked_reasons"),
])
def test_config_validates(kwargs, key):
    with pytest.raises(ValueError, match=key):
        EpisodeConfig(**kwargs)
    with pytest.raises(ValueError, match="coordinate system 'percent'"):
        EpisodeConfig.from_options(coords="percent")


def test_one_name_for_the_dialect():
    """Issue 20: ``dialect`` was a string field of the config, an object (``.rules``) and a
    type alias in ``core.actions``, and the config re-declared the dialect's options. The
    config now holds the dialect itself; its options live on the dialect only."""
    import dataclasses

    from minio3_ext.core import actions
    from minio3_ext.core.dialect import Dialect, get_dialect
    from minio3_ext.core.episode import DIALECT_OPTIONS

    names = {f.name for f in dataclasses.fields(EpisodeConfig)}
    assert set(DIALECT_OPTIONS) == {"coords", "preset", "tools", "clamp", "observation_zero", "grounding_wins",
                                    "released_numbering"}
    assert not names & set(DIALECT_OPTIONS) and "dialect" in names and not hasattr(EpisodeConfig, "rules")
    assert not hasattr(actions, "Dialect") and not hasattr(actions, "DIALECTS")
    config = EpisodeConfig(max_turns=3, dialect="hermes")
    assert isinstance(config.dialect, Dialect) and config.dialect is get_dialect("hermes")
    flat = EpisodeConfig.from_options(dialect="hermes", coords="pixel", tools=["rotate"], preset="released", max_turns=3)
    assert flat == EpisodeConfig(max_turns=3, dialect=get_dialect("hermes", coords="pixel", tools=("rotate",),
                                                                  preset="released"))
    assert flat.dialect.tools == ("zoom", "rotate") and flat.crop.clamp_to_last_pixel  # the released clamp
    assert Episode(coord_image(64, 64), flat).dialect is flat.dialect
    with pytest.raises(TypeError) as e:  # an option given to the config: one line saying where it goes
        EpisodeConfig(dialect="hermes", coords="pixel")
    assert str(e.value) == ("EpisodeConfig: coords belong to the dialect; pass "
                            "dialect=get_dialect('hermes', coords='pixel')")


def test_terminate_and_steps_after_the_end(image):
    ep = Episode(image)
    with pytest.raises(ValueError, match="unknown termination reason"):
        ep.terminate("bored")
    ep.terminate("context_limit")  # e.g. the framework hit its response-length cap
    ep.terminate("answered")  # the first reason sticks
    assert ep.termination_reason == "context_limit"
    with pytest.raises(RuntimeError, match="already ended"):
        ep.step(answer())


def test_one_record_per_turn_and_the_summary(image):
    ep = Episode(image, EpisodeConfig(max_turns=6))
    turns = [zoom((0.25, 0.5, 0.75, 1.0)), "<grounding>{oops}</grounding>",
             zoom((0.0, 0.0, 0.5, 0.5), "observation_1"), answer("a red car")]
    for i, t in enumerate(turns, 1):
        ep.step(t)
        assert len(ep.records) == i
    summary = ep.summary()
    actions = summary.pop("actions")
    assert summary == {
        "termination_reason": "answered", "is_overturn": False, "turns": 4, "zooms": 2, "tool_calls": 2,
        "images": 3, "invalid_actions": 1, "answer": "a red car", "context_tokens": ep.context_tokens,
    }
    assert actions[0] == {"turn": 1, "kind": "zoom", "source": "original_image", "box": (100, 150, 300, 300),
                          "box_in_original": (100, 150, 300, 300), "error": None}
    assert actions[1]["kind"] == "invalid" and "malformed JSON" in actions[1]["error"]
    assert actions[2]["box"] == (0, 0, 100, 75) and actions[2]["box_in_original"] == (100, 150, 200, 225)
    assert actions[3] == {"turn": 4, "kind": "answer", "source": None, "box": None, "box_in_original": None, "error": None}


def test_unknown_tool_is_an_error_observation(image):
    ep = Episode(image)
    obs = ep.step('<tool_call>{"name": "rotate", "arguments": {"angle": 90}}</tool_call>')
    assert obs.image is None and "unknown tool 'rotate'" in obs.error and "['zoom']" in obs.error
    assert not ep.done and ep.invalid_actions == 1


# -- whole episodes under random model output ----------------------------------------------


numbers = st.one_of(st.floats(-0.5, 1.5), st.integers(-10, 1200), st.sampled_from([0, 1, 0.5, 1000, "nan", None]))
sources = st.sampled_from(["original_image", "observation_1", "observation_2", "observation_5", "observation 1", 7])


@st.composite
def model_turns(draw, dialect):
    kind = draw(st.sampled_from(["zoom", "zoom", "zoom", "rotate", "answer", "none", "garbage"]))
    if kind == "zoom":
        args = {"bbox_2d": draw(st.lists(numbers, min_size=3, max_size=5)), "source": draw(sources)}
        body = json.dumps(args)
        if dialect == "minio3" and draw(st.booleans()):
            return THINK + f"<grounding>{body}</grounding>"
        return THINK + '<tool_call>{"name": "zoom", "arguments": ' + body + "}</tool_call>"
    if kind == "rotate":
        args = {"angle": draw(st.sampled_from([90, 180, 270, 45, "x"])), "source": draw(sources)}
        return '<tool_call>{"name": "rotate", "arguments": ' + json.dumps(args) + "}</tool_call>"
    if kind == "answer":
        return answer(draw(st.text(max_size=20)).replace("</answer>", ""))
    if kind == "none":
        return THINK
    return draw(st.text(max_size=60))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), dialect=st.sampled_from(["minio3", "hermes"]), coords=st.sampled_from(["relative", "thousand", "pixel"]),
       clamp=st.booleans(), max_turns=st.integers(1, 8), max_images=st.integers(1, 5),
       max_context=st.sampled_from([None, 400, 5000]))
def test_random_episodes_never_raise_and_keep_their_invariants(data, dialect, coords, clamp, max_turns, max_images, max_context):
    config = EpisodeConfig.from_options(dialect=dialect, coords=coords, clamp=clamp, max_turns=max_turns, max_images=max_images,
                           max_context_tokens=max_context, tools=("zoom", "rotate"))
    ep = Episode(coord_image(300, 200), config, token_counter=len)
    while not ep.done:
        obs = ep.step(data.draw(model_turns(dialect)))
        assert len(ep.records) == ep.turns <= max_turns and ep.num_images <= max_images
        if obs is not None:
            if obs.image is None:
                assert obs.error and obs.index is None
            else:
                assert obs.index == ep.num_observations and obs.error is None
                raw = ep.raw_image(f"observation_{obs.index}")
                assert obs.image.size == model_size(*raw.size, config.view) and obs.image.mode == "RGB"
                assert f"(Observation {obs.index})" in obs.text
    assert ep.termination_reason in TERMINATION_REASONS
    summary = ep.summary()
    assert summary["is_overturn"] == (ep.termination_reason in config.masked_reasons)
    assert summary["invalid_actions"] == sum(r["kind"] == "invalid" for r in summary["actions"])
    json.dumps(summary)  # the record is plain data
