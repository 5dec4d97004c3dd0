"""Issue 21 item 7: the answer / think rules are one linear pass, with the old regex's results."""

from __future__ import annotations

import random
import re
import signal

import pytest

from minio3_ext.core.dialect import extract_answer, get_dialect

# the rule as it was written before (the oracle for "same behaviour"), never used by the package
_OLD_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_OLD_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_PIECES = ["<answer>", "</answer>", "<ANSWER>", "</Answer>", "<think>", "</think>", "<grounding>", "</grounding>",
           "<tool_call>", "</tool_call>", " red ", "\n", "B", '{"bbox_2d": [0, 0, 1, 1]}', "<answer", "answer>", "ſ"]


def _old_answer(text):
    m = _OLD_ANSWER.search(text) if text else None
    return None if m is None else m.group(1).strip()[:300]


def test_same_results_as_the_span_regex_on_random_turns():
    rng = random.Random(21)
    d, released = get_dialect("minio3"), get_dialect("minio3", preset="released")
    for _ in range(4000):
        text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 12)))
        assert extract_answer(text) == _old_answer(text), text
        assert d.think_ok(text) == (_OLD_THINK.search(text) is not None), text
        for dialect in (d, released):
            action = dialect.parse(text)
            if type(action).__name__ == "Answer":
                m = _OLD_ANSWER.search(text, _first_answer_open(text))
                assert m is not None and action.text == m.group(1).strip(), text


def _first_answer_open(text):
    return re.search("<answer>", text, re.IGNORECASE).start()


@pytest.fixture
def alarm():
    """Fail instead of hanging: the old rule took minutes on these turns, the linear one milliseconds."""
    def fire(*_):
        raise TimeoutError("parsing a hostile turn did not finish in 20 s (quadratic?)")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("unit", ["<answer>x ", "<ANSWER>", "<think>a "])
def test_a_repeated_unclosed_tag_is_parsed_in_one_pass(alarm, unit):
    text = unit * 100_000  # ~1 MB: the span regex needs ~10^11 steps here
    d = get_dialect("minio3")
    assert extract_answer(text) is None
    assert d.think_ok(text) is False
    assert type(d.parse(text)).__name__ == "Invalid"
    assert d.answer(text + "</answer>") is not None or unit.startswith("<think>")
