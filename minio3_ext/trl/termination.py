"""Why a TRL rollout ended, read from the messages TRL's tool loop produced.

TRL's loop stops a rollout when the model answers without a tool call, when
``max_tool_calling_iterations`` runs out while the model is still calling tools, or
when a tool result would overflow ``max_completion_length`` (it then rolls the result
back). In both budget cases the last assistant message still carries an unexecuted
``tool_calls`` entry, which is how the over-turn rows are recognised without an
environment. With the zoom environment the episode state refines the reason.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..core.answers import extract_answer
from ..core.episode import Episode

__all__ = ["message_text", "tool_rounds", "termination_reason", "finish_episode", "rollout_record"]


def message_text(message: Mapping[str, Any]) -> str:
    """Text of a chat message whose content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return ""


def tool_rounds(messages: Sequence[Mapping[str, Any]]) -> int:
    """Assistant turns whose tool calls were executed (a tool message follows them)."""
    return sum(
        1 for m, nxt in zip(messages, messages[1:])
        if m.get("role") == "assistant" and m.get("tool_calls") and nxt.get("role") == "tool"
    )


def _final_assistant(messages: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    for m in reversed(messages):
        if m.get("role") == "assistant":
            return m
    return {}


def termination_reason(messages: Sequence[Mapping[str, Any]] | str, *, truncated: bool, max_tool_rounds: int) -> str:
    """One of the core ``TERMINATION_REASONS`` for a finished TRL rollout.

    ``truncated``: the completion did not end with an end-of-sequence token (it hit
    ``max_completion_length``). ``max_tool_rounds``: the trainer's tool-iteration cap.
    """
    if isinstance(messages, str):  # a plain-text (non-conversational) completion
        final, pending, rounds = messages, False, 0
    else:
        last = _final_assistant(messages)
        final, pending, rounds = message_text(last), bool(last.get("tool_calls")), tool_rounds(messages)
        if messages and messages[-1].get("role") != "assistant":
            pending = False
    if pending:
        return "turn_limit" if rounds >= max_tool_rounds else "context_limit"
    if extract_answer(final) is not None:
        return "answered"
    return "context_limit" if truncated else "no_answer"


def finish_episode(episode: Episode, reason: str, final_text: str) -> None:
    """Close an environment's episode with the reason TRL's loop implies.

    An answer is fed through :meth:`Episode.step` so it is recorded like any turn;
    other endings are imposed with :meth:`Episode.terminate`. A reason the episode
    already reached itself (e.g. ``image_limit`` inside a tool call) is kept.
    """
    if episode.done:
        return
    if reason == "answered":
        episode.step(final_text)
        if not episode.done:  # pragma: no cover - step() ends on any <answer>
            episode.terminate("answered")
        return
    episode.terminate(reason)


def rollout_record(
    messages: Sequence[Mapping[str, Any]] | str,
    *,
    truncated: bool,
    max_tool_rounds: int,
    environment: Any = None,
    tool_errors: int | None = None,
) -> dict[str, Any]:
    """Termination reason and counters of one rollout (the environment's episode when it has one).

    ``tool_errors``: tool calls that failed, as counted by the trainer where they were made;
    ``None`` falls back to reading TRL's error text.
    """
    reason = termination_reason(messages, truncated=truncated, max_tool_rounds=max_tool_rounds)
    conversational = not isinstance(messages, str)
    turns = sum(m.get("role") == "assistant" for m in messages) if conversational else 1
    # calls TRL could not even make (unknown tool, bad keyword arguments) come back as "{'error': ...}"
    if tool_errors is not None:
        errors = tool_errors
    else:
        errors = sum(m.get("role") == "tool" and message_text(m).startswith("{'error'") for m in messages) if conversational else 0
    episode = getattr(environment, "episode", None)
    if isinstance(episode, Episode):
        final = message_text(_final_assistant(messages)) if conversational else messages
        finish_episode(episode, reason, final)
        summary = episode.summary()
        return {"reason": summary["termination_reason"], "turns": turns, "zooms": summary["zooms"],
                "invalid_actions": summary["invalid_actions"] + errors}
    return {"reason": reason, "turns": turns, "zooms": tool_rounds(messages) if conversational else 0,
            "invalid_actions": errors}
