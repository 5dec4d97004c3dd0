"""Issue 20: a tool call reads the same whether TRL's chat template renders it (the
assistant message TRL's response parsing builds, through the template TRL applies) or the
core dialect does (:meth:`Dialect.render` of the action the core parses from that call),
byte for byte, in both dialects: zoom, a built-in tool (``rotate``), the plugin tool of
``tests/plugin_pkg`` (``equalize``) and non-ASCII argument text."""

from __future__ import annotations

import pytest
from trl.chat_template_utils import get_training_chat_template, is_chat_template_prefix_preserving
from trl.data_utils import prepare_multimodal_messages

from minio3_ext.core import EpisodeConfig
from minio3_ext.testing import build_processor
from minio3_ext.trl.templates import use_minio3_dialect, use_tool_chat_template

CALLS = [
    ("zoom", {"bbox_2d": [0.1, 0.2, 0.5, 0.6], "source": "observation_1"}),
    ("rotate", {"angle": 90, "source": "original_image"}),
    ("equalize", {"strength": "full", "source": "observation_2"}),  # tests/plugin_pkg's schema
    ("caption", {"text": "café – 東京", "source": "original_image"}),
]
ASSISTANT, END = "<|im_start|>assistant\n", "<|im_end|>"
THOUGHT = "<think>the sign is too small</think>"
#: Where each template puts the call after the turn's text: right after it (the released
#: ``<grounding>`` layout), or on a new line (Qwen's Hermes layout, TRL's Qwen3-VL template).
SEPARATOR = {"minio3": "", "hermes": "\n"}


@pytest.fixture(scope="module")
def processors():
    out = {}
    for dialect in ("minio3", "hermes"):
        processor = build_processor()
        config = EpisodeConfig.from_options(dialect=dialect, tools=("zoom", "rotate"))
        if dialect == "minio3":
            use_minio3_dialect(processor, config)
        else:
            use_tool_chat_template(processor, force=True)
        out[dialect] = processor, config.dialect
    return out


def _trl_render(processor, name, arguments) -> str:
    """The assistant turn as GRPOTrainer renders it: its (training) template, VLM messages."""
    template = None if is_chat_template_prefix_preserving(processor) else get_training_chat_template(processor)
    messages = prepare_multimodal_messages([
        {"role": "user", "content": "What does the sign say?"},
        {"role": "assistant", "content": THOUGHT, "tool_calls": [{"type": "function", "function": {"name": name, "arguments": arguments}}]},
    ])
    text = processor.apply_chat_template(messages, chat_template=template, tokenize=False)
    return text.split(ASSISTANT, 1)[1].split(END, 1)[0]


@pytest.mark.parametrize("dialect", ["minio3", "hermes"])
@pytest.mark.parametrize("name, arguments", CALLS, ids=[c[0] for c in CALLS])
def test_the_template_and_the_dialect_spell_a_tool_call_alike(dialect, name, arguments, processors):
    processor, d = processors[dialect]
    action = d.parse_call(name, arguments, num_observations=2)
    assert type(action).__name__ in ("Zoom", "ToolCall")
    rendered = d.render(action)
    assert _trl_render(processor, name, arguments) == THOUGHT + SEPARATOR[dialect] + rendered
    assert d.parse(rendered, num_observations=2) == action  # and the core reads its spelling back
    if dialect == "minio3" and name == "zoom":
        assert rendered.startswith("<grounding>{")
    else:
        assert rendered.startswith("<tool_call>\n{") and rendered.endswith("}\n</tool_call>")


@pytest.mark.parametrize("name, arguments", CALLS, ids=[c[0] for c in CALLS])
def test_the_verl_hermes_template_spells_a_tool_call_alike(name, arguments, processors):
    """The tool-capable template the verl hermes recipe sets (``qwen2_5_vl_tools.jinja``)
    writes a listed call the same way, on a new line after the text."""
    from pathlib import Path

    import minio3_ext

    template = (Path(minio3_ext.__file__).parent / "verl" / "config" / "qwen2_5_vl_tools.jinja").read_text(encoding="utf-8")
    processor, d = processors["hermes"]
    messages = [{"role": "user", "content": "What does the sign say?"},
                {"role": "assistant", "content": THOUGHT,
                 "tool_calls": [{"type": "function", "function": {"name": name, "arguments": arguments}}]}]
    text = processor.tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False)
    turn = text.split(ASSISTANT, 1)[1].split(END, 1)[0]
    assert turn == THOUGHT + "\n" + d.render(d.parse_call(name, arguments, num_observations=2))
