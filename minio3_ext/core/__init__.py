"""Framework-free core: actions, crops, image bank, tools, episodes, masking math.

Imports only the standard library, Pillow and numpy.
"""

from .actions import ORIGINAL, ActionError, Answer, Invalid, ToolCall, Zoom
from .answers import extract_answer, normalize_answer
from .crops import CropRules, box_to_pixels, crop
from .dialect import Dialect, get_dialect
from .episode import Episode, EpisodeConfig, Observation
from .images import ImageBank, ImageError, ViewRules, default_bank, load_image, resize_for_model
from .masking import masked_group_advantages
from .termination import OVERTURN_REASONS, STOP_EVENTS, TERMINATION_REASONS, recorded_answer, stop_reason
from .tools import ImageTool, RotateTool, ToolResult, ZoomTool, available_tools, get_tool, register_tool

__all__ = [
    "ORIGINAL", "ActionError", "Answer", "Invalid", "ToolCall", "Zoom",
    "extract_answer", "normalize_answer", "CropRules", "box_to_pixels", "crop", "Dialect", "get_dialect",
    "OVERTURN_REASONS", "TERMINATION_REASONS", "STOP_EVENTS", "stop_reason", "recorded_answer", "Episode", "EpisodeConfig", "Observation",
    "ImageBank", "ImageError", "ViewRules", "default_bank", "load_image", "resize_for_model",
    "masked_group_advantages", "ImageTool", "RotateTool", "ToolResult", "ZoomTool",
    "available_tools", "get_tool", "register_tool",
]
