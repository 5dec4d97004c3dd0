"""Shorthands for the dialect's prompt text (the words live in :mod:`.dialect`)."""

from __future__ import annotations

from .dialect import get_dialect

__all__ = ["system_prompt", "observation_text", "error_text", "user_prompt"]


def system_prompt(dialect: str = "minio3", **options) -> str:
    return get_dialect(dialect, **options).system_prompt()


def user_prompt(question: str, dialect: str = "minio3") -> str:
    return get_dialect(dialect).user_prompt(question)


def observation_text(action_index: int, *, observation_index: int | None = None, dialect: str = "minio3",
                     tool: str = "zoom") -> str:
    obs = action_index + 1 if observation_index is None else observation_index
    return get_dialect(dialect).observation_text(action_index, obs, tool)


def error_text(action_index: int, message: str, dialect: str = "minio3", tool: str = "zoom") -> str:
    return get_dialect(dialect).error_text(action_index, message, tool)
