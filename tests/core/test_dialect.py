"""The dialect: the one rule set of the conversation (released words, presets, tools)."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from minio3_ext.core import Episode, EpisodeConfig
from minio3_ext.core.actions import Answer, Invalid, ToolCall, Zoom
from minio3_ext.core.dialect import PRESETS, get_dialect

from reliability.generators import fuzz_text

RELEASED_SYSTEM = (
    "You are a helpful assistant. Answer the user's question based on the image provided. Output your thinking process "
    "within the <think> and </think> tags. Whenever you find anything unclear, you can zoom in a specific region in the "
    'given image to see more clearly by outputing <grounding>{"bbox_2d": [x0, y0, x1, y1], "source": "original_image"}'
    "</grounding>, where (x0, y0) and (x1, y1) are the top-left and bottom-right coordinates of the region that you want "
    "to zoom in, respectively (suppose the width and height of the image are 1.0), and 'source' refers to the image that "
    "you zoom in and could be either 'original_image' or 'observation_i'. Once the final answer is confirmed, put it "
    "within <answer> and </answer>."
)
RELEASED_OBSERVATION = (
    "After the above Action {a}, here is the the zoom-in image (Observation {o}):\n<image>.\n"
    "Continue your reasoning process inside <think> and </think>. If needed, you can continue to zoom in on the original "
    "image or any of the observations, by outputting <grounding> and </grounding> as before. If the final answer is "
    "confirmed, put your final answer inside <answer> and </answer>."
)
RELEASED_ERROR = (
    "ERROR occurs during grounding. Error Information: {e}.\n"
    "Please analyze the error information obtained from the function tool and adjust your response. Countinue your "
    "reasoning process inside <think> and </think>."
)


def zoom(box, source="original_image"):
    return '<grounding>{"bbox_2d": %s, "source": "%s"}</grounding>' % (json.dumps(box), source)


def test_minio3_speaks_the_released_words_byte_for_byte():
    d = get_dialect("minio3")
    assert d.system_prompt() == RELEASED_SYSTEM
    assert d.observation_text(0, 1) == RELEASED_OBSERVATION.format(a=0, o=1)
    assert d.error_text(1, "The bounding box is not valid in width: [3, 1, 2, 4]") == RELEASED_ERROR.format(
        e="The bounding box is not valid in width: [3, 1, 2, 4]")
    assert d.user_prompt("<image>\nWhat colour?") == "<image>\nWhat colour?"
    assert d.stop == ("</grounding>",) and d.observation_role == "user"
    assert get_dialect("hermes").observation_role == "tool" and get_dialect("hermes").stop == ("</tool_call>",)


def test_episode_numbers_actions_from_zero_in_both_presets(image):
    for preset, third in (("strict", 2), ("released", 3)):
        ep = Episode(image, EpisodeConfig.from_options(preset=preset))
        first = ep.step(zoom([0.1, 0.1, 0.6, 0.6]))
        assert first.text == RELEASED_OBSERVATION.format(a=0, o=1)
        failed = ep.step(zoom([0.6, 0.1, 0.4, 0.6], "observation_1"))
        assert failed.image is None and failed.text == RELEASED_ERROR.format(e=failed.error)
        again = ep.step(zoom([0.1, 0.1, 0.9, 0.9], "observation_1"))
        assert again.text == RELEASED_OBSERVATION.format(a=2, o=third) and again.index == 2


def test_presets_set_each_released_option_and_each_can_be_overridden():
    assert get_dialect("minio3", preset="released").clamp is True
    assert get_dialect("minio3", preset="released", clamp=False).clamp is False
    assert get_dialect("minio3", grounding_wins=True).grounding_wins and not get_dialect("minio3").grounding_wins
    for preset, options in PRESETS.items():
        d = get_dialect("minio3", preset=preset)
        assert {k: getattr(d, k) for k in options} == options


def test_clamp_option_clamps_after_scaling_to_the_last_pixel(image):
    strict = Episode(image, EpisodeConfig())
    assert "outside the valid range" in strict.step(zoom([-0.2, 0.0, 1.5, 0.5])).error
    released = Episode(image, EpisodeConfig.from_options(preset="released"))
    obs = released.step(zoom([-0.2, 0.0, 1.5, 0.5]))
    assert obs.error is None and released.records[0].box == (0, 0, image.width - 1, image.height // 2)
    only_clamp = Episode(image, EpisodeConfig.from_options(clamp=True))
    assert only_clamp.step(zoom([-0.2, 0.0, 1.5, 0.5])).error is None


def test_observation_zero_is_the_original_only_when_asked(image):
    assert "observation_0" in Episode(image).step(zoom([0, 0, 0.5, 0.5], "observation_0")).error
    ep = Episode(image, EpisodeConfig.from_options(observation_zero=True))
    assert ep.step(zoom([0, 0, 0.5, 0.5], "observation_0")).error is None
    assert ep.records[0].source == "original_image"


def test_answer_then_grounding_disagreement_is_one_rule():
    text = '<ANSWER>B</ANSWER> then <grounding>{"bbox_2d": [0, 0, 0.5, 0.5], "source": "original_image"}</grounding>'
    assert get_dialect("minio3").parse(text) == Answer("B")
    assert get_dialect("minio3").read_call(text) is None  # what a framework tool parser asks
    released = get_dialect("minio3", preset="released")
    assert isinstance(released.parse(text), Zoom)
    assert released.read_call(text) == ("zoom", {"bbox_2d": [0, 0, 0.5, 0.5], "source": "original_image"})


def test_system_prompt_and_schema_follow_the_coordinate_system():
    for coords, words in (("thousand", "1000"), ("pixel", "pixels")):
        d = get_dialect("minio3", coords=coords)
        assert "1.0" not in d.system_prompt() and words in d.system_prompt()
        schema = d.tool_schemas()[0]["function"]
        assert words in schema["description"] and "[0, 1]" not in schema["description"]
    assert "[0, 1]" in get_dialect("hermes").tool_schemas()[0]["function"]["description"]
    # a box the prompt describes as valid parses as valid
    assert get_dialect("minio3", coords="thousand").parse(zoom([100, 100, 900, 500])) == Zoom((0.1, 0.1, 0.9, 0.5))


def test_read_call_and_parse_call_agree_with_parse_on_the_fuzz_corpus():
    rng = random.Random(11)
    for name in ("minio3", "hermes"):
        for coords in ("relative", "thousand"):
            for preset in ("strict", "released"):
                d = get_dialect(name, coords=coords, preset=preset)
                for _ in range(400):
                    text = fuzz_text(rng)
                    direct = d.parse(text, num_observations=2)
                    call = d.read_call(text)
                    if call is None:
                        assert not isinstance(direct, (Zoom, ToolCall)), text
                        continue
                    name_, args = call
                    via = d.parse_call(name_, args, num_observations=2) if isinstance(args, dict) else None
                    if isinstance(direct, (Zoom, ToolCall)):
                        assert via == direct, text
                    else:
                        assert via is None or isinstance(via, Invalid), text


def test_non_zoom_tools_are_described_and_never_called_zoomed_in(image):
    d = get_dialect("minio3", tools=("zoom", "rotate"))
    prompt = d.system_prompt()
    assert prompt.startswith(RELEASED_SYSTEM) and "rotate" in prompt and "<tool_call>" in prompt
    assert d.stop == ("</grounding>", "</tool_call>")
    ep = Episode(image, EpisodeConfig.from_options(tools=("zoom", "rotate")))
    obs = ep.step('<tool_call>{"name": "rotate", "arguments": {"angle": 90, "source": "original_image"}}</tool_call>')
    assert obs.image is not None and "zoom-in" not in obs.text and "rotate" in obs.text
    assert obs.parts()[1] is obs.image and isinstance(obs.parts()[0], str)


def test_no_tag_regex_outside_the_dialect_module():
    root = Path(__file__).resolve().parents[2] / "minio3_ext"
    pattern = re.compile(r"re\.compile\([^)]*(<answer>|<grounding>|<tool_call>|</answer>|</grounding>|</tool_call>)")
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.name != "dialect.py" and pattern.search(p.read_text(encoding="utf-8"))]
    offenders += [str(p.relative_to(root)) for p in root.rglob("*.py")
                  if p.name != "dialect.py" and re.search(r'x-regex[^\n]*(grounding|tool_call)', p.read_text(encoding="utf-8"))]
    assert not offenders, f"tag regexes outside core/dialect.py: {offenders}"


PLUGIN_SCRIPT = r"""
import json, sys
from PIL import Image
from minio3_ext.core import Episode, EpisodeConfig, available_tools
from minio3_ext.core.dialect import get_dialect
img = Image.new("RGB", (400, 300), (30, 60, 90))
out = {"available": available_tools()}
for dialect, call in (("minio3", '<tool_call>{"name": "equalize", "arguments": {"source": "original_image"}}</tool_call>'),
                      ("hermes", '<tool_call>{"name": "equalize", "arguments": {}}</tool_call>')):
    ep = Episode(img, EpisodeConfig.from_options(dialect=dialect, tools=("zoom", "equalize")))
    obs = ep.step(call)
    out[dialect] = {"error": obs.error, "image": obs.image is not None, "text": obs.text,
                    "prompt_names_it": "equalize" in get_dialect(dialect, tools=("zoom", "equalize")).system_prompt()}
print(json.dumps(out))
"""


def test_entry_point_tool_from_another_package_works_in_the_core_in_both_dialects(plugin_tool_site):
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_tool_site), *sys.path])}
    proc = subprocess.run([sys.executable, "-c", PLUGIN_SCRIPT], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "equalize" in out["available"]
    for dialect in ("minio3", "hermes"):
        assert out[dialect]["error"] is None and out[dialect]["image"], out
        assert out[dialect]["prompt_names_it"] and "zoom-in" not in out[dialect]["text"]
