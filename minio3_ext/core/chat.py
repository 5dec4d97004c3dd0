"""An episode as chat messages: the one place text-and-image content blocks are built.

:func:`episode_messages` turns an :class:`~minio3_ext.core.episode.Episode` (its first
view and the :attr:`~minio3_ext.core.episode.Episode.exchanges` it consumed) into the
messages a chat template or an OpenAI-compatible server reads: the dialect's system
prompt, the first view and the question, then each assistant turn and its observation
in the dialect's role, the image at its slot. :func:`content_blocks` is the formatter
of text and image parts every caller uses (eval, the cold-start replay, SFT export, the
demo's and TRL's oracle conversations, the TRL environment's tool results, verl's
observation turns).
"""

from __future__ import annotations

from typing import Any, Sequence

from .dialect import interleave

__all__ = ["content_blocks", "slot_blocks", "episode_messages", "episode_images"]


def content_blocks(parts: Sequence[Any], *, placeholders: bool = False) -> list[dict[str, Any]]:
    """Chat content blocks from text/image parts (``Observation.parts()``, :func:`interleave`):
    ``{"type": "text", "text": ...}`` and ``{"type": "image", "image": <PIL>}``, or
    ``{"type": "image"}`` placeholders with ``placeholders=True`` (for stored datasets,
    whose collator fills them)."""
    out: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, str):
            out.append({"type": "text", "text": part})
        else:
            out.append({"type": "image"} if placeholders else {"type": "image", "image": part})
    return out


def slot_blocks(dialect: Any, text: str, images: Sequence[Any] | None = None, *,
                placeholders: bool = False) -> list[dict[str, Any]]:
    """The blocks of a text with ``<image>`` slots: ``images`` in slot order (placeholders
    when ``None``)."""
    pieces = dialect.split_slots(text)
    images = [None] * (len(pieces) - 1) if images is None else list(images)
    return content_blocks(interleave(pieces, images), placeholders=placeholders or any(i is None for i in images))


def episode_messages(episode: Any, question: str, *, system: str | None = None,
                     placeholders: bool = False) -> list[dict[str, Any]]:
    """The conversation of ``episode`` so far, every content a list of blocks.

    ``question`` is the user's question (image slots stripped); ``system`` replaces the
    dialect's system prompt. An assistant turn given as a structured call
    (:meth:`Episode.call`) carries it as ``tool_calls``, and its observation, in the
    ``tool`` role, names the tool.
    """
    d = episode.dialect
    system = d.system_prompt() if system is None else system
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": [{"type": "text", "text": system}]},
        {"role": "user", "content": slot_blocks(d, d.user_prompt(question), [episode.first_view], placeholders=placeholders)},
    ]
    for ex in episode.exchanges:
        turn: dict[str, Any] = {"role": "assistant", "content": [{"type": "text", "text": ex.text}]}
        if ex.call is not None:
            turn["tool_calls"] = [{"type": "function", "function": {"name": ex.call[0], "arguments": dict(ex.call[1])}}]
        messages.append(turn)
        obs = ex.observation
        if obs is not None:
            reply: dict[str, Any] = {"role": d.observation_role}
            if ex.call is not None and d.observation_role == "tool":
                reply["name"] = obs.tool
            reply["content"] = content_blocks(obs.parts(), placeholders=placeholders)
            messages.append(reply)
    return messages


def episode_images(episode: Any) -> list[Any]:
    """The conversation's images in slot order: the first view, then each observation's."""
    return [episode.first_view] + [ex.observation.image for ex in episode.exchanges
                                   if ex.observation is not None and ex.observation.image is not None]
