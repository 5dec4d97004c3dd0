"""Chat templates for Qwen2.5-VL under TRL's tool loop: Hermes tool calls, or the released ``<grounding>`` dialect.

Qwen2.5-VL's stock template cannot render ``tool_calls`` or ``tool`` messages, so
TRL's tool loop refuses it. TRL ships the Qwen3-VL template, which renders Hermes tool
calls and image-bearing tool responses with the same vision tokens
(``<|vision_start|><|image_pad|><|vision_end|>``); TRL recognises it, so it also sets
the response parser and swaps in its prefix-preserving training variant.

:func:`use_minio3_dialect` plugs in the released Mini-o3 dialect through TRL's two
parsing hooks, without touching TRL code: a chat template that renders a ``zoom`` call
as ``<grounding>{...}</grounding>`` and tool results as plain user turns, and a
``response_schema`` on the tokenizer that parses ``<grounding>`` back into a ``zoom``
tool call (TRL leaves a schema that is already set alone).
"""

from __future__ import annotations

from importlib import resources

from trl.chat_template_utils import qwen3_vl_chat_template, supports_tool_calling

__all__ = ["use_tool_chat_template", "use_minio3_dialect", "TOOL_CHAT_TEMPLATE", "MINIO3_CHAT_TEMPLATE", "MINIO3_RESPONSE_SCHEMA"]

TOOL_CHAT_TEMPLATE = qwen3_vl_chat_template
MINIO3_CHAT_TEMPLATE = resources.files(__package__).joinpath("minio3_dialect.jinja").read_text(encoding="utf-8")

#: transformers' response-parsing schema (legacy ``response_schema`` form, which
#: transformers < 5.13 requires): thinking, text, then ``<grounding>`` calls → ``zoom``.
MINIO3_RESPONSE_SCHEMA = {
    "x-regex": (r"^(?:<think>\n?(?:(?P<reasoning_content>.*?\S.*?)\n?|[\s]*)</think>\s*)?"
                r"(?P<content>(?:(?!<grounding>)[\s\S])*?)(?=(?:<grounding>|<\|im_end\|>|$))"
                r"(?P<tool_calls>(?:<grounding>(?:(?!</grounding>)[\s\S])+</grounding>\s*)+)?\s*(?:<\|im_end\|>|$)"),
    "type": "object",
    "properties": {
        "role": {"const": "assistant"},
        "content": {"type": "string"},
        "reasoning_content": {"type": "string"},
        "tool_calls": {
            "type": "array",
            "x-regex-iterator": r"<grounding>\s*(.+?)\s*</grounding>",
            "items": {
                "x-parser": "json",
                "x-parser-args": {"transform": "{type: 'function', function: {name: 'zoom', arguments: @}}"},
                "type": "object",
                "properties": {
                    "type": {"const": "function"},
                    "function": {"type": "object", "properties": {
                        "name": {"type": "string"}, "arguments": {"type": "object", "additionalProperties": {}}}},
                },
            },
        },
    },
}


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


def use_minio3_dialect(processing_class):
    """Switch ``processing_class`` (processor or tokenizer) to the released ``<grounding>`` dialect.

    Use with ``ZoomEnvironment(EpisodeConfig(dialect="minio3"))`` and the minio3 system
    prompt. Tool calls TRL's JSON parser cannot read (e.g. single quotes, which the
    released code's ``eval`` accepted) end the rollout as plain text (``no_answer``).
    """
    processing_class.chat_template = MINIO3_CHAT_TEMPLATE
    tokenizer = getattr(processing_class, "tokenizer", processing_class)
    tokenizer.chat_template = MINIO3_CHAT_TEMPLATE
    tokenizer.response_schema = MINIO3_RESPONSE_SCHEMA
    return processing_class
