"""Why a TRL rollout ended, and what it answered.

With the zoom environment the record is the environment's core
:class:`~minio3_ext.core.Episode`, driven one ``act`` per assistant message and closed
by :func:`~minio3_ext.trl.environment.close_episode` with the reason TRL's loop implies
when the episode would have gone on. Without an environment the messages are read turn by
turn with the same core rule (:meth:`~minio3_ext.core.dialect.Dialect.parse_turn`):

- the first turn whose action is an answer → ``answered`` (what the core episode records);
- still calling a tool when TRL stopped: ``turn_limit`` at TRL's tool-iteration cap,
  otherwise ``context_limit`` (TRL rolled back a tool result that did not fit);
- cut by ``max_completion_length`` without an answer: ``context_limit`` (whether that is
  masked for a run without tools is the trainer's ``mask_plain_truncation``);
- otherwise ``no_answer``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..core.actions import Answer
from ..core.dialect import Dialect, get_dialect
from ..core.termination import recorded_answer, stop_reason
from .environment import ZoomEnvironment, close_episode, message_text, turn_calls, turn_text

__all__ = ["message_text", "tool_rounds", "termination_reason", "rollout_answer", "rollout_record"]


def tool_rounds(messages: Sequence[Mapping[str, Any]]) -> int:
    """Assistant turns whose tool calls were executed (a tool message follows them)."""
    return sum(
        1 for m, nxt in zip(messages, messages[1:])
        if m.get("role") == "assistant" and m.get("tool_calls") and nxt.get("role") == "tool"
    )


def _assistants(messages: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [m for m in messages if m.get("role") == "assistant"]


def _first_answer(messages: Sequence[Mapping[str, Any]] | str, dialect: Dialect) -> str | None:
    """The answer the core would record: that of the first turn whose action is an answer."""
    if isinstance(messages, str):
        return dialect.answer(messages)
    for m in _assistants(messages):
        action = dialect.parse_turn(turn_text(m, dialect), turn_calls(m))
        if isinstance(action, Answer):
            return recorded_answer(action.text)
    return None


def termination_reason(
    messages: Sequence[Mapping[str, Any]] | str,
    *,
    truncated: bool,
    max_tool_rounds: int | None,
    dialect: Dialect | None = None,
) -> str:
    """One of the core ``TERMINATION_REASONS`` for a finished TRL rollout without an environment.

    ``truncated``: the completion did not end with an end-of-sequence token (it hit
    ``max_completion_length``). ``max_tool_rounds``: the trainer's tool-iteration cap (``None``: no cap).
    """
    dialect = dialect or get_dialect()
    if _first_answer(messages, dialect) is not None:
        return "answered"
    return stop_reason(_stop_event(messages, truncated=truncated, max_tool_rounds=max_tool_rounds))


def _stop_event(messages: Sequence[Mapping[str, Any]] | str, *, truncated: bool, max_tool_rounds: int | None) -> str:
    """What stopped an unanswered TRL rollout, as a core stop event."""
    if not isinstance(messages, str):
        assistants = _assistants(messages)
        last = assistants[-1] if assistants else {}
        if last.get("tool_calls") and messages[-1].get("role") == "assistant":  # calls TRL did not run
            capped = max_tool_rounds is not None and tool_rounds(messages) >= max_tool_rounds
            return "turn_cap" if capped else "context_full"
    return "length" if truncated else "stopped"


def rollout_answer(completion: Any, environment: Any = None, *, truncated: bool = False) -> str | None:
    """The answer of one rollout as the core episode records it (the environment's episode
    when there is one, closed here if the trainer has not closed it yet)."""
    if isinstance(environment, ZoomEnvironment) and environment.episode is not None:
        return close_episode(environment, completion, truncated=truncated).answer
    return _first_answer(completion, get_dialect())


def rollout_record(
    messages: Sequence[Mapping[str, Any]] | str,
    *,
    truncated: bool,
    max_tool_rounds: int | None,
    environment: Any = None,
    tool_errors: int | None = None,
) -> dict[str, Any]:
    """Termination reason and counters of one rollout (the environment's episode when it has one).

    ``tool_errors``: tool calls that failed, as counted by the trainer where they were made;
    ``None`` falls back to reading TRL's error text. With the zoom environment the episode
    counts invalid actions itself (a call TRL could not route is read as the episode's turn).
    """
    if isinstance(environment, ZoomEnvironment) and environment.episode is not None:
        summary = close_episode(environment, messages, truncated=truncated).summary()
        return {"reason": summary["termination_reason"], "turns": summary["turns"], "zooms": summary["zooms"],
                "invalid_actions": summary["invalid_actions"], "extra_calls": environment.extra_calls}
    reason = termination_reason(messages, truncated=truncated, max_tool_rounds=max_tool_rounds)
    if isinstance(messages, str):
        return {"reason": reason, "turns": 1, "zooms": 0, "invalid_actions": 0, "extra_calls": 0}
    # calls TRL could not make (unknown tool, bad keyword arguments) come back as "{'error': ...}"
    errors = tool_errors if tool_errors is not None else sum(
        m.get("role") == "tool" and message_text(m).startswith("{'error'") for m in messages)
    calls = sum(max(len(m.get("tool_calls") or ()) - 1, 0) for m in _assistants(messages))
    return {"reason": reason, "turns": len(_assistants(messages)), "zooms": tool_rounds(messages),
            "invalid_actions": errors, "extra_calls": calls}
