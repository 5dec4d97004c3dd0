"""Prompt text for both dialects (SPEC 1.1, 1.2).

Everything a model reads from the environment is produced here, so a dialect
change is one file.
"""

from __future__ import annotations

__all__ = [
    "MINIO3_SYSTEM_PROMPT", "HERMES_SYSTEM_PROMPT", "system_prompt",
    "observation_text", "error_text", "user_prompt",
]

MINIO3_SYSTEM_PROMPT = """You are a helpful assistant that answers questions about an image by searching it step by step.

In each turn, first think inside <think></think>. Then do exactly one of:
- zoom in: <grounding>{"bbox_2d": [x0, y0, x1, y1], "source": "original_image"}</grounding>
  The coordinates are relative: the image width and height are both 1.0, so every value is in [0, 1] and x0 < x1, y0 < y1.
  "source" is "original_image" or "observation_i" to zoom into an earlier zoomed-in image.
- answer: <answer>your final answer</answer>

After each zoom you receive the zoomed-in image as the next observation."""

HERMES_SYSTEM_PROMPT = """You are a helpful assistant that answers questions about an image by searching it step by step.

In each turn, first think inside <think></think>. Then either call the zoom tool to look closer, or give the final answer inside <answer></answer>.
The zoom tool takes "bbox_2d": [x0, y0, x1, y1] in relative coordinates (the image width and height are both 1.0; x0 < x1, y0 < y1) and "source": "original_image" or "observation_i" (an earlier zoomed-in image)."""


def system_prompt(dialect: str = "minio3") -> str:
    return MINIO3_SYSTEM_PROMPT if dialect == "minio3" else HERMES_SYSTEM_PROMPT


def user_prompt(question: str) -> str:
    """The first user turn: image slot first, then the question."""
    q = question.replace("<image>", "").strip()
    return f"<image>\n{q}"


def observation_text(
    action_index: int,
    image_placeholder: str = "<image>",
    *,
    observation_index: int | None = None,
    dialect: str = "minio3",
) -> str:
    """Text around an observation (action numbering starts at 0).

    ``observation_index`` is the number the model must use as ``observation_<i>``;
    it defaults to ``action_index + 1``, which holds only while no action failed.
    """
    obs = action_index + 1 if observation_index is None else observation_index
    how = ("by outputting <grounding></grounding> as before" if dialect == "minio3"
           else "by calling the zoom tool as before")
    return (
        f"After the above Action {action_index}, here is the zoomed-in image "
        f"(Observation {obs}):\n{image_placeholder}.\n"
        "Continue your reasoning process inside <think></think>. If needed, you can "
        f"continue to zoom in on the original image or any of the observations, {how}. "
        "If the final answer is confirmed, put your final answer inside <answer></answer>."
    )


def error_text(action_index: int, message: str) -> str:
    """A failed action: no image, the reason, and a request to adjust."""
    return (
        f"Action {action_index} failed: {message}\n"
        "Please adjust your action and try again: zoom with a valid bbox_2d and "
        "source, or give your final answer inside <answer></answer>."
    )
