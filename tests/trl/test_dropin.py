"""MaskedGRPOTrainer as a drop-in GRPOTrainer, in the spirit of TRL's tests/test_grpo_trainer.py (issue 12).

Items: every loss_type exact with masked rows (6); args=None, default no-tool runs train,
mask_overturn=False identical to GRPOTrainer (8); eval unmasked, IS metrics over live rows
(9); tool errors counted where they happen (10). Text-only runs on the tiny Qwen2.5-VL;
generation is either the real model or a scripted ``_generate_single_turn``.
"""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from minio3_ext.testing import load_tiny_qwen
from minio3_ext.trl import MaskedGRPOConfig, MaskedGRPOTrainer
from minio3_ext.trl.compat import KNOWN_LOSSES

pytestmark = pytest.mark.slow

CALL = '<tool_call>\n{"name": "lookup", "arguments": {"key": "zoom"}}\n</tool_call>'


def lookup(key: str) -> str:
    """Look a word up in the dictionary.

    Args:
        key: The word to look up.

    Returns:
        Its definition.
    """
    return f"{key}: a word"


def says_yes(completions, **kwargs):
    return [1.0 if "<answer>yes</answer>" in str(c) else 0.0 for c in completions]


def mentions_zoom(completions, **kwargs):
    return [0.5 if "zoom" in str(c) else 0.0 for c in completions]


def distinct_chars(completions, **kwargs):
    """Varies across random-model samples, so a run without answers still has a learning signal."""
    return [len(set(str(c))) / 10 for c in completions]


def _prompts(*texts):
    return Dataset.from_list([{"prompt": [{"role": "user", "content": t}]} for t in texts])


def _args(cls, tmp_path, **kw):
    base = dict(output_dir=str(tmp_path / cls.__name__), num_generations=3, per_device_train_batch_size=3,
                max_steps=1, max_completion_length=64, report_to=[], use_cpu=True, save_strategy="no",
                logging_steps=1, learning_rate=1e-2, seed=0)
    return cls(**{**base, **kw})


def _scripted(trainer, turns):
    tok = trainer.processing_class.tokenizer
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    script = iter(turns)
    trainer._generate_single_turn = lambda ids, *a, **k: (
        [tok(t, add_special_tokens=False)["input_ids"] + [im_end] for t in next(script)], None)


@pytest.fixture
def silence(monkeypatch):
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")


# -- item 6: every loss_type against a live-rows-only reference ------------------------------------
def test_every_loss_type_matches_a_live_rows_only_reference(tiny_qwen_dir, tmp_path, silence):
    """Row 1 is over-turn (masked). For each loss_type, the masked trainer's loss on the full batch equals
    stock GRPOTrainer's ``_compute_loss`` on the same batch with row 1 removed."""
    results = {}

    class Probe(MaskedGRPOTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if not results:
                rows = inputs["completion_ids"].shape[0]
                live = (inputs["completion_mask"] * inputs["tool_mask"]).sum(dim=1) > 0
                assert 0 < int(live.sum()) < rows
                live_inputs = {k: v[live] if isinstance(v, torch.Tensor) and v.ndim and v.shape[0] == rows else v
                               for k, v in inputs.items() if k != "minio3_row_scale"}
                kept = self.loss_type
                with torch.no_grad():
                    for loss_type in sorted(KNOWN_LOSSES):
                        self.loss_type = loss_type
                        results[loss_type] = (self._compute_loss(model, inputs).item(),
                                              GRPOTrainer._compute_loss(self, model, live_inputs).item())
                self.loss_type = kept
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    model, processor = load_tiny_qwen(tiny_qwen_dir)
    trainer = Probe(model, reward_funcs=[says_yes], args=_args(MaskedGRPOConfig, tmp_path, max_turns=2),
                    processing_class=processor, tools=[lookup], train_dataset=_prompts("Define zoom."))
    _scripted(trainer, [[CALL, CALL, "<answer>no</answer>"], ["<answer>yes</answer>", CALL]])
    trainer.train()
    assert set(results) == KNOWN_LOSSES
    for loss_type, (masked, reference) in results.items():
        assert masked == pytest.approx(reference, rel=1e-5, abs=1e-7), loss_type
    assert any(abs(ref) > 1e-4 for _, ref in results.values())


def test_config_refuses_what_it_cannot_make_exact(tmp_path):
    with pytest.raises(ValueError, match="loss_type='dapo'"):
        MaskedGRPOConfig(output_dir=str(tmp_path), loss_type="grpo", entropy_coef=0.01, use_cpu=True)
    MaskedGRPOConfig(output_dir=str(tmp_path), loss_type="dapo", entropy_coef=0.01, use_cpu=True)
    MaskedGRPOConfig(output_dir=str(tmp_path), loss_type="grpo", entropy_coef=0.01, mask_overturn=False, use_cpu=True)


# -- item 8: drop-in ----------------------------------------------------------------------------------
def test_args_none_builds_a_default_config(tiny_qwen_dir, silence, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # GRPOConfig's defaults (bf16) need a GPU; this CPU test stands one in for the config check only
    monkeypatch.setattr("transformers.training_args.is_torch_bf16_gpu_available", lambda: True)
    model, processor = load_tiny_qwen(tiny_qwen_dir)
    trainer = MaskedGRPOTrainer(model, reward_funcs=[says_yes], processing_class=processor,
                                train_dataset=_prompts("Say yes."))
    assert isinstance(trainer.args, MaskedGRPOConfig) and trainer.args.output_dir.endswith("-GRPO")
    stock = GRPOTrainer(model, reward_funcs=[says_yes], processing_class=processor, train_dataset=_prompts("Say yes."))
    assert trainer.args.output_dir == stock.args.output_dir
    # no turn limit set: TRL's default, no tool-round limit (not 5 rounds behind the user's back)
    assert trainer.args.mask_overturn and trainer.args.max_turns is None
    assert trainer.max_tool_calling_iterations == stock.max_tool_calling_iterations


STOCK_SCRIPT = """\
from trl import GRPOConfig, GRPOTrainer

args = GRPOConfig(output_dir=out, num_generations=3, per_device_train_batch_size=3, max_steps=1, use_cpu=True,
                  max_completion_length=16, report_to=[], save_strategy="no", logging_steps=1, seed=0)
trainer = GRPOTrainer(model=model, reward_funcs=[says_yes], args=args, processing_class=processor,
                      tools=[lookup], train_dataset=dataset)
trainer.train()
"""


def test_swapping_the_trainer_is_the_readmes_one_changed_line(tiny_qwen_dir, tmp_path, silence):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (line,) = {m for m in __import__("re").findall(r"`(from minio3_ext\.trl import [^`]+)`", readme) if " as " in m}
    swapped = STOCK_SCRIPT.replace("from trl import GRPOConfig, GRPOTrainer", line)
    changed = [a for a, b in zip(STOCK_SCRIPT.splitlines(), swapped.splitlines()) if a != b]
    assert len(changed) == 1
    trainers = []
    for i, script in enumerate((STOCK_SCRIPT, swapped)):
        model, processor = load_tiny_qwen(tiny_qwen_dir)
        scope = {"model": model, "processor": processor, "says_yes": says_yes, "lookup": lookup,
                 "dataset": _prompts("Say yes."), "out": str(tmp_path / f"run{i}")}
        exec(compile(script, f"script{i}.py", "exec"), scope)
        trainers.append(scope["trainer"])
    stock, masked = trainers
    assert type(stock) is GRPOTrainer and type(masked) is MaskedGRPOTrainer
    assert masked.max_tool_calling_iterations == stock.max_tool_calling_iterations  # TRL's default: no limit
    assert masked.state.global_step == 1 and "minio3/masked_share" in masked.state.log_history[0]


def test_turn_limit_keeps_trls_meaning(tmp_path):
    default, stock = MaskedGRPOConfig(output_dir=str(tmp_path), use_cpu=True), GRPOConfig(output_dir=str(tmp_path), use_cpu=True)
    assert default.max_tool_calling_iterations == stock.max_tool_calling_iterations is None and default.max_turns is None
    # TRL's field, TRL's meaning: 3 tool rounds, so 4 assistant turns
    three = MaskedGRPOConfig(output_dir=str(tmp_path), max_tool_calling_iterations=3, use_cpu=True)
    assert (three.max_tool_calling_iterations, three.max_turns) == (3, 4)
    six = MaskedGRPOConfig(output_dir=str(tmp_path), max_turns=6, use_cpu=True)
    assert (six.max_tool_calling_iterations, six.max_turns) == (5, 6)
    agree = MaskedGRPOConfig(output_dir=str(tmp_path), max_turns=6, max_tool_calling_iterations=5, use_cpu=True)
    assert agree.max_turns == 6


def test_environment_budget_needs_a_turn_limit_on_the_trainer(run_scripted):
    from minio3_ext.trl import MaskedGRPOTrainer as Trainer

    with pytest.raises(ValueError, match=r"EpisodeConfig.max_turns=2 .* set MaskedGRPOConfig.max_turns=2"):
        run_scripted(Trainer, max_turns=None)


def test_reward_std_is_a_number_when_masking_leaves_one_live_row(tiny_qwen_dir, tmp_path, silence):
    """Rows 1 and 2 run into the turn limit (masked): one live row, whose spread is 0, not None."""
    model, processor = load_tiny_qwen(tiny_qwen_dir)
    trainer = MaskedGRPOTrainer(model, reward_funcs=[says_yes], args=_args(MaskedGRPOConfig, tmp_path, max_turns=2),
                                processing_class=processor, tools=[lookup], train_dataset=_prompts("Define zoom."))
    _scripted(trainer, [["<answer>yes</answer>", CALL, CALL], [CALL, CALL]])
    trainer.train()
    log = trainer.state.log_history[0]
    assert log["minio3/masked_share"] == pytest.approx(2 / 3) and log["reward"] == 1.0
    assert log["reward_std"] == 0.0 and log["rewards/says_yes/std"] == 0.0


def test_released_loss_is_not_rescaled_to_live_rows(tiny_qwen_dir, tmp_path, silence):
    """rescale_row_losses=False: the grpo loss is TRL's on the whole batch, masked rows counting as 0
    (the released variant's settings; with masked rows in the statistics the live advantages do not
    sum to 0, so the first-step loss is not 0)."""
    results = {}

    class Probe(MaskedGRPOTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if not results:
                with torch.no_grad():
                    results["ours"] = self._compute_loss(model, inputs).item()
                    results["trl"] = GRPOTrainer._compute_loss(self, model, inputs).item()
                    results["scale"] = inputs["minio3_row_scale"].item()
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    for rescale in (True, False):
        results.clear()
        model, processor = load_tiny_qwen(tiny_qwen_dir)
        trainer = Probe(model, reward_funcs=[says_yes], processing_class=processor, tools=[lookup],
                        args=_args(MaskedGRPOConfig, tmp_path, max_turns=2, loss_type="grpo",
                                   rescale_row_losses=rescale, include_masked_in_stats=True),
                        train_dataset=_prompts("Define zoom."))
        _scripted(trainer, [[CALL, CALL, "<answer>no</answer>"], ["<answer>yes</answer>", CALL]])
        trainer.train()
        assert results["scale"] == pytest.approx(3 / 2) and abs(results["trl"]) > 1e-6
        expected = results["trl"] * (results["scale"] if rescale else 1.0)
        assert results["ours"] == pytest.approx(expected, rel=1e-5), rescale


def test_defaults_without_tools_train_like_grpo_trainer(tiny_qwen_dir, tmp_path, silence):
    """Defaults, no tools, real sampling cut by max_completion_length: the run trains, and is GRPOTrainer's."""
    runs = {}
    for cls, config_cls in ((MaskedGRPOTrainer, MaskedGRPOConfig), (GRPOTrainer, GRPOConfig)):
        outputs = []

        class Recording(cls):
            def _generate_and_score_completions(self, inputs):
                outputs.append(super()._generate_and_score_completions(inputs))
                return outputs[-1]

        model, processor = load_tiny_qwen(tiny_qwen_dir)
        before = {k: v.detach().clone() for k, v in model.named_parameters()}
        trainer = Recording(model, reward_funcs=[says_yes, distinct_chars],
                            args=_args(config_cls, tmp_path, max_completion_length=8, reward_weights=[1.0, 2.0]),
                            processing_class=processor, train_dataset=_prompts("Say yes.", "Zoom in."))
        trainer.train()
        changed = [k for k, v in model.named_parameters() if not torch.equal(before[k], v.detach())]
        runs[cls.__name__] = (trainer, outputs[0], changed, {k: v.detach().clone() for k, v in model.named_parameters()})
    masked, stock = runs["MaskedGRPOTrainer"], runs["GRPOTrainer"]
    log = masked[0].state.log_history[0]
    assert log["completions/clipped_ratio"] == 1.0  # every completion hit max_completion_length
    assert log["minio3/masked_share"] == 0.0 and log["minio3/termination/context_limit"] == 1.0
    assert masked[2], "no parameter changed"
    assert log["loss"] != 0.0 or log["grad_norm"] > 0.0
    # and the numbers are stock GRPOTrainer's
    a, b = masked[1], stock[1]
    for key in b:
        if isinstance(b[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
    for name, value in stock[3].items():
        assert torch.equal(masked[3][name], value), name
    assert log["loss"] == stock[0].state.log_history[0]["loss"]


def test_plain_truncation_is_masked_only_when_asked(tiny_qwen_dir, tmp_path, silence):
    model, processor = load_tiny_qwen(tiny_qwen_dir)
    trainer = MaskedGRPOTrainer(model, reward_funcs=[distinct_chars], processing_class=processor,
                                args=_args(MaskedGRPOConfig, tmp_path, max_completion_length=8,
                                           mask_plain_truncation=True),
                                train_dataset=_prompts("Say yes."))
    trainer.train()
    log = trainer.state.log_history[0]
    assert log["minio3/termination/context_limit"] == 1.0 and log["minio3/masked_share"] == 1.0
    assert log["loss"] == 0.0


def test_masking_off_is_grpo_trainer_on_a_multi_reward_tool_run(tiny_qwen_dir, tmp_path, silence):
    turns = [[CALL, CALL, "<answer>no</answer>"], ["<answer>yes</answer>", CALL]]
    runs = []
    for cls, args in ((MaskedGRPOTrainer, _args(MaskedGRPOConfig, tmp_path, max_turns=2, mask_overturn=False,
                                                reward_weights=[1.0, 0.5])),
                      (GRPOTrainer, _args(GRPOConfig, tmp_path, max_tool_calling_iterations=1,
                                          reward_weights=[1.0, 0.5]))):
        outputs = []

        class Recording(cls):
            def _generate_and_score_completions(self, inputs):
                outputs.append(super()._generate_and_score_completions(inputs))
                return outputs[-1]

        model, processor = load_tiny_qwen(tiny_qwen_dir)
        trainer = Recording(model, reward_funcs=[says_yes, mentions_zoom], args=args, processing_class=processor,
                            tools=[lookup], train_dataset=_prompts("Define zoom."))
        _scripted(trainer, turns)
        trainer.train()
        runs.append((trainer, outputs[0], {k: v.detach().clone() for k, v in model.named_parameters()}))
    (masked, a, pa), (stock, b, pb) = runs
    assert set(a) == set(b)
    for key in b:
        assert torch.equal(a[key], b[key]) if isinstance(b[key], torch.Tensor) else a[key] == b[key], key
    for name in pb:
        assert torch.equal(pa[name], pb[name]), name
    assert masked.state.log_history[0]["loss"] == stock.state.log_history[0]["loss"]


# -- item 9: evaluation -------------------------------------------------------------------------------
def test_evaluation_scores_every_rollout(tiny_qwen_dir, tmp_path, silence):
    """Masking is a training rule: eval accuracy counts the over-turn row as the miss it is (1/3, not 1/2)."""
    turns = [[CALL, CALL, "<answer>no</answer>"], ["<answer>yes</answer>", CALL]]
    rewards = {}
    for cls, args in ((MaskedGRPOTrainer, _args(MaskedGRPOConfig, tmp_path, max_turns=2)),
                      (GRPOTrainer, _args(GRPOConfig, tmp_path, max_tool_calling_iterations=1))):
        args.per_device_eval_batch_size = 3
        model, processor = load_tiny_qwen(tiny_qwen_dir)
        trainer = cls(model, reward_funcs=[says_yes], args=args, processing_class=processor, tools=[lookup],
                      train_dataset=_prompts("Define zoom."), eval_dataset=_prompts("Define zoom."))
        _scripted(trainer, turns)
        metrics = trainer.evaluate()
        rewards[cls.__name__] = metrics
    masked, stock = rewards["MaskedGRPOTrainer"], rewards["GRPOTrainer"]
    assert stock["eval_reward"] == pytest.approx(1 / 3)
    assert masked["eval_reward"] == pytest.approx(stock["eval_reward"])
    assert masked["eval_loss"] == pytest.approx(stock["eval_loss"])
    assert masked["eval_minio3/masked_share"] == pytest.approx(1 / 3)  # still reported


def test_sequence_level_is_metrics_cover_live_rows(tiny_qwen_dir, tmp_path, silence, monkeypatch):
    """vLLM (scripted server) with sequence-level IS: a masked row's ratio is exp(0) = 1 and must not count."""
    from dist_worker import Script, ScriptedServer
    from trl.generation import vllm_generation

    model, processor = load_tiny_qwen(tiny_qwen_dir)
    tok = processor.tokenizer

    class Turns(Script):  # row 0 answers, rows 1-2 keep calling tools (turn_limit, masked)
        def continuation(self, prompt_ids, variant):
            called = "<tool_response>" in self.tok.decode(prompt_ids)
            out = "<answer>yes</answer>" if variant == 0 and not called else CALL
            return self.tok(out, add_special_tokens=False)["input_ids"] + [self.im_end]

    server = ScriptedServer(Turns(tok, tok.convert_tokens_to_ids("<|im_end|>")))

    def scripted_init(self):
        self.vllm_client = server
        self.accelerator.wait_for_everyone()

    monkeypatch.setattr(vllm_generation.VLLMGeneration, "_init_vllm", scripted_init)
    args = _args(MaskedGRPOConfig, tmp_path, max_turns=2, use_vllm=True, vllm_mode="server",
                 vllm_importance_sampling_mode="sequence_truncate", max_completion_length=128)
    trainer = MaskedGRPOTrainer(model, reward_funcs=[says_yes], args=args, processing_class=processor, tools=[lookup],
                                train_dataset=_prompts("Define zoom."))
    trainer.train()
    log = trainer.state.log_history[0]
    assert log["minio3/masked_share"] == pytest.approx(2 / 3)
    # the live row's ratio: exp(sum(trainer logp - (-1.0))) over its ~10 tokens of a random model: far below 1
    assert log["sampling/importance_sampling_ratio/max"] < 0.5
    assert log["sampling/importance_sampling_ratio/mean"] < 0.5


# -- item 10: tool errors counted where they happen -----------------------------------------------------
def status(key: str) -> dict:
    """Report a key's status.

    Args:
        key: The key.

    Returns:
        A status record.
    """
    return {"error": None, "key": key}


def broken(key: str) -> str:
    """A tool that always fails.

    Args:
        key: The key.

    Returns:
        Nothing.
    """
    raise RuntimeError("backend down")


def test_tool_errors_are_failed_calls_not_error_looking_text(tiny_qwen_dir, tmp_path, silence):
    calls = ['<tool_call>\n{"name": "%s", "arguments": {"key": "k"}}\n</tool_call>' % n for n in ("status", "broken",
                                                                                                  "missing")]
    model, processor = load_tiny_qwen(tiny_qwen_dir)
    trainer = MaskedGRPOTrainer(model, reward_funcs=[says_yes], args=_args(MaskedGRPOConfig, tmp_path, max_turns=2),
                                processing_class=processor, tools=[status, broken],
                                train_dataset=_prompts("Check k."))
    _scripted(trainer, [calls, ["<answer>yes</answer>"] * 3])
    trainer.train()
    log = trainer.state.log_history[0]
    # status() succeeded (its result merely reads "{'error': None, ...}"); broken() raised; missing is unknown
    assert log["minio3/invalid_actions_mean"] == pytest.approx(2 / 3)
    assert log["tools/failure_frequency"] == pytest.approx(2 / 3)
