"""Scripted GRPO runs: TRL's real trainer on the tiny Qwen2.5-VL, only generation replaced.

One prompt, a group of three rollouts, ``max_turns=2`` (one tool round):

- row 0 *finished*: zooms, then answers correctly (reward 1);
- row 1 *over-turn*: zooms, and zooms again at its last turn (``turn_limit``; reward 0);
- row 2 *no answer*: stops without an action (``no_answer``; reward 0).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

ZOOM_BOX = [0.1, 0.1, 0.5, 0.5]
GROUNDING = '<think>too small</think><grounding>{"bbox_2d": %s, "source": "original_image"}</grounding>' % ZOOM_BOX
ZOOM = '<tool_call>\n{"name": "zoom", "arguments": {"bbox_2d": %s, "source": "original_image"}}\n</tool_call>' % ZOOM_BOX


@dataclass
class ScriptedRun:
    trainer: Any
    outputs: list[dict[str, Any]]
    losses: list[torch.Tensor]
    before: dict[str, torch.Tensor]
    after: dict[str, torch.Tensor]
    visual_calls: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="session")
def trl_setup(tiny_qwen_dir, synthetic_rows):
    from datasets import Dataset

    from minio3_ext.core import EpisodeConfig, ImageBank, ViewRules
    from minio3_ext.trl import grpo_rows

    view = ViewRules(max_pixels=28 * 28 * 48, min_pixels=28 * 28 * 8)
    row = synthetic_rows[0]
    return {
        "model_dir": tiny_qwen_dir,
        "row": row,
        "zoom_box": ZOOM_BOX,
        "grounding": GROUNDING,
        "view": view,
        "bank": ImageBank(view_rules=view),
        "episode": EpisodeConfig(max_turns=2, dialect="hermes", max_context_tokens=None, view=view),
        "dataset": Dataset.from_list(grpo_rows([row])),
    }


def _config_kwargs(tmp_path) -> dict[str, Any]:
    return dict(
        output_dir=str(tmp_path / "out"), num_generations=3, per_device_train_batch_size=3, max_steps=1,
        max_completion_length=512, report_to=[], logging_steps=1, learning_rate=1e-2, use_cpu=True,
        save_strategy="no", seed=0,
    )


@pytest.fixture
def run_scripted(trl_setup, tmp_path, monkeypatch):
    """``run_scripted(trainer_cls, config_cls=None, script=None, dialect="hermes", prepare_model=None,
    reward_funcs=None, episode_overrides=None, **config_overrides)`` → :class:`ScriptedRun`
    (``prepare_model(model)`` runs before the trainer is built).

    ``script``: per generation call, the texts of the rollouts that call generates for.
    Only ``_generate_single_turn`` (the model's sampling) is replaced; everything else is TRL's.
    """
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")

    def run(trainer_cls, config_cls=None, script=None, dialect="hermes", prepare_model=None, reward_funcs=None,
            episode_overrides=None, **overrides) -> ScriptedRun:
        from dataclasses import replace

        from datasets import Dataset

        from minio3_ext.testing import load_tiny_qwen
        from minio3_ext.trl import AccuracyReward, MaskedGRPOConfig, ZoomEnvironment, grpo_rows
        from minio3_ext.trl.templates import use_minio3_dialect

        config_cls = config_cls or MaskedGRPOConfig
        kwargs = _config_kwargs(tmp_path)
        if config_cls is MaskedGRPOConfig:
            kwargs["max_turns"] = 2
        else:
            kwargs["max_tool_calling_iterations"] = 1
        args = config_cls(**{**kwargs, **overrides})
        torch.manual_seed(0)
        model, processor = load_tiny_qwen(trl_setup["model_dir"])
        if prepare_model is not None:
            prepare_model(model)
        episode, dataset = trl_setup["episode"], trl_setup["dataset"]
        if episode_overrides:
            episode = replace(episode, **episode_overrides)
        if dialect == "minio3":
            use_minio3_dialect(processor)
            episode = replace(episode, dialect="minio3")
            dataset = Dataset.from_list(grpo_rows([trl_setup["row"]], dialect="minio3"))
        outputs, losses = [], []

        class Recording(trainer_cls):
            def _generate_and_score_completions(self, inputs):
                out = super()._generate_and_score_completions(inputs)
                outputs.append(out)
                return out

            def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
                loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
                losses.append(loss.detach().clone())
                return loss

        solution = trl_setup["row"]["solution"]
        turns = iter(script or [[ZOOM, ZOOM, "I do not know."], [f"<think>ok</think><answer>{solution}</answer>", ZOOM]])
        trainer = Recording(
            model, reward_funcs=reward_funcs or [AccuracyReward()], args=args, train_dataset=dataset, processing_class=processor,
            environment_factory=functools.partial(ZoomEnvironment, config=episode, bank=trl_setup["bank"]),
        )
        tok = processor.tokenizer
        im_end = tok.convert_tokens_to_ids("<|im_end|>")

        def scripted_generation(prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
            texts = next(turns)
            assert len(texts) == len(prompt_ids), f"script expects {len(texts)} rollouts, trainer asked {len(prompt_ids)}"
            return [tok(t, add_special_tokens=False)["input_ids"] + [im_end] for t in texts], None

        trainer._generate_single_turn = scripted_generation
        visual_calls: list[dict[str, Any]] = []
        hook = trainer.model.model.visual.register_forward_hook(
            lambda mod, args, kw, out: visual_calls.append(
                {"grad": torch.is_grad_enabled(), "pixels": (args[0] if args else kw["hidden_states"]).detach().clone()}),
            with_kwargs=True,
        )
        before = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
        try:
            trainer.train()
        finally:
            hook.remove()
        after = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
        return ScriptedRun(trainer, outputs, losses, before, after, visual_calls)

    return run
