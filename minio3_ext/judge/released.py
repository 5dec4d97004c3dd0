"""The ``released`` judge preset: the words, parsing and retry schedule of the reward
the Mini-o3 authors trained with (github ``Mini-o3/Mini-o3`` at 8654dbf,
``verl/utils/reward_score/general_qa_tool.py``; facts in ``shared/released/judge.md``).

Select it with ``JudgeConfig(preset="released", base_url=..., ...)`` (or
``MINIO3_JUDGE_PRESET=released``); the engine then asks every answered row (no rule
path), with these messages, at temperature ``min(0.2 * attempt, 1.0)`` for attempts
0..4, and reads the verdict the way the released code does. The prompt strings are a
compatibility interface reproduced as data, byte for byte.

Injection defences this preset keeps: the verdict is read only from the judge's own
reply; the prediction is the first ``<answer>`` only, stripped and capped (300
characters; question and ground truth 4,000). What it gives up (the ``hardened``
preset has them): the nonce-fenced, JSON-escaped data block, the system prompt's
instruction to treat the data as data, and the removal of invisible characters — the
prediction is pasted into the released template as is.
"""

from __future__ import annotations

__all__ = ["PROMPT_VERSION", "SYSTEM_PROMPT", "QUERY_PROMPT", "DEFAULT_MODEL", "build_messages", "parse_verdict",
           "temperature"]

PROMPT_VERSION = "released-8654dbf"
"""Cache-key component: verdicts of the two presets never mix in one cache."""

DEFAULT_MODEL = "gpt-4o-2024-11-20"
"""The model the paper judged with (any OpenAI-compatible model name works)."""

SYSTEM_PROMPT = (
    "You are an intelligent chatbot designed for evaluating the correctness of generative outputs for "
    "question-answer pairs.\n"
    "Your task is to compare the predicted answer with the correct answer and determine if they match "
    "meaningfully. Here's how you can accomplish the task:\n"
    "------\n"
    "##INSTRUCTIONS:\n"
    "- Focus on the meaningful match between the predicted answer and the correct answer.\n"
    "- Consider synonyms or paraphrases as valid matches.\n"
    "- Evaluate the correctness of the prediction compared to the answer."
)

QUERY_PROMPT = (
    "I will give you a question related to an image and the following text as inputs:\n\n"
    "1. **Question Related to the Image**: {question}\n"
    "2. **Ground Truth Answer**: {ground_truth}\n"
    "3. **Model Predicted Answer**: {prediction}\n\n"
    "Your task is to evaluate the model's predicted answer against the ground truth answer, based on the context "
    "provided by the question related to the image. Consider the following criteria for evaluation:\n"
    "- **Relevance**: Does the predicted answer directly address the question posed, considering the information "
    "provided by the given question?\n"
    "- **Accuracy**: Compare the predicted answer to the ground truth answer. You need to evaluate from the "
    "following two perspectives:\n"
    "(1) If the ground truth answer is open-ended, consider whether the prediction accurately reflects the "
    "information given in the ground truth without introducing factual inaccuracies. If it does, the prediction "
    "should be considered correct.\n"
    "(2) If the ground truth answer is a definitive answer, strictly compare the model's prediction to the actual "
    "answer. Pay attention to unit conversions such as length and angle, etc. As long as the results are "
    "consistent, the model's prediction should be deemed correct.\n"
    "**Output Format**:\n"
    "Your response should include an integer score indicating the correctness of the prediction: 1 for correct "
    "and 0 for incorrect. Note that 1 means the model's prediction strictly aligns with the ground truth, while 0 "
    "means it does not.\n"
    'The format should be "Score: 0 or 1"'
)


def build_messages(question: str, ground_truth: str, prediction: str) -> list[dict]:
    """A system message, then one user message whose content is one text part (the
    released request passes no image to this reward: text only)."""
    query = QUERY_PROMPT.format(question=question, ground_truth=ground_truth, prediction=prediction)
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {"role": "user", "content": [{"type": "text", "text": query}]},
    ]


def temperature(attempt: int) -> float:
    """``min(0.2 * attempt, 1.0)`` for the 0-based attempt number."""
    return min(0.2 * attempt, 1.0)


def parse_verdict(reply: str | None) -> float | None:
    """The released rule: valid only if the reply contains ``score:`` (any case); the
    verdict is the first word after the last ``score:`` (first line); it must contain
    ``1`` or ``0``; a ``1`` anywhere in that word means correct. ``None`` = invalid
    (the engine retries).

    >>> parse_verdict("The answers match.\\nScore: 1")
    1.0
    >>> parse_verdict("SCORE: **0**")
    0.0
    >>> parse_verdict("Score: one") is None
    True
    >>> parse_verdict("1") is None
    True
    """
    if not reply:
        return None
    text = reply.lower()
    if "score:" not in text:
        return None
    word = text.split("score:")[-1].strip().split("\n")[0].strip().split(" ")[0]
    if "1" not in word and "0" not in word:
        return None
    return 1.0 if "1" in word else 0.0
