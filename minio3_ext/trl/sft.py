"""Cold-start SFT on multi-turn trajectories whose tool turns carry images.

TRL's ``DataCollatorForVisionLanguageModeling`` fills ``{"type": "image"}``
placeholders from the ``images`` column only outside ``tool`` turns, so a crop
returned by a tool cannot come from that column. :class:`ToolImageCollator` fills the
tool turns' placeholders from the tail of ``images`` (after those of the other turns)
and then hands the example to TRL's collator unchanged. It also drops the ``None``
fields Arrow adds when message dicts of different shapes share one column. Use it as
``SFTTrainer(data_collator=ToolImageCollator(processor), ...)``.

``tools`` renders the same tool schemas into every example as the RL prompts carry
(TRL's vision collator passes none to the chat template), so SFT and RL see one format.

``assistant_only=True`` keeps the loss on assistant turns of a ChatML template
(``<|im_start|>assistant\n`` … ``<|im_end|>``, as Qwen's), which TRL supports for
vision datasets only from transformers 5.18: a tiny model that must also fit the
system prompt and the environment's observation text learns the policy far slower.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

__all__ = ["ToolImageCollator", "fill_tool_images"]


def _strip_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_none(v) for v in value]
    return value


def _is_placeholder(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") == "image" and part.get("image") is None


def fill_tool_images(example: dict[str, Any]) -> dict[str, Any]:
    """Return the example with tool-turn placeholders filled and ``images`` cut to the others."""
    messages = _strip_none(example["messages"])
    images = list(example.get("images") or [])
    outside = sum(
        _is_placeholder(p) for m in messages if m["role"] != "tool" and isinstance(m.get("content"), list) for p in m["content"]
    )
    inside = sum(_is_placeholder(p) for m in messages if m["role"] == "tool" and isinstance(m.get("content"), list) for p in m["content"])
    if outside + inside != len(images):
        raise ValueError(f"SFT example has {outside + inside} image placeholders but {len(images)} images")
    tail = iter(images[outside:])
    for m in messages:
        if m["role"] == "tool" and isinstance(m.get("content"), list):
            m["content"] = [{"type": "image", "image": next(tail)} if _is_placeholder(p) else p for p in m["content"]]
    return {**example, "messages": messages, "images": images[:outside]}


def assistant_label_mask(input_ids: torch.Tensor, start: list[int], end: int) -> torch.Tensor:
    """True on the tokens of assistant turns: after each ``start`` sequence, up to and including ``end``."""
    mask = torch.zeros_like(input_ids, dtype=torch.bool)
    n = len(start)
    for b, row in enumerate(input_ids.tolist()):
        inside = False
        for i, tok in enumerate(row):
            if not inside and i >= n and row[i - n:i] == start:
                inside = True
            if inside:
                mask[b, i] = True
                if tok == end:
                    inside = False
    return mask


class _WithTools:
    """A processor whose ``apply_chat_template`` always renders ``tools``."""

    def __init__(self, processor: Any, tools: list[Any]):
        self._processor, self._tools = processor, tools

    def apply_chat_template(self, *args: Any, **kwargs: Any) -> Any:
        return self._processor.apply_chat_template(*args, tools=self._tools, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._processor(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._processor, name)


@dataclass
class ToolImageCollator(DataCollatorForVisionLanguageModeling):
    """TRL's vision-language collator, with images in tool turns, tool schemas, and an optional assistant-only loss."""

    assistant_only: bool = False
    tools: list[Any] | None = None

    def __post_init__(self) -> None:
        if self.tools:
            self.processor = _WithTools(self.processor, self.tools)

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = super().torch_call([fill_tool_images(dict(ex)) for ex in examples])
        if self.assistant_only:
            tok = self.processor.tokenizer
            start = tok.encode("<|im_start|>assistant\n", add_special_tokens=False)
            keep = assistant_label_mask(batch["input_ids"], start, tok.convert_tokens_to_ids("<|im_end|>"))
            batch["labels"] = batch["labels"].masked_fill(~keep, -100)
        return batch
