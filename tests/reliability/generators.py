"""Generators of hostile model output for the reliability suite.

Structured mutations of valid actions in both dialects (truncation, duplicated and
missing keys, wrong types, nested braces, unicode, huge numbers, NaN/Infinity, extra
tags, quote and backslash damage) plus random bytes. Deterministic for a given
``random.Random`` so a failing input can be regenerated from its seed and index.
"""

from __future__ import annotations

import json
import random
from typing import Callable

_THINK = ["", "<think>look at the top left</think>", "<think>the sign is small; zoom</think>\n",
          "Let me zoom in.\n", "<think>" + "very long reasoning " * 40 + "</think>"]
_SOURCES = ["original_image", "observation_1", "observation_2", "observation_0", "observation_7",
            "Observation 1", "original", "image", "observation_", "observation_-1", "observation_01",
            "observation_" + "9" * 12, "observation_" + "9" * 5000, "observation_١", " original_image ",
            "ORIGINAL_IMAGE", "", "orig\u200bnal_image"]
_WEIRD_NUMBERS = ["1e309", "-1e309", "1e-320", "NaN", "Infinity", "-Infinity", "9" * 400, "9" * 5000,
                  "-0", "0.0000001", "1.0000000001", "-0.5", "2", "1000", "4e3", "0x10", "1_0",
                  "true", "false", "null", '"0.5"', '"abc"', '"1e999"', '"nan"', '""', "[]", "{}",
                  "[0.1, 0.2]", '{"x": 1}', "0.5.5", "--1", "+0.5", ".5", "5.", "1e", "١"]
_UNICODE = ["é", "日本語", "😀", "\u202e", "\u200b", "\ufeff", "\x00", "\ud800", "\U0010ffff", "Ω≈ç√",
            "\u0301", "\r\n", "\t", "ﬁ", "ﾟ"]
_TAG_NOISE = ["<grounding>", "</grounding>", "<tool_call>", "</tool_call>", "<answer>", "</answer>",
              "<think>", "</think>", "<GROUNDING>", "< grounding>", "<grounding/>", "<|im_end|>",
              "<|vision_start|><|image_pad|><|vision_end|>", "<image>", "```json\n", "```"]


def random_box(rng: random.Random) -> list[float]:
    """A box that is valid in relative coordinates most of the time."""
    x0, y0 = rng.random() * 0.9, rng.random() * 0.9
    return [round(x0, rng.choice([1, 2, 3, 6, 17])), round(y0, rng.choice([1, 2, 3])),
            round(min(1.0, x0 + 0.01 + rng.random() * (1 - x0)), 3), round(min(1.0, y0 + 0.01 + rng.random() * (1 - y0)), 3)]


def valid_action(rng: random.Random, num_observations: int = 2) -> str:
    """A well-formed turn in one of the accepted forms."""
    think = rng.choice(_THINK)
    source = rng.choice(["original_image"] + [f"observation_{i}" for i in range(1, num_observations + 1)])
    args = {"bbox_2d": random_box(rng), "source": source}
    if rng.random() < 0.3:
        args = {"source": source, "bbox_2d": args["bbox_2d"]}
    kind = rng.randrange(7)
    if kind == 0:
        return f"{think}<grounding>{json.dumps(args)}</grounding>"
    if kind == 1:  # Python-literal style, as models often write
        return f"{think}<grounding>{args!r}</grounding>"
    if kind == 2:
        return f"{think}<tool_call>{json.dumps({'name': 'zoom', 'arguments': args})}</tool_call>"
    if kind == 3:  # arguments as a JSON string (OpenAI style)
        return f"{think}<tool_call>{json.dumps({'name': 'zoom', 'arguments': json.dumps(args)})}</tool_call>"
    if kind == 4:
        angle = rng.choice([90, 180, 270])
        return f"{think}<tool_call>{json.dumps({'name': 'rotate', 'arguments': {'angle': angle, 'source': source}})}</tool_call>"
    if kind == 5:
        return f"{think}<answer>{rng.choice(['blue', 'B', 'the red car', '42', '', 'A) 3'])}</answer>"
    return f"{think}<grounding>\n```json\n{json.dumps(args, indent=2)}\n```\n</grounding> trailing prose"


# -- mutations: each takes and returns a string ---------------------------------------

def _truncate(rng: random.Random, s: str) -> str:
    return s[: rng.randrange(len(s) + 1)]


def _splice(rng: random.Random, s: str, piece: str) -> str:
    i = rng.randrange(len(s) + 1)
    return s[:i] + piece + s[i:]


def _delete_span(rng: random.Random, s: str) -> str:
    i = rng.randrange(len(s) + 1)
    return s[:i] + s[i + rng.randrange(1, 12):]


def _duplicate_key(rng: random.Random, s: str) -> str:
    dup = rng.choice(['"bbox_2d": [0, 0, 1, 1], ', '"source": "observation_9", ', '"bbox_2d": "x", ',
                      "'bbox_2d': None, ", '"name": "zoom", ', '"arguments": {}, ', '"bbox": [0.1,0.1,0.2,0.2], '])
    i = s.find("{")
    return s if i < 0 else s[: i + 1] + dup + s[i + 1:]


def _drop_key(rng: random.Random, s: str) -> str:
    for key in rng.sample(['"bbox_2d"', '"source"', '"name"', '"arguments"', "'bbox_2d'"], 2):
        s = s.replace(key, rng.choice(['""', '"bbox"', '"bbox_3d"', "bbox_2d", '"BBOX_2D"', '"bbox_2d "']), 1)
    return s


def _wrong_value(rng: random.Random, s: str) -> str:
    """Replace one number (or the whole box) with an odd literal."""
    odd = rng.choice(_WEIRD_NUMBERS)
    if rng.random() < 0.3 and "[" in s:
        i, j = s.find("["), s.find("]")
        if j > i:
            return s[:i] + rng.choice(["[" + ", ".join([odd] * 4) + "]", odd, "[0.1, 0.2, 0.3]",
                                       "[0.1, 0.2, 0.3, 0.4, 0.5]", "[[0.1, 0.2], [0.3, 0.4]]",
                                       "[0.3, 0.3, 0.1, 0.1]", "[0, 0, 0, 0]"]) + s[j + 1:]
    digits = [i for i, ch in enumerate(s) if ch.isdigit()]
    if not digits:
        return _splice(rng, s, odd)
    i = rng.choice(digits)
    j = i
    while j < len(s) and (s[j].isdigit() or s[j] in ".eE-+"):
        j += 1
    return s[:i] + odd + s[j:]


def _nest_braces(rng: random.Random, s: str) -> str:
    depth = rng.choice([2, 50, 1000, 20000])
    if rng.random() < 0.5:
        body = "{" * depth + "}" * depth
    else:
        body = '{"a": ' * depth + "1" + "}" * rng.choice([depth, depth - 1, 0])
    return _splice(rng, s, body) if rng.random() < 0.5 else s.replace("{", body[: len(body) // 2 + 1], 1)


def _quotes(rng: random.Random, s: str) -> str:
    choice = rng.randrange(6)
    if choice == 0:
        return s.replace('"', "'")
    if choice == 1:
        return s.replace('"', "", rng.randrange(1, 4))
    if choice == 2:
        return _splice(rng, s, rng.choice(['"', "'", '\\"', "\\'", "`"]))
    if choice == 3:
        return s.replace('"', '\\"', rng.randrange(1, 6))
    if choice == 4:
        return s.replace('"', "\u201c", 2)
    return s.replace("'", '"')


def _backslashes(rng: random.Random, s: str) -> str:
    return _splice(rng, s, rng.choice(["\\", "\\\\", "\\u", "\\u12", "\\ud800", "\\x41", "\\n", "\\'", "\\" * 7]))


def _unicode(rng: random.Random, s: str) -> str:
    return _splice(rng, s, rng.choice(_UNICODE) * rng.choice([1, 1, 3, 500]))


def _tags(rng: random.Random, s: str) -> str:
    s = _splice(rng, s, rng.choice(_TAG_NOISE))
    if rng.random() < 0.3:
        s = s.replace("<grounding>", "<grounding><grounding>", 1)
    if rng.random() < 0.2:
        s = s.replace("</grounding>", "", 1).replace("</tool_call>", "", 1)
    return s


def _repeat(rng: random.Random, s: str) -> str:
    return s * rng.choice([2, 3, 50])


def _random_bytes(rng: random.Random, s: str) -> str:
    blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    return _splice(rng, s, blob.decode(rng.choice(["latin-1", "utf-8"]), errors="replace"))


def _case(rng: random.Random, s: str) -> str:
    return s.upper() if rng.random() < 0.5 else s.swapcase()


MUTATIONS: list[Callable[[random.Random, str], str]] = [
    _truncate, _delete_span, _duplicate_key, _drop_key, _wrong_value, _wrong_value, _nest_braces,
    _quotes, _backslashes, _unicode, _tags, _repeat, _random_bytes, _case,
]


def random_text(rng: random.Random) -> str:
    """Unstructured input: random bytes decoded leniently, or random printable ASCII."""
    n = rng.choice([0, 1, 5, 50, 500, 5000])
    if rng.random() < 0.5:
        return bytes(rng.randrange(256) for _ in range(n)).decode(rng.choice(["latin-1", "utf-8"]), errors="replace")
    alphabet = '{}[]":,\'<>/\\ 0123456789.eE-+abcdgnorstu_'
    return "".join(rng.choice(alphabet) for _ in range(n))


def fuzz_text(rng: random.Random, num_observations: int = 2) -> str:
    """One fuzz input: 10% random, otherwise a valid action with 0-3 mutations."""
    if rng.random() < 0.1:
        return random_text(rng)
    s = valid_action(rng, num_observations)
    for _ in range(rng.choice([0, 1, 1, 1, 2, 2, 3])):
        s = rng.choice(MUTATIONS)(rng, s)
    return s
