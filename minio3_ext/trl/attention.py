"""The attention kernel the TRL recipes load the model with."""

from __future__ import annotations

import sys

__all__ = ["attention_implementation"]


def attention_implementation(requested: str | None) -> str | None:
    """``requested``, except that ``flash_attention_2`` falls back to ``sdpa`` where transformers
    cannot use flash-attn (not installed, or no CUDA); one line on stderr says so."""
    from transformers.utils import is_flash_attn_2_available

    if requested == "flash_attention_2" and not is_flash_attn_2_available():
        print("minio3: flash-attn is not usable here (install it on a CUDA machine: pip install flash-attn "
              "--no-build-isolation); loading the model with attn_implementation=sdpa", file=sys.stderr)
        return "sdpa"
    return requested
