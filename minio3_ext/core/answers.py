"""Answer extraction (SPEC 2): the first ``<answer>…</answer>`` of a trajectory."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["extract_answer", "normalize_answer", "MAX_ANSWER_CHARS"]

#: Answers longer than this are cut before judging: a verbose answer that drags the
#: explanation along was judged wrong in a public port (SPEC 2, lessons).
MAX_ANSWER_CHARS = 300

_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)


def extract_answer(text: str | None, max_chars: int = MAX_ANSWER_CHARS) -> str | None:
    """Return the content of the first ``<answer>`` tag, stripped and length-capped.

    ``None`` when the trajectory has no complete answer tag (it scores 0).

    >>> extract_answer("<think>red car</think><answer> B </answer> done")
    'B'
    >>> extract_answer("no tag") is None
    True
    """
    if not text:
        return None
    m = _ANSWER_RE.search(text)
    if m is None:
        return None
    return m.group(1).strip()[:max_chars]


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
