"""The rule path: decide a verdict without a call where the decision is certain.

Certain cases only:

* normalised exact match (``"The red car."`` vs ``"red car"``) → 1;
* multiple choice: a bare option letter (``"B"``, ``"(B)"``, ``"B."``), or the text of
  an option listed in the question, compared with a letter or option-text ground truth
  → 1 or 0;
* both sides plain numbers (``"3"``, ``"3.0"``, ``"-2.5"``, ``"1,000"``) → equal or not,
  compared exactly (``"1,0"`` is not a number: the LLM decides);
* both sides bare yes/no → equal or not;
* an empty prediction (no letter or digit) → 0.

Everything else returns ``None`` (ask the LLM). A prediction that carries markup,
line breaks, or instruction-like words ("ignore", "score", "system" …) is never
decided here unless it normalises to the ground truth itself; see :func:`is_plain`.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

from minio3_ext.core.answers import normalize_answer

__all__ = ["rule_verdict", "exact_match", "is_plain", "parse_options", "option_letter", "dedupe_form"]

_PLAIN_MAX_CHARS = 80
_SUSPICIOUS_CHARS = set("<>{}`\n\r\t|\\#*=")
_SUSPICIOUS_WORDS = re.compile(
    r"\b(ignore|disregard|instruction|instructions|prompt|system|assistant|user|score|"
    r"grade|judge|verdict|correct|incorrect|output|respond|reply|print|return)\b",
    re.IGNORECASE,
)
_LETTER_RE = re.compile(r"^\s*(?:option\s+)?[\(\[]?([A-Z])[\)\]]?\s*[\.:]?\s*$", re.IGNORECASE)
_LETTER_WITH_TEXT_RE = re.compile(r"^\s*[\(\[]?([A-Z])[\)\]\.:]\s+(.+?)\s*$", re.IGNORECASE | re.DOTALL)
_OPTION_RE = re.compile(r"(?:^|\n|\s)[\(\[]?([A-H])[\)\]\.:]\s+([^\n]+?)(?=\s+[\(\[]?[A-H][\)\]\.:]\s|\n|$)")
# digits, or thousands groups of three ("1,000"; "1,0" is not a number); compared exactly
_NUMBER_RE = re.compile(r"^[+-]?((\d{1,3}(,\d{3})+|\d+)(\.\d*)?|\.\d+)$")
_YES_NO = {"yes": "yes", "no": "no", "true": "yes", "false": "no"}


def is_plain(text: str) -> bool:
    """True for a short single-line answer without markup or instruction-like words."""
    if len(text) > _PLAIN_MAX_CHARS or any(c in _SUSPICIOUS_CHARS for c in text):
        return False
    if any(unicodedata.category(c) in {"Cc", "Cf", "Co", "Cs"} for c in text):
        return False
    return _SUSPICIOUS_WORDS.search(text) is None


def exact_match(ground_truth: str, prediction: str) -> bool:
    """Normalised exact match (case, NFKC, articles, punctuation, spacing)."""
    gt = normalize_answer(ground_truth)
    return bool(gt) and gt == normalize_answer(prediction)


def dedupe_form(prediction: str) -> str:
    """The form under which predictions are deduplicated and cached: the normalised
    answer, or the case-folded text where normalisation leaves nothing (``"A"``,
    ``"The"``: articles would otherwise collide with each other and with ``""``)."""
    return normalize_answer(prediction) or " ".join(prediction.casefold().split())


def parse_options(question: str) -> dict[str, str]:
    """Options listed in a multiple-choice question: ``{"A": "red car", …}`` (normalised).

    Recognises ``(A) red``, ``A. red``, ``A: red`` and ``[A] red``, one per line or
    inline. Fewer than two options → ``{}`` (not a multiple-choice question).
    """
    options: dict[str, str] = {}
    for letter, text in _OPTION_RE.findall(question):
        options.setdefault(letter.upper(), normalize_answer(text))
    return options if len(options) >= 2 else {}


def option_letter(text: str, options: dict[str, str]) -> str | None:
    """The option a prediction names: a bare letter, ``"B. text"`` whose text agrees
    with option B, or exactly one option's text. ``None`` when not certain."""
    m = _LETTER_RE.match(text)
    if m and m.group(1).upper() in options:
        return m.group(1).upper()
    m = _LETTER_WITH_TEXT_RE.match(text)
    if m and options.get(m.group(1).upper()) == normalize_answer(m.group(2)):
        return m.group(1).upper()
    norm = normalize_answer(text)
    hits = [letter for letter, opt in options.items() if opt and opt == norm]
    return hits[0] if len(hits) == 1 else None


def _number(text: str) -> Decimal | None:
    """The exact value of a plain number (``Decimal``: no float rounding, so 17-digit
    integers that differ in the last digit differ), or ``None``."""
    t = text.strip().rstrip(".")
    return Decimal(t.replace(",", "")) if _NUMBER_RE.match(t) else None


def rule_verdict(question: str, ground_truth: str, prediction: str | None) -> float | None:
    """1.0 / 0.0 where a rule is certain, ``None`` to ask the LLM.

    ``prediction=None`` (no ``<answer>`` tag) and an empty prediction are certain: 0.0.

    >>> rule_verdict("What colour?", "red", "The red.")
    1.0
    >>> rule_verdict("Which? (A) red (B) blue", "A", "(B)")
    0.0
    >>> rule_verdict("What colour?", "red", "crimson") is None
    True
    """
    if prediction is None:
        return 0.0
    if exact_match(ground_truth, prediction):
        return 1.0
    if not any(c.isalnum() for c in prediction) and any(c.isalnum() for c in ground_truth):
        return 0.0  # an empty answer (``<answer></answer>``, only punctuation)
    if not is_plain(prediction):
        return None
    options = parse_options(question)
    if options:
        gt_letter = option_letter(ground_truth, options)
        pred_letter = option_letter(prediction, options)
        if gt_letter is not None and pred_letter is not None:
            return 1.0 if gt_letter == pred_letter else 0.0
        return None
    gt_num, pred_num = _number(ground_truth), _number(prediction)
    if gt_num is not None and pred_num is not None:
        return 1.0 if gt_num == pred_num else 0.0
    gt_yn = _YES_NO.get(normalize_answer(ground_truth))
    pred_yn = _YES_NO.get(normalize_answer(prediction))
    if gt_yn is not None and pred_yn is not None:
        return 1.0 if gt_yn == pred_yn else 0.0
    return None
