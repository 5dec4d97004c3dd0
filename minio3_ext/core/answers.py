"""Answer normalisation; extraction (the first answer tag) is the dialect's rule."""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

__all__ = ["extract_answer", "normalize_answer", "ground_truth_text", "MAX_ANSWER_CHARS"]

from .dialect import extract_answer  # the answer rule lives in the dialect
from .termination import MAX_ANSWER_CHARS


_PUNCT_RE = re.compile(r"[\s\.\,\;\:\!\?\"'`\(\)\[\]\{\}]+")
_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Case-fold, NFKC-normalise, drop articles and punctuation, collapse spaces.

    >>> normalize_answer("  The Red  Car. ")
    'red car'
    """
    t = unicodedata.normalize("NFKC", text).casefold()
    t = _ARTICLES_RE.sub(" ", t)
    t = _PUNCT_RE.sub(" ", t)
    return " ".join(t.split())


def ground_truth_text(value: Any) -> str:
    """A ground truth as the text it is scored as: text, or a finite number.

    NaN, infinities, lists, dicts and other values have no meaning as an answer (their
    string form, ``"nan"`` or ``"['a', 'b']"``, would be judged as if it were one), so
    they raise ``ValueError``; callers name the row.

    >>> ground_truth_text(3), ground_truth_text(" B ")
    ('3', ' B ')
    >>> ground_truth_text(float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: ground truth must be text or a finite number, got float nan
    """
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(value)
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    raise ValueError(f"ground truth must be text or a finite number, got {type(value).__name__} {shown}")
