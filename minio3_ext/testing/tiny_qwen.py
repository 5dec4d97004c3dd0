"""An offline, random-weight, tiny Qwen2.5-VL for tests and the CPU demo.

Nothing is downloaded: the byte-level BPE tokenizer is trained on a built-in corpus
with the ``tokenizers`` library (Qwen2's pre-tokenizer, Qwen special tokens, ~1k
vocabulary), the processor is a real ``Qwen2_5_VLProcessor`` (patch 14, merge 2), and
the model is a ``Qwen2_5_VLForConditionalGeneration`` with a few hundred thousand
random parameters.

    from minio3_ext.testing import save_tiny_qwen, load_tiny_qwen

    path = save_tiny_qwen("/tmp/tiny-qwen")           # model + tokenizer + processor
    model, processor = load_tiny_qwen(path)           # from_pretrained(local_files_only=True)
    # or by any host library: AutoProcessor.from_pretrained(path), verl/TRL model paths

The chat template is the tool-capable Qwen-VL template TRL ships as
``trl/chat_templates/qwen3_vl.jinja`` (copied verbatim into ``qwen_vl_tools.jinja``):
images render as ``<|vision_start|><|image_pad|><|vision_end|>``, ``tools`` become a
Hermes ``<tools>`` block in the system turn, assistant ``tool_calls`` become
``<tool_call>{"name": ..., "arguments": ...}</tool_call>``, and ``tool`` messages
(text and images) become ``<tool_response>`` blocks in a user turn. Because the text
is byte-identical to TRL's, ``trl.chat_template_utils.add_response_schema`` recognises
it and TRL's GRPO tool loop parses tool calls out of the box; the template is
prefix-preserving, so TRL keeps it for multi-turn training.
"""

from __future__ import annotations

import functools
import json
import os
from importlib import resources
from pathlib import Path
from typing import Union

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import (
    AddedToken,
    AutoProcessor,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2Tokenizer,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
)

__all__ = [
    "CHAT_TEMPLATE",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_PIXELS",
    "SPECIAL_TOKENS",
    "TEXT_TOKENS",
    "build_model",
    "build_processor",
    "build_tokenizer",
    "load_tiny_qwen",
    "save_tiny_qwen",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Special tokens, in Qwen2.5-VL's order (skipped by ``decode(skip_special_tokens=True)``).
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
#: Added, non-special tokens: kept in decoded text (TRL parses tool calls from it).
TEXT_TOKENS = (
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    "<grounding>",
    "</grounding>",
)
CHAT_TEMPLATE = resources.files(__package__).joinpath("qwen_vl_tools.jinja").read_text(encoding="utf-8")

PATCH_SIZE = 14
MERGE_SIZE = 2
TEMPORAL_PATCH_SIZE = 2
_PIXELS_PER_TOKEN = (PATCH_SIZE * MERGE_SIZE) ** 2
DEFAULT_MIN_PIXELS = 4 * _PIXELS_PER_TOKEN
#: At most 256 merged vision tokens per image: keeps CPU prefill cheap.
DEFAULT_MAX_PIXELS = 256 * _PIXELS_PER_TOKEN
_BPE_VOCAB_SIZE = 1000 - len(SPECIAL_TOKENS) - len(TEXT_TOKENS)
_PRETOKENIZE_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

_CORPUS = [
    "You are a helpful assistant.",
    "What character is written inside the small red triangle? Answer with the single character.",
    "What colour is the small circle in the top left corner of the image?",
    "Which object is closest to the camera, and what is written on the sign?",
    "The image shows a street with shops, cars, trees, people and a blue sky.",
    "I need to zoom in on the region around the target to read the text clearly.",
    "<think>The target is too small to read. I will zoom in on the lower right part of the image.</think>",
    '<grounding>{"bbox_2d": [0.25, 0.5, 0.75, 0.875], "source": "original_image"}</grounding>',
    '<grounding>{"bbox_2d": [0.1, 0.2, 0.3, 0.4], "source": "observation_1"}</grounding>',
    "<answer>A</answer> <answer>B</answer> <answer>7</answer> <answer>yes</answer> <answer>no</answer>",
    "After the above Action 0, here is the zoomed-in image (Observation 1): <image>.",
    "Continue your reasoning process inside <think> and </think>. If needed, you can continue to zoom in "
    "on the original image or any of the observations, by outputting <grounding> and </grounding> as before. "
    "If the final answer is confirmed, put your final answer inside <answer> and </answer>.",
    "The coordinates are relative: the image width and height are 1.0. The source is original_image or observation_i.",
    "The zoom failed: the box is outside the image or has zero area. Please adjust the bounding box and try again.",
    '<tool_call>\n{"name": "zoom", "arguments": {"bbox_2d": [0.1, 0.2, 0.35, 0.6], "source": "original_image"}}\n</tool_call>',
    '<tool_call>\n{"name": "rotate", "arguments": {"angle": 90, "source": "observation_2"}}\n</tool_call>',
    "<tool_response>\nHere is the zoomed-in image.\n</tool_response>",
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with "
    "function signatures within <tools></tools> XML tags:\n<tools>\n</tools>\n\nFor each function call, return a "
    'json object with function name and arguments within <tool_call></tool_call> XML tags:\n{"name": '
    "<function-name>, \"arguments\": <args-json-object>}",
    '{"type": "function", "function": {"name": "zoom", "description": "Crop a region of an image.", '
    '"parameters": {"type": "object", "properties": {"bbox_2d": {"type": "array", "items": {"type": "number"}}, '
    '"source": {"type": "string"}}, "required": ["bbox_2d"]}}}',
    "0 1 2 3 4 5 6 7 8 9 10 12 25 50 75 100 0.0 0.05 0.125 0.25 0.333 0.5 0.667 0.75 0.9 1.0",
    "A B C D E F G H I J K L M N O P Q R S T U V W X Y Z a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "red green blue yellow purple orange cyan pink black white grey brown circle square triangle diamond",
    "left right top bottom centre center middle upper lower corner edge near far large small tiny",
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs!",
    "def main(): return {'key': [1, 2, 3], \"value\": None, 'ok': True}  # (a + b) * c / d - e % f",
]


def _training_corpus() -> list[str]:
    return [line for line in _CORPUS for _ in range(3)]


@functools.lru_cache(maxsize=1)
def _trained_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train the byte-level BPE once per process; returns (vocab, merges)."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=_BPE_VOCAB_SIZE,
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_corpus(), trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return dict(model["vocab"]), merges


def build_tokenizer() -> Qwen2Tokenizer:
    """A ~1k-token byte-level BPE ``Qwen2Tokenizer`` with Qwen's special tokens and a tool-capable chat template.

    ``eos_token`` is ``<|im_end|>`` and ``pad_token`` is ``<|endoftext|>``, as in Qwen2.5-VL-Instruct.
    """
    bpe_vocab, merges = _trained_bpe()
    vocab = dict(bpe_vocab)
    for token in SPECIAL_TOKENS + TEXT_TOKENS:  # fixed ids right after the BPE vocabulary, in Qwen's order
        vocab[token] = len(vocab)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=list(merges),
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
        model_max_length=32768,
    )
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS], special_tokens=True)
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in TEXT_TOKENS])
    return tokenizer


def build_processor(
    tokenizer: Qwen2Tokenizer | None = None,
    *,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Qwen2_5_VLProcessor:
    """A ``Qwen2_5_VLProcessor`` (patch 14, merge 2) around ``tokenizer`` (built if ``None``)."""
    if not 0 < min_pixels <= max_pixels:
        raise ValueError(f"build_processor: need 0 < min_pixels <= max_pixels, got {min_pixels}, {max_pixels}")
    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    vision = {
        "patch_size": PATCH_SIZE,
        "merge_size": MERGE_SIZE,
        "temporal_patch_size": TEMPORAL_PATCH_SIZE,
        "min_pixels": min_pixels,
        "max_pixels": max_pixels,
    }
    return Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**vision),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(**vision),
        chat_template=CHAT_TEMPLATE,
    )


def build_model(tokenizer: Qwen2Tokenizer, *, seed: int = 0, head_dim: int = 16) -> Qwen2_5_VLForConditionalGeneration:
    """A random-weight Qwen2.5-VL whose special-token ids match ``tokenizer`` (deterministic by ``seed``).

    ``head_dim`` is the text attention head size (a multiple of 16; default 16: 4 heads of
    a 64-wide model). vLLM's CPU attention needs at least 64: ``head_dim=64`` gives a
    128-wide text model with 2 heads (``minio3 smoke verl``)."""
    import torch

    if head_dim < 16 or head_dim % 16:
        raise ValueError(f"head_dim must be a positive multiple of 16, got {head_dim!r}")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vocab_size = -(-len(tokenizer) // 64) * 64  # round up, as real checkpoints pad their embeddings
    text_hidden = max(64, 2 * head_dim)
    k = head_dim // 16  # mrope sections (temporal, height, width) add up to head_dim / 2
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": text_hidden,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": text_hidden // head_dim,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2 * k, 3 * k, 3 * k]},
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "tie_word_embeddings": False,
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "patch_size": PATCH_SIZE,
            "spatial_merge_size": MERGE_SIZE,
            "temporal_patch_size": TEMPORAL_PATCH_SIZE,
            "window_size": 112,
            "fullatt_block_indexes": [1],
            "out_hidden_size": text_hidden,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.bos_token_id = ids["<|endoftext|>"]
    return model.eval()


def save_tiny_qwen(
    out_dir: PathLike,
    *,
    seed: int = 0,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    head_dim: int = 16,
) -> Path:
    """Build and ``save_pretrained`` model, tokenizer and processor into ``out_dir``; returns the path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    processor = build_processor(min_pixels=min_pixels, max_pixels=max_pixels)
    model = build_model(processor.tokenizer, seed=seed, head_dim=head_dim)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def load_tiny_qwen(path: PathLike) -> tuple[Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor]:
    """Load a folder written by :func:`save_tiny_qwen` with ``local_files_only=True``."""
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(path, local_files_only=True)
    processor = AutoProcessor.from_pretrained(path, local_files_only=True)
    return model.eval(), processor
