"""ZoomEnvironment: the TRL tool surface over a core Episode."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from transformers.utils import get_json_schema

from minio3_ext.core import EpisodeConfig, ImageBank, ViewRules, crop, resize_for_model
from minio3_ext.trl import ZoomEnvironment, grpo_rows

VIEW = ViewRules(max_pixels=28 * 28 * 48, min_pixels=28 * 28 * 8)


@pytest.fixture
def env():
    return ZoomEnvironment(EpisodeConfig(max_turns=3, dialect="hermes", max_context_tokens=None, view=VIEW),
                           ImageBank(view_rules=VIEW))


def _images(content):
    return [p["image"] for p in content if p["type"] == "image"]


def _public(env):
    # what TRL lists: functions of the instance's class, not private, not reset/get_reward
    return sorted(n for n, _ in inspect.getmembers(type(env), predicate=inspect.isfunction) if not n.startswith("_"))


def test_only_zoom_is_exposed_as_a_tool_and_its_schema_describes_the_box():
    env = ZoomEnvironment()
    assert _public(env) == ["reset", "zoom"] and isinstance(env, ZoomEnvironment)
    schema = get_json_schema(env.zoom)["function"]
    assert schema["name"] == "zoom" and schema["parameters"]["required"] == ["bbox_2d"]
    assert "relative" in schema["parameters"]["properties"]["bbox_2d"]["description"]
    assert schema["parameters"]["properties"]["bbox_2d"] == {
        "type": "array", "items": {"type": "number"}, "description": schema["parameters"]["properties"]["bbox_2d"]["description"]}


@pytest.mark.parametrize("coords, words", [("relative", "[0, 1]"), ("thousand", "[0, 1000]"), ("pixel", "pixels")])
def test_zoom_schema_describes_the_configs_coordinates(coords, words):
    from minio3_ext.core.dialect import get_dialect

    env = ZoomEnvironment(EpisodeConfig.from_options(dialect="hermes", coords=coords, max_context_tokens=None))
    fn = get_json_schema(env.zoom)["function"]
    dialect_fn = get_dialect("hermes", coords=coords).tool_schemas()[0]["function"]
    assert fn["description"] == dialect_fn["description"] and words in fn["description"]
    assert fn["parameters"]["properties"]["bbox_2d"]["description"] == dialect_fn["parameters"]["properties"]["bbox_2d"]["description"]
    assert fn["parameters"]["properties"]["source"]["type"] == "string"


def test_every_enabled_tool_is_a_method_with_its_schema():
    env = ZoomEnvironment(EpisodeConfig.from_options(dialect="hermes", tools=("zoom", "rotate"), max_context_tokens=None))
    assert _public(env) == ["reset", "rotate", "zoom"] and env.tools == ("zoom", "rotate")
    fn = get_json_schema(env.rotate)["function"]
    assert fn["name"] == "rotate" and fn["parameters"]["required"] == ["angle"]
    assert fn["parameters"]["properties"]["angle"] == {"type": "integer", "enum": [90, 180, 270],
                                                       "description": "Counter-clockwise angle in degrees."}
    # a zoom-only environment built afterwards is not affected
    assert _public(ZoomEnvironment()) == ["reset", "zoom"]


def test_reset_returns_the_shared_first_view_and_question(env, synthetic_rows):
    row = grpo_rows(synthetic_rows[:1])[0]
    content = env.reset(**row)
    (view,) = _images(content)
    assert view is env._bank.first_view(row["image_path"])  # decoded once, shared
    assert view.width * view.height <= VIEW.max_pixels
    assert row["question"] in "".join(p.get("text", "") for p in content)


def test_zoom_crops_the_raw_image_not_the_view(env, synthetic_rows):
    row = grpo_rows(synthetic_rows[:1])[0]
    env.reset(**row)
    content = env.zoom([0.25, 0.25, 0.5, 0.5])
    (obs,) = _images(content)
    raw = env._bank.get(row["image_path"])
    expected = resize_for_model(crop(raw, (0.25, 0.25, 0.5, 0.5))[0], VIEW)
    assert np.array_equal(np.asarray(obs), np.asarray(expected))
    assert "Observation 1" in content[0]["text"]
    # zoom into the observation: the crop comes from the raw first crop
    (obs2,) = _images(env.zoom([0.0, 0.0, 0.5, 0.5], source="observation_1"))
    assert obs2.size[0] > 0 and env.episode.num_observations == 2


def test_bad_zooms_return_a_message_and_count_as_invalid(env, synthetic_rows):
    env.reset(**grpo_rows(synthetic_rows[:1])[0])
    msg = env.zoom([0.5, 0.5, 0.2, 0.9])
    assert isinstance(msg, str) and "x0 < x1" in msg
    msg = env.zoom([0, 0, 1, 1], source="observation_4")
    assert isinstance(msg, str) and "observation_4" in msg
    assert env.episode.invalid_actions == 2 and not env.episode.done


def test_zoom_at_the_last_turn_ends_the_episode(env, synthetic_rows):
    env.reset(**grpo_rows(synthetic_rows[:1])[0])
    env.zoom([0, 0, 0.5, 0.5])
    env.zoom([0, 0, 0.5, 0.5])
    msg = env.zoom([0, 0, 0.5, 0.5])
    assert isinstance(msg, str) and env.episode.termination_reason == "turn_limit"
    assert "ended" in env.zoom([0, 0, 0.5, 0.5])


def test_reset_names_the_row_when_the_image_is_missing(env):
    with pytest.raises(ValueError, match="'r7'.*image_path"):
        env.reset(doc_id="r7", question="q?")


def test_the_trl_adapter_keeps_no_copy_of_a_tag_regex_or_prompt():
    """Tags, regexes and prompt words live in the core dialect; the adapter asks it (docstrings aside)."""
    import ast
    from pathlib import Path

    import minio3_ext.trl as trl_pkg
    from minio3_ext.core import dialect

    tags = [dialect.THINK_OPEN, dialect.ANSWER_OPEN, dialect.GROUNDING_OPEN, dialect.TOOL_CALL_OPEN, dialect.IMAGE_SLOT,
            "After the above Action", "helpful assistant", "ERROR occurs", "zoom-in image"]
    folder = Path(trl_pkg.__file__).parent
    found = []
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                      and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                found += [(path.name, node.lineno, t) for t in tags if t in node.value]
        found += [(path.name, 0, "import re") for line in path.read_text().splitlines() if line.strip() == "import re"]
    jinja = "".join(line for line in (folder / "minio3_dialect.jinja").read_text().splitlines(True)
                    if not line.lstrip().startswith(("{#", "-", "the tag")))
    found += [("minio3_dialect.jinja", 0, t) for t in tags[:4] if t in jinja]
    assert not found, found
