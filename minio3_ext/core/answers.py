"""Answer normalisation; extraction (the first answer tag) is the dialect's rule (SPEC 2)."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["extract_answer", "normalize_answer", "MAX_ANSWER_CHARS"]

from .dialect import MAX_ANSWER_CHARS, extract_answer  # the answer rule lives in the dialect


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
