"""Cost of reading one assistant turn (issue 21 item 7): the dialect's answer rule on a
turn that repeats an unclosed ``<answer>`` tag.

Rows (best wall time of ``Dialect.parse`` + ``Dialect.answer`` + ``Dialect.think_ok``):

- **D1** a hostile 32k-token turn (``"<answer>x "`` repeated, ~128k characters; quick:
  8k tokens) against a benign turn of the same length (thinking text, then one closed
  answer) measured in the same run. Goal: within 2x (a linear pass costs the same on
  either); the lazy span regex ``<answer>(.*?)</answer>`` took seconds here.
- **D2** the same hostile turn against that span regex itself (the rule before issue 21,
  kept here only as the baseline). Goal: at most 0.01x.
"""

from __future__ import annotations

import re

from bench.common import Row, best_time
from minio3_ext.core.dialect import get_dialect

_SPAN_REGEX = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)  # the old rule (baseline only)


def _read(dialect, text: str) -> None:
    dialect.parse(text)
    dialect.answer(text)
    dialect.think_ok(text)


def run(quick: bool) -> list[Row]:
    tokens = 8_000 if quick else 32_000
    hostile = "<answer>x " * (tokens // 4)  # ~4 tokens a repeat
    benign_body = "<think>" + ("the red car is left of the tree " * (len(hostile) // 32 + 1))[: len(hostile) - 40]
    benign = benign_body + "</think><answer>red</answer>"
    d = get_dialect("minio3")
    repeat = 5 if quick else 20
    t_hostile = best_time(lambda: _read(d, hostile), repeat=repeat, number=20)
    t_benign = best_time(lambda: _read(d, benign), repeat=repeat, number=20)
    t_regex = best_time(lambda: _SPAN_REGEX.search(hostile), repeat=1 if not quick else 2)
    size = f"{tokens // 1000}k-token turn ({len(hostile) // 1000}k chars)"
    return [
        Row(f"D1 parse a {size}, unclosed <answer> repeated", t_hostile, t_benign, "s", "<= 2x",
            t_hostile <= 2 * t_benign,
            "baseline: a benign turn of the same length (thinking, then one closed answer), same run"),
        Row("D2 the same turn vs the lazy span regex", t_hostile, t_regex, "s", "<= 0.01x",
            t_hostile <= 0.01 * t_regex,
            "baseline: re.search(r'<answer>(.*?)</answer>') on that turn (the rule before issue 21)"),
    ]
