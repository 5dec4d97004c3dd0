"""The rule path, verdict parsing, prompt encoding and configuration."""

from __future__ import annotations

import pytest

from minio3_ext.judge import JudgeConfig, JudgeConfigError, parse_verdict, rule_verdict
from minio3_ext.judge.prompt import build_messages, parse_data_block, sanitize
from minio3_ext.judge.rules import is_plain, option_letter, parse_options

MC = "Which object is on the table?\n(A) a red cup\n(B) a blue plate\n(C) a fork"
MC_INLINE = "What colour is the flag? A. red B. green C. white"


@pytest.mark.parametrize("question,gt,pred,expected", [
    ("What colour?", "red", "Red.", 1.0),
    ("What colour?", "red car", "The red car", 1.0),
    ("What colour?", "red", None, 0.0),
    ("What colour?", "red", "", 0.0),
    ("What colour?", "red", " ... ", 0.0),
    ("What colour?", "red", "crimson", None),           # semantic: ask the LLM
    ("What colour?", "red", "not red", None),
    (MC, "A", "A", 1.0),
    (MC, "A", "(a)", 1.0),
    (MC, "A", "A.", 1.0),
    (MC, "A", "Option A", 1.0),
    (MC, "A", "B", 0.0),
    (MC, "A", "a red cup", 1.0),                        # option text for a letter ground truth
    (MC, "A", "A. a red cup", 1.0),
    (MC, "A", "B. a red cup", None),                    # letter and text disagree
    (MC, "A", "the blue plate", 0.0),
    (MC, "a red cup", "A", 1.0),                        # letter for an option-text ground truth
    (MC, "A", "cup", None),
    (MC, "A", "D", None),                               # not an option: unsure
    (MC_INLINE, "B", "green", 1.0),
    (MC_INLINE, "B", "C", 0.0),
    ("How many?", "3", "3.0", 1.0),
    ("How many?", "3", "4", 0.0),
    ("How many?", "1,200", "1200", 1.0),
    ("How many?", "3", "three", None),
    ("Is it on?", "yes", "Yes.", 1.0),
    ("Is it on?", "yes", "no", 0.0),
    ("Is it on?", "no", "false", 1.0),
    ("Is it on?", "yes", "probably yes", None),
])
def test_rule_verdict(question, gt, pred, expected):
    assert rule_verdict(question, gt, pred) == expected


def test_parse_options_and_letters():
    assert parse_options(MC) == {"A": "red cup", "B": "blue plate", "C": "fork"}
    assert parse_options(MC_INLINE) == {"A": "red", "B": "green", "C": "white"}
    assert parse_options("What is it? A car.") == {}
    assert option_letter("[C]", parse_options(MC)) == "C"


@pytest.mark.parametrize("text,plain", [
    ("red car", True), ("3.5 m", True), ("red\ncar", False), ("<b>red</b>", False),
    ("ignore this", False), ("Score: 1", False), ("x" * 100, False), ("red\u200bcar", False),
])
def test_is_plain(text, plain):
    assert is_plain(text) is plain


@pytest.mark.parametrize("reply,expected", [
    ("Score: 1", 1.0), ("score:0", 0.0), ("**Score:** 1", 1.0), ("Score = 1.0", 1.0),
    ('{"score": 0}', 0.0), ("The answers match in meaning.\nScore: 1", 1.0),
    ("Format: Score: 1 or Score: 0. My verdict: Score: 0", 0.0), ("Judgement: 1", 1.0),
    ("1", 1.0), ("0", 0.0), ("Correct.", 1.0), ("incorrect", 0.0), ("Yes", 1.0),
    ("I cannot tell.", None), ("", None), (None, None), ("Score: 0.5", None), ("Score: 10", None),
    ("The prediction is partly correct", None),
    # issue 21 item 3: a reply stating both verdicts is ambiguous, whichever comes last
    ('Score: 0\n> the prediction says "Score: 1"', None), ("Score: 1. The user wrote Score: 0.", None),
    ("Score: 0 or 1", None), ("Score: 1 or Score: 0", None), ("Score: 0/1\nScore: 1", 1.0),
    ("Score: 1\nFinal: Score: 1", 1.0),
])
def test_parse_verdict(reply, expected):
    assert parse_verdict(reply) == expected


def test_sanitize_caps_and_strips_invisible():
    assert sanitize("ab\u200bc\u202ed" + "x" * 10, 5) == "abcdx"


def test_build_messages_round_trip():
    msgs = build_messages("q \"quoted\"", "gt", "line1\nline2 <tag>", nonce="abc123")
    nonce, data = parse_data_block(msgs[1]["content"])
    assert nonce == "abc123"
    assert data == {"question": 'q "quoted"', "ground_truth": "gt", "prediction": "line1\nline2 <tag>"}


def test_config_from_env_and_overrides():
    env = {"MINIO3_JUDGE_BASE_URL": "http://h:8000/v1", "MINIO3_JUDGE_MODEL": "qwen",
           "MINIO3_JUDGE_API_KEY": "k", "MINIO3_JUDGE_TIMEOUT": "7.5", "MINIO3_JUDGE_RETRIES": "3",
           "MINIO3_JUDGE_CONCURRENCY": "4", "MINIO3_JUDGE_CACHE_PATH": "/tmp/x.sqlite",
           "MINIO3_JUDGE_USE_RULES": "false", "OTHER": "ignored"}
    cfg = JudgeConfig.from_env(env, concurrency=9)
    assert (cfg.base_url, cfg.model, cfg.api_key, cfg.timeout_s, cfg.max_retries, cfg.concurrency,
            cfg.cache_path, cfg.use_rules) == ("http://h:8000/v1", "qwen", "k", 7.5, 3, 9, "/tmp/x.sqlite", False)
    assert JudgeConfig.from_env({}).rule_only


@pytest.mark.parametrize("env,match", [
    ({"MINIO3_JUDGE_TIMEOUT_S": "soon"}, "MINIO3_JUDGE_TIMEOUT_S='soon' is not a valid float"),
    ({"MINIO3_JUDGE_COLOUR": "red"}, "unknown judge setting MINIO3_JUDGE_COLOUR"),
    ({"MINIO3_JUDGE_BASE_URL": "http://h/v1"}, "model is required"),
    ({"MINIO3_JUDGE_CONCURRENCY": "0"}, r"JudgeConfig.concurrency=0"),
])
def test_config_errors_name_the_key(env, match):
    with pytest.raises(JudgeConfigError, match=match):
        JudgeConfig.from_env(env)


def test_dedupe_form_keeps_article_like_answers_apart():
    from minio3_ext.judge.rules import dedupe_form

    assert dedupe_form("The Red car.") == dedupe_form("red car") == "red car"
    assert len({dedupe_form(x) for x in ["A", "a", "An", "The", ""]}) == 4  # "A" == "a"


def test_judge_is_framework_free_and_imports_openai_lazily():
    import subprocess
    import sys

    code = ("import sys; from minio3_ext.judge import Judge, JudgeConfig, JudgeItem; "
            "Judge().score_sync([JudgeItem('q', 'red', 'Red')]); "
            "print(sorted(m for m in ('openai', 'torch', 'verl', 'trl', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_item_from_completion_extracts_the_first_answer():
    from minio3_ext.judge import JudgeItem

    item = JudgeItem.from_completion("q", "red", "<think>hm</think><answer> Red </answer><answer>blue</answer>")
    assert item == JudgeItem("q", "red", "Red")
    assert JudgeItem.from_completion("q", "red", "<think>still zooming").prediction is None
