"""Tolerant JSON for model output: never ``eval``.

Models write ``{'bbox_2d': [0.1, 0.2, 0.3, 0.4], 'source': 'original_image'}``,
trailing prose, Python literals. We locate the first balanced ``{…}`` (quotes
respected), rewrite single-quoted strings and Python constants into JSON, and hand
the result to :func:`json.loads`.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["JsonishError", "find_object", "loads_tolerant"]

_PY_CONSTANTS = {"True": "true", "False": "false", "None": "null"}


class JsonishError(ValueError):
    """The text holds no parseable JSON object; the message is readable by a model."""


def find_object(text: str) -> str:
    """Return the first balanced ``{…}`` substring of ``text``."""
    start = text.find("{")
    if start < 0:
        raise JsonishError("no JSON object found (expected '{...}')")
    depth = 0
    quote: str | None = None
    escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if quote is not None:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    raise JsonishError("unterminated JSON object (missing '}')")


def _to_json(obj_text: str) -> str:
    """Rewrite single-quoted strings and Python constants into JSON syntax."""
    out: list[str] = []
    i, n = 0, len(obj_text)
    while i < n:
        ch = obj_text[i]
        if ch in "\"'":
            quote, j, buf = ch, i + 1, []
            while j < n and obj_text[j] != quote:
                if obj_text[j] == "\\" and j + 1 < n:
                    nxt = obj_text[j + 1]
                    # \' is legal in Python strings but not in JSON
                    buf.append("'" if nxt == "'" else "\\" + nxt)
                    j += 2
                    continue
                buf.append('\\"' if obj_text[j] == '"' else obj_text[j])
                j += 1
            out.append('"' + "".join(buf) + '"')
            i = j + 1
            continue
        if ch.isalpha():
            j = i
            while j < n and (obj_text[j].isalnum() or obj_text[j] == "_"):
                j += 1
            word = obj_text[i:j]
            out.append(_PY_CONSTANTS.get(word, word))
            i = j
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def loads_tolerant(text: str) -> dict[str, Any]:
    """Parse the first JSON-ish object in ``text`` into a dict.

    >>> loads_tolerant("sure: {'source': 'original_image', 'bbox_2d': [0, 0, 1, 1]} ok")
    {'source': 'original_image', 'bbox_2d': [0, 0, 1, 1]}
    """
    obj_text = find_object(text)
    for rewrite in (False, True):  # rewrite only when plain JSON fails: most turns are plain JSON
        candidate = _to_json(obj_text) if rewrite else obj_text
        try:
            value = json.loads(candidate)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    raise JsonishError("malformed JSON object: " + _preview(obj_text))


def _preview(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
