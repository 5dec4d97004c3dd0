"""Freeze the vision tower and projector in verl's SFT trainer (the paper's cold start:
only the language model is trained).

verl 0.9.1's FSDP engine has no freeze switch (``actor.freeze_vision_tower`` is declared
but never read, and the SFT trainer has none). What it does execute is
``model.external_lib``: :class:`verl.workers.config.HFModelConfig` imports that module
before the model is built. Importing this module registers, through transformers' own
``AutoModelForImageTextToText.register``, a Qwen2.5-VL class whose ``from_pretrained``
sets ``requires_grad=False`` on ``model.visual`` (the ViT blocks and the patch merger,
i.e. the projector). The engine then loads the model with
``AutoModelForImageTextToText.from_pretrained`` (verl's ``get_hf_auto_model_class``),
and the optimizer never updates parameters that get no gradient::

    model.external_lib=minio3_ext.verl.freeze_vision
    engine.strategy=fsdp2   # FSDP1 flat parameters cannot mix frozen and trained weights

The class keeps the stock class name, so the HF checkpoint verl exports
(``global_step_N/huggingface``) names the stock architecture and loads anywhere.
Only Qwen2.5-VL is covered (the paper's model); other configs load unchanged, which
:func:`frozen_parameter_names` makes visible.
"""

from __future__ import annotations

from transformers import AutoModelForImageTextToText, Qwen2_5_VLConfig
from transformers import Qwen2_5_VLForConditionalGeneration as _Stock

__all__ = ["Qwen2_5_VLForConditionalGeneration", "freeze_vision", "frozen_parameter_names", "VISION_PREFIX"]

#: Parameter-name prefix of the vision tower + merger in transformers 5's Qwen2.5-VL.
VISION_PREFIX = "model.visual."


def freeze_vision(model) -> int:
    """Set ``requires_grad=False`` on every vision-tower/merger parameter; returns how many."""
    n = 0
    for name, param in model.named_parameters():
        if name.startswith(VISION_PREFIX):
            param.requires_grad_(False)
            n += 1
    if not n:
        raise ValueError(f"freeze_vision: {type(model).__name__} has no parameters under {VISION_PREFIX!r}")
    return n


def frozen_parameter_names(model) -> list[str]:
    return [name for name, p in model.named_parameters() if not p.requires_grad]


class Qwen2_5_VLForConditionalGeneration(_Stock):
    """Stock Qwen2.5-VL whose vision tower and merger come out of ``from_pretrained`` frozen."""

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        model = super().from_pretrained(*args, **kwargs)
        freeze_vision(model)
        return model


AutoModelForImageTextToText.register(Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, exist_ok=True)
