"""Answer extraction for the reward and the prompt texts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from minio3_ext.core import extract_answer, normalize_answer
from minio3_ext.core import prompts
from minio3_ext.core.answers import MAX_ANSWER_CHARS


def test_first_answer_tag_only_and_tightly():
    assert extract_answer("<think>a</think><answer> B </answer> because <answer>C</answer>") == "B"
    assert extract_answer("<ANSWER>yes</ANSWER>") == "yes"
    assert extract_answer("<answer>multi\nline</answer>") == "multi\nline"
    assert extract_answer("no tag") is None and extract_answer("<answer>open") is None
    assert extract_answer(None) is None and extract_answer("") is None
    assert extract_answer("<answer>" + "x" * 1000 + "</answer>") == "x" * MAX_ANSWER_CHARS


@given(st.text())
def test_extract_answer_never_raises(text):
    out = extract_answer(text)
    assert out is None or len(out) <= MAX_ANSWER_CHARS


def test_normalize_answer():
    assert normalize_answer("  The Red  Car. ") == "red car"
    assert normalize_answer("(B)") == "b"
    assert normalize_answer("ＡＢＣ") == "abc"  # NFKC folds full-width letters


def test_prompt_shorthands_are_the_dialects_words():
    from minio3_ext.core.dialect import get_dialect

    assert prompts.system_prompt("minio3") == get_dialect("minio3").system_prompt()
    assert "zoom tool" in prompts.system_prompt("hermes") and "<grounding>" not in prompts.system_prompt("hermes")
    assert prompts.user_prompt("What is <image> written on the sign?").startswith("<image>\n")
    assert prompts.user_prompt("<image>Q?").count("<image>") == 1
    text = prompts.observation_text(0)
    assert "Action 0" in text and "(Observation 1)" in text and "<image>" in text
    assert "(Observation 2)" in prompts.observation_text(4, observation_index=2)
    assert "Error Information: box too small." in prompts.error_text(3, "box too small")
