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
tool call (TRL leaves a schema that is already set alone). Both come from the core
dialect: the tags in the template and the response schema
(:meth:`~minio3_ext.core.dialect.Dialect.response_schema`) are the dialect's, not copies.
"""

from __future__ import annotations

import json
from importlib import resources

from trl.chat_template_utils import qwen3_vl_chat_template, supports_tool_calling

from ..core.dialect import TOOL_CALL_CLOSE, TOOL_CALL_OPEN, Dialect, get_dialect

__all__ = ["use_tool_chat_template", "use_minio3_dialect", "minio3_chat_template", "TOOL_CHAT_TEMPLATE",
           "MINIO3_CHAT_TEMPLATE", "MINIO3_RESPONSE_SCHEMA"]

TOOL_CHAT_TEMPLATE = qwen3_vl_chat_template
_MINIO3_BODY = resources.files(__package__).joinpath("minio3_dialect.jinja").read_text(encoding="utf-8")


def minio3_chat_template(dialect: Dialect | None = None) -> str:
    """The ``minio3`` chat template with the dialect's action tags set in front of the Jinja body."""
    d = dialect or get_dialect("minio3")
    tags = {"zoom_open": d.action_open, "zoom_close": d.action_close,
            "call_open": TOOL_CALL_OPEN, "call_close": TOOL_CALL_CLOSE}
    prelude = "".join("{%- set " + k + " = " + json.dumps(v) + " -%}\n" for k, v in tags.items())
    return prelude + _MINIO3_BODY


MINIO3_CHAT_TEMPLATE = minio3_chat_template()
#: transformers' response-parsing schema (legacy ``response_schema`` form, which
#: transformers < 5.13 requires), from the dialect: thinking, text, then ``<grounding>`` calls → ``zoom``.
MINIO3_RESPONSE_SCHEMA = get_dialect("minio3").response_schema()


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


def use_minio3_dialect(processing_class, config=None):
    """Switch ``processing_class`` (processor or tokenizer) to the released ``<grounding>`` dialect.

    Use with ``ZoomEnvironment(EpisodeConfig(dialect="minio3"))`` and the minio3 system
    prompt; pass that ``config`` (an ``EpisodeConfig``) so the template and the response
    parsing follow its dialect (tools, preset). Tool calls TRL's JSON parser cannot read
    (e.g. single quotes, which the released code's ``eval`` accepted) end the rollout as
    plain text (``no_answer``).
    """
    dialect = config.dialect if config is not None else get_dialect("minio3")
    if dialect.name != "minio3":
        raise ValueError(f"use_minio3_dialect: the episode config speaks the {dialect.name!r} dialect; "
                         "use use_tool_chat_template for Hermes tool calls")
    template = minio3_chat_template(dialect)
    processing_class.chat_template = template
    tokenizer = getattr(processing_class, "tokenizer", processing_class)
    tokenizer.chat_template = template
    tokenizer.response_schema = dialect.response_schema()
    return processing_class
