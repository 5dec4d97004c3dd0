"""The offline tiny Qwen2.5-VL: tokenizer, processor, model, save/reload, chat template, TRL/verl hooks."""

from __future__ import annotations

import json
import unicodedata

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from transformers import AutoProcessor, AutoTokenizer, Qwen2_5_VLForConditionalGeneration

from minio3_ext.testing import build_model, build_processor, build_tokenizer, load_tiny_qwen, save_tiny_qwen
from minio3_ext.testing.tiny_qwen import (
    CHAT_TEMPLATE,
    DEFAULT_MAX_PIXELS,
    SPECIAL_TOKENS,
    TEXT_TOKENS,
)

ZOOM_TOOL = {
    "type": "function",
    "function": {
        "name": "zoom",
        "description": "Crop a region of an image.",
        "parameters": {
            "type": "object",
            "properties": {"bbox_2d": {"type": "array", "items": {"type": "number"}}, "source": {"type": "string"}},
            "required": ["bbox_2d"],
        },
    },
}
ZOOM_CALL = {"type": "function", "function": {"name": "zoom", "arguments": {"bbox_2d": [0.1, 0.2, 0.5, 0.6], "source": "original_image"}}}


def _tool_conversation() -> list[dict]:
    return [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is written on the sign?"}]},
        {"role": "assistant", "content": "<think>Too small.</think>", "tool_calls": [ZOOM_CALL]},
        {"role": "tool", "name": "zoom", "content": [{"type": "text", "text": "Observation 1:"}, {"type": "image"}]},
    ]


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="module")
def loaded(tiny_qwen_dir):
    return load_tiny_qwen(tiny_qwen_dir)


def test_tokenizer_has_qwen_special_tokens_as_single_ids(tokenizer):
    assert 800 <= len(tokenizer) <= 1100
    ids = [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS + TEXT_TOKENS]
    assert len(set(ids)) == len(ids) and tokenizer.unk_token_id not in ids
    for token, token_id in zip(SPECIAL_TOKENS + TEXT_TOKENS, ids):
        assert tokenizer(token, add_special_tokens=False)["input_ids"] == [token_id], token
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    text = "<|im_start|>assistant\n<think>hm</think><tool_call>x</tool_call><|im_end|>"
    assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == (
        "assistant\n<think>hm</think><tool_call>x</tool_call>"
    )


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40))
def test_byte_level_bpe_round_trips_any_text(text):
    tokenizer = build_tokenizer()  # cached BPE training: cheap per example
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == unicodedata.normalize("NFC", text)


def test_build_is_deterministic_and_seeded(tokenizer):
    assert build_tokenizer().get_vocab() == tokenizer.get_vocab()
    a, b, c = (build_model(tokenizer, seed=s).state_dict() for s in (0, 0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_model_is_tiny_and_its_token_ids_match_the_tokenizer(tokenizer):
    model = build_model(tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    assert 100_000 <= n_params < 1_000_000, n_params
    cfg = model.config
    assert cfg.image_token_id == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.video_token_id == tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert cfg.vision_start_token_id == tokenizer.convert_tokens_to_ids("<|vision_start|>")
    assert cfg.vision_end_token_id == tokenizer.convert_tokens_to_ids("<|vision_end|>")
    assert cfg.text_config.vocab_size >= len(tokenizer)
    assert tokenizer.eos_token_id in model.generation_config.eos_token_id
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    assert cfg.vision_config.patch_size == 14 and cfg.vision_config.spatial_merge_size == 2


def test_processor_caps_pixels_and_expands_image_tokens(tokenizer):
    processor = build_processor(tokenizer, max_pixels=64 * 28 * 28)
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}], add_generation_prompt=True
    )
    inputs = processor(text=[text], images=[Image.new("RGB", (4000, 3000), "white")], return_tensors="pt")
    n_tokens = int(inputs["image_grid_thw"].prod()) // 4
    assert n_tokens <= 64
    assert int((inputs["input_ids"] == processor.image_token_id).sum()) == n_tokens
    with pytest.raises(ValueError, match="min_pixels"):
        build_processor(tokenizer, min_pixels=10, max_pixels=5)


def test_generate_on_a_prompt_with_an_image(loaded, synthetic_rows):
    model, processor = loaded
    row = synthetic_rows[0]
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": row["problem"].replace("<image>\n", "")}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_start|>assistant\n")
    inputs = processor(text=[text], images=[Image.open(row["images"][0])], return_tensors="pt")
    assert int(inputs["image_grid_thw"].prod()) // 4 <= DEFAULT_MAX_PIXELS // 784
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=8, min_new_tokens=8, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :]
    assert new.shape == (8,)
    assert int(new.max()) < model.config.text_config.vocab_size
    assert isinstance(processor.decode(new), str)


def test_save_reload_gives_identical_logits(tmp_path, loaded):
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, seed=3)
    processor = build_processor(tokenizer)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    reloaded = Qwen2_5_VLForConditionalGeneration.from_pretrained(tmp_path, local_files_only=True).eval()
    reprocessor = AutoProcessor.from_pretrained(tmp_path, local_files_only=True)
    assert AutoTokenizer.from_pretrained(tmp_path, local_files_only=True).get_vocab() == tokenizer.get_vocab()
    assert reprocessor.chat_template == CHAT_TEMPLATE == reprocessor.tokenizer.chat_template
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour?"}]}]
    image = Image.new("RGB", (200, 150), (200, 30, 30))
    texts = [p.apply_chat_template(messages, add_generation_prompt=True) for p in (processor, reprocessor)]
    assert texts[0] == texts[1]
    inputs = [p(text=[texts[0]], images=[image], return_tensors="pt") for p in (processor, reprocessor)]
    assert torch.equal(inputs[0]["input_ids"], inputs[1]["input_ids"])
    assert torch.equal(inputs[0]["pixel_values"], inputs[1]["pixel_values"])
    with torch.no_grad():
        logits = [m(**x).logits for m, x in ((model, inputs[0]), (reloaded, inputs[1]))]
    assert torch.equal(logits[0], logits[1])
    # A different seed is a different model: the comparison above can fail.
    with torch.no_grad():
        assert not torch.equal(loaded[0](**inputs[0]).logits, logits[0])


def test_save_tiny_qwen_writes_a_from_pretrained_folder(tmp_path):
    path = save_tiny_qwen(tmp_path / "m", seed=0, max_pixels=32 * 784)
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json"} <= {p.name for p in path.iterdir()}
    model, processor = load_tiny_qwen(path)
    assert processor.image_processor.size["longest_edge"] == 32 * 784
    assert json.loads((path / "config.json").read_text())["model_type"] == "qwen2_5_vl"


def test_chat_template_renders_tools_tool_calls_and_tool_images(tokenizer):
    text = tokenizer.apply_chat_template(_tool_conversation(), tools=[ZOOM_TOOL], add_generation_prompt=True, tokenize=False)
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.\n\n# Tools")
    assert "<tools>\n" + json.dumps(ZOOM_TOOL) + "\n</tools>" in text
    assert '<tool_call>\n{"name": "zoom", "arguments": {"bbox_2d": [0.1, 0.2, 0.5, 0.6], "source": "original_image"}}\n</tool_call><|im_end|>' in text
    assert "<|im_start|>user\n<tool_response>\nObservation 1:<|vision_start|><|image_pad|><|vision_end|>\n</tool_response><|im_end|>" in text
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 2
    assert text.endswith("<|im_start|>assistant\n")
    no_tools = tokenizer.apply_chat_template(_tool_conversation()[:2], tokenize=False)
    assert "<tools>" not in no_tools and no_tools.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>")


def test_processor_tokenizes_a_tool_conversation_with_two_images(loaded):
    model, processor = loaded
    images = [Image.new("RGB", (640, 480), "blue"), Image.new("RGB", (160, 120), "red")]
    text = processor.apply_chat_template(_tool_conversation(), tools=[ZOOM_TOOL], add_generation_prompt=True)
    inputs = processor(text=[text], images=images, return_tensors="pt")
    assert inputs["image_grid_thw"].shape == (2, 3)
    assert int((inputs["input_ids"] == processor.image_token_id).sum()) == int(inputs["image_grid_thw"].prod(-1).sum()) // 4
    with torch.no_grad():
        assert model(**inputs).logits.shape[:2] == inputs["input_ids"].shape


def test_trl_recognises_the_template_and_parses_tool_calls(loaded):
    from trl.chat_template_utils import (
        add_response_schema,
        get_training_chat_template,
        is_chat_template_prefix_preserving,
        parse_response,
        qwen3_vl_chat_template,
        qwen3_vl_training_chat_template,
        supports_tool_calling,
    )

    _, processor = loaded
    assert CHAT_TEMPLATE == qwen3_vl_chat_template
    assert supports_tool_calling(processor) and supports_tool_calling(processor.tokenizer)
    assert is_chat_template_prefix_preserving(processor)
    assert get_training_chat_template(processor) == qwen3_vl_training_chat_template
    tokenizer = add_response_schema(processor).tokenizer
    completion = (
        '<think>zoom in</think>\n<tool_call>\n{"name": "zoom", "arguments": {"bbox_2d": [0.1, 0.2, 0.5, 0.6], '
        '"source": "original_image"}}\n</tool_call><|im_end|>'
    )
    parsed = parse_response(tokenizer, tokenizer(completion)["input_ids"])
    assert parsed["tool_calls"] == [ZOOM_CALL]
    malformed = parse_response(tokenizer, tokenizer('<tool_call>{"name": </tool_call><|im_end|>')["input_ids"])
    assert malformed == {"role": "assistant", "content": '<tool_call>{"name": </tool_call>'}


def test_verl_loads_the_folder_and_binds_mrope_positions(tiny_qwen_dir, loaded):
    from verl.utils.tokenizer import hf_processor, hf_tokenizer

    model, _ = loaded
    processor = hf_processor(str(tiny_qwen_dir))
    tokenizer = hf_tokenizer(str(tiny_qwen_dir))
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    assert tokenizer.pad_token_id == processor.tokenizer.pad_token_id
    text = processor.apply_chat_template(_tool_conversation()[:2], tools=[ZOOM_TOOL], add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[Image.new("RGB", (280, 224))], return_tensors="pt")
    positions, _ = processor.get_rope_index(
        input_ids=inputs["input_ids"],
        mm_token_type_ids=inputs["mm_token_type_ids"],
        image_grid_thw=inputs["image_grid_thw"],
        attention_mask=inputs["attention_mask"],
    )
    expected, _ = model.model.get_rope_index(
        input_ids=inputs["input_ids"],
        mm_token_type_ids=inputs["mm_token_type_ids"],
        image_grid_thw=inputs["image_grid_thw"],
        attention_mask=inputs["attention_mask"],
    )
    assert positions.shape == (3, 1, inputs["input_ids"].shape[1])
    assert torch.equal(positions, expected)
    image_rows = positions[1, 0, (inputs["input_ids"][0] == processor.image_token_id)]
    assert len(set(image_rows.tolist())) == int(inputs["image_grid_thw"][0, 1]) // 2  # 2-D positions, not 1-D
