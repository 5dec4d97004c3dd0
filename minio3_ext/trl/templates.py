"""A tool-capable chat template for Qwen2.5-VL under TRL.

Qwen2.5-VL's stock template cannot render ``tool_calls`` or ``tool`` messages, so
TRL's tool loop refuses it. TRL ships the Qwen3-VL template, which renders Hermes tool
calls and image-bearing tool responses with the same vision tokens
(``<|vision_start|><|image_pad|><|vision_end|>``); TRL recognises it, so it also sets
the response parser and swaps in its prefix-preserving training variant.
"""

from __future__ import annotations

from trl.chat_template_utils import qwen3_vl_chat_template, supports_tool_calling

__all__ = ["use_tool_chat_template", "TOOL_CHAT_TEMPLATE"]

TOOL_CHAT_TEMPLATE = qwen3_vl_chat_template


def use_tool_chat_template(processing_class, *, force: bool = False):
    """Give ``processing_class`` (processor or tokenizer) TRL's Qwen3-VL tool template unless
    its own already renders tool calls. Returns the same object."""
    if not force and processing_class.chat_template is not None and supports_tool_calling(processing_class):
        return processing_class
    processing_class.chat_template = TOOL_CHAT_TEMPLATE
    tokenizer = getattr(processing_class, "tokenizer", None)
    if tokenizer is not None:
        tokenizer.chat_template = TOOL_CHAT_TEMPLATE
    return processing_class
