"""How an episode ends: its termination reasons, the framework stop events that end it,
and the answer it records.

Every driver of an episode (verl's agent loop, TRL's environment and its no-environment
reader, the evaluation runner) translates what its framework did into one of the
:data:`STOP_EVENTS` and asks :func:`stop_reason` (through :meth:`Episode.end
<minio3_ext.core.episode.Episode.end>` when it holds an episode) for the reason; none
keeps its own map. The answer an episode records is :func:`recorded_answer`'s: the one
place the answer cap is applied (the judge and the reward functions take it as is).

>>> stop_reason("length"), stop_reason("turn_cap"), stop_reason("stopped")
('context_limit', 'turn_limit', 'no_answer')
>>> len(recorded_answer(" " + "x" * 400))
300
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "TERMINATION_REASONS", "OVERTURN_REASONS", "STOP_EVENTS", "MAX_ANSWER_CHARS", "stop_reason", "recorded_answer",
]

TERMINATION_REASONS = ("answered", "no_answer", "turn_limit", "image_limit", "context_limit")
#: Budget ran out while the policy was still acting: masked by default.
OVERTURN_REASONS = frozenset({"turn_limit", "image_limit", "context_limit"})

#: Framework stop event → termination reason. The events, as the adapters see them:
#:
#: - ``length``: generation was cut by a token budget (verl's response length or per-turn
#:   budget, TRL's ``max_completion_length``) before the turn ended;
#: - ``context_full``: the framework refused or rolled back a message because the context
#:   was full (verl's response budget after an observation, TRL dropping a tool result that
#:   did not fit, a server's "maximum context length" error);
#: - ``image_cap``: the server takes no more images in one prompt;
#: - ``turn_cap``: the framework's own turn or tool-iteration cap stopped a policy that was
#:   still calling tools (verl's ``max_user_turns``, TRL's ``max_tool_calling_iterations``);
#: - ``stopped``: the policy ended its turn without an answer and without an action the
#:   framework ran (nothing left to do).
STOP_EVENTS: dict[str, str] = {
    "length": "context_limit",
    "context_full": "context_limit",
    "image_cap": "image_limit",
    "turn_cap": "turn_limit",
    "stopped": "no_answer",
}

#: Answers longer than this are cut before judging: a verbose answer that drags the
#: explanation along was judged wrong in a public port.
MAX_ANSWER_CHARS = 300


def stop_reason(event: str) -> str:
    """The termination reason of a framework stop event (:data:`STOP_EVENTS`)."""
    try:
        return STOP_EVENTS[event]
    except KeyError:
        raise ValueError(f"unknown stop event {event!r}; expected one of {sorted(STOP_EVENTS)}") from None


def recorded_answer(text: Any) -> str | None:
    """The answer an episode records from the text inside its answer tags: stripped, cut
    to :data:`MAX_ANSWER_CHARS`. ``None`` stays ``None`` (no answer)."""
    if text is None:
        return None
    return str(text).strip()[:MAX_ANSWER_CHARS]
