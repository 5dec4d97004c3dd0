"""The TRL internals MaskedGRPOTrainer relies on are present with the shapes it was written against.

One place fails when TRL changes: ``minio3_ext/trl/compat.py`` lists every seam; this test
checks presence and signature, and the return shapes on a real (tiny, text-only) trainer.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

import pytest
import torch
import trl
from datasets import Dataset
from packaging.specifiers import SpecifierSet
from trl import GRPOTrainer

from minio3_ext.trl import MaskedGRPOConfig, MaskedGRPOTrainer, compat

ROOT = Path(__file__).resolve().parents[2]


def test_every_seam_is_present_with_its_signature():
    assert compat.check_seams() == []


def test_a_changed_seam_is_reported(monkeypatch):
    def _generate(self, prompts, extra):  # a TRL release that grew a parameter
        return None

    monkeypatch.setattr(GRPOTrainer, "_generate", _generate)
    assert compat.check_seams() == [
        "trl.trainer.grpo_trainer.GRPOTrainer._generate: parameters ('prompts', 'extra'), expected ('prompts',)"]
    with pytest.raises(compat.UpstreamChanged, match=r"GRPOTrainer._generate returned a 7-tuple.*compat.py"):
        compat.unpack(tuple(range(7)), compat.GENERATE_FIELDS, "GRPOTrainer._generate")


def test_overrides_keep_trls_parameters():
    for name in ("_generate", "_calculate_rewards", "_generate_and_score_completions", "_tool_call_loop",
                 "_generate_single_turn", "_compute_loss", "_prepare_inputs"):
        ours = list(inspect.signature(getattr(MaskedGRPOTrainer, name)).parameters)
        theirs = list(inspect.signature(getattr(GRPOTrainer, name)).parameters)
        assert ours == theirs, name


def test_the_trl_pin_is_what_the_contract_covers():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = [d for d in project["optional-dependencies"]["trl"] if re.match(r"trl\b", d)]
    assert pins == [f"trl{compat.TRL_SUPPORTED}"]
    assert trl.__version__ in SpecifierSet(compat.TRL_SUPPORTED)


_LIVE: dict = {}  # the completions TRL's tool loop received, while the test below runs it
_SEEN: list = []  # what compat.calling_message found at each call


def lookup(key: str) -> str:
    """Look a word up.

    Args:
        key: The word.

    Returns:
        Its definition.
    """
    if "completions" in _LIVE:
        messages = _LIVE["completions"][0]
        i = compat.calling_message(messages)
        _SEEN.append((key, i, messages[i]["tool_calls"] if i >= 0 else None))
    return f"{key}: a word"


@pytest.mark.slow
def test_return_shapes_on_a_real_trainer(tiny_qwen_dir, tmp_path, monkeypatch):
    from minio3_ext.testing import load_tiny_qwen

    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    model, processor = load_tiny_qwen(tiny_qwen_dir)
    tok = processor.tokenizer
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    args = MaskedGRPOConfig(output_dir=str(tmp_path), max_turns=2, num_generations=2, per_device_train_batch_size=2,
                            max_completion_length=64, report_to=[], use_cpu=True, save_strategy="no")
    trainer = MaskedGRPOTrainer(model, reward_funcs=[lambda completions, **k: [1.0] * len(completions)], args=args,
                                processing_class=processor, tools=[lookup],
                                train_dataset=Dataset.from_list([{"prompt": [{"role": "user", "content": "Hi."}]}]))
    # attributes read without a batch
    for name in ("_tokenizer", "_metrics", "environments", "eos_token_ids", "max_tool_calling_iterations",
                 "use_vllm", "vllm_mode", "vllm_tensor_parallel_size", "loss_type", "aux_loss_enabled",
                 "_entropy_bonus_enabled", "num_generations", "tools", "generation_config",
                 "vllm_importance_sampling_mode", "vllm_importance_sampling_correction", "reward_func_names"):
        assert hasattr(trainer, name), name
    assert set(trainer._metrics) == {"train", "eval"}

    call = '<tool_call>\n{"name": "lookup", "arguments": {"key": "a"}}\n</tool_call>'
    script = iter([[call, "<answer>x</answer>"], ["<answer>y</answer>"]])
    turns = []

    def single_turn(prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        turns.append(len(prompt_ids))
        return [tok(t, add_special_tokens=False)["input_ids"] + [im_end] for t in next(script)], None

    trainer._generate_single_turn = single_turn
    inputs = [{"prompt": [{"role": "user", "content": "Hi."}]}] * 2
    loops = []
    tool_loop = GRPOTrainer._tool_call_loop

    def recording_loop(self, *a):
        _LIVE["completions"] = a[3]
        loops.append(tool_loop(self, *a))
        return loops[-1]

    monkeypatch.setattr(GRPOTrainer, "_tool_call_loop", recording_loop)
    trainer.model.train()
    out = trainer._generate_and_score_completions(inputs)
    _LIVE.clear()
    assert turns == [2, 1]  # the first turn for both rollouts, then one tool iteration
    # compat.calling_message: while a tool runs, the rollout's live list (the `completions` TRL's
    # loop received, extended in place) ends with the assistant message whose call TRL is making
    assert [(key, i) for key, i, _ in _SEEN] == [("a", 0)]
    assert _SEEN[0][2] == [{"type": "function", "function": {"name": "lookup", "arguments": {"key": "a"}}}]
    assert [m["role"] for m in loops[0][1][0]] == ["assistant", "tool", "assistant"]
    assert len(loops) == 1 and len(loops[0]) == len(compat.TOOL_LOOP_FIELDS)
    assert isinstance(loops[0][4], int) and isinstance(loops[0][5], int)  # call and failure counts
    assert set(compat.SCORED_KEYS) <= set(out)
    assert out["advantages"].shape == (2,) and out["num_items_in_batch"].ndim == 0
    assert "tool_mask" in out and out["tool_mask"].shape == out["completion_ids"].shape
    # _generate's 8-tuple and _calculate_rewards' (rows, functions) matrix
    script = iter([["<answer>x</answer>", "<answer>y</answer>"]])
    generated = GRPOTrainer._generate(trainer, [i["prompt"] for i in inputs])
    assert len(generated) == len(compat.GENERATE_FIELDS)
    prompt_ids, completion_ids, tool_mask, completions = generated[:4]
    assert len(prompt_ids) == len(completion_ids) == len(tool_mask) == len(completions) == 2
    rewards = GRPOTrainer._calculate_rewards(trainer, inputs, [i["prompt"] for i in inputs], completions,
                                             completion_ids)
    assert isinstance(rewards, torch.Tensor) and rewards.shape == (2, 1)
