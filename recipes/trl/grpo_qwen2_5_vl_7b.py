"""Mini-o3 RL stage with TRL: masked GRPO on Qwen2.5-VL-7B with the zoom environment.

    accelerate launch --config_file recipes/trl/accelerate_zero3.yaml \
        recipes/trl/grpo_qwen2_5_vl_7b.py --config recipes/trl/grpo_qwen2_5_vl_7b.yaml

Any field of the YAML can be overridden on the command line (``--learning_rate 5e-7``).
Start from the cold-start SFT checkpoint (``model_name_or_path``). The judge endpoint
comes from ``MINIO3_JUDGE_BASE_URL`` / ``MINIO3_JUDGE_API_KEY`` / ``MINIO3_JUDGE_MODEL``
(see ``minio3 judge check``); without it the reward uses the rule path only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from datasets import Dataset, load_from_disk
from transformers import AutoModelForImageTextToText, AutoProcessor
from trl import ModelConfig, TrlParser

from minio3_ext.core import EpisodeConfig, ImageBank, ViewRules
from minio3_ext.data.synthetic import load_rows
from minio3_ext.judge import Judge, JudgeConfig
from minio3_ext.trl.attention import attention_implementation
from minio3_ext.trl import (
    AccuracyReward, MaskedGRPOConfig, MaskedGRPOTrainer, ZoomEnvironment, format_reward, grpo_rows,
    use_minio3_dialect, use_tool_chat_template,
)


@dataclass
class RecipeArguments:
    train_data: str = field(metadata={"help": "Rows JSONL (doc_id, problem, images, solution, data_source) or a "
                                              "datasets.save_to_disk folder in the grpo_rows layout."})
    max_images: int = field(default=32, metadata={"help": "Images per trajectory, the original included (the zoom "
                                                          "environment's EpisodeConfig.max_images)."})
    view_max_pixels: int = field(default=2_000_000, metadata={"help": "Pixel budget of every image the model sees."})
    view_min_pixels: int = field(default=40_000, metadata={"help": "Smaller images are enlarged to this area."})
    image_bank_gib: float = field(default=8.0, metadata={"help": "Raw-image cache per process (decode once, share)."})
    freeze_vision_tower: bool = field(default=True, metadata={"help": "Freeze the ViT and merger (as the released SFT)."})
    format_reward_weight: float = field(default=0.0, metadata={"help": "Weight of the format reward (released: 0)."})
    dialect: str = field(default="hermes", metadata={"help": "'hermes' (<tool_call>, tool turns) or 'minio3' (the "
                                                              "released <grounding> dialect, observations as user turns)."})
    preset: str = field(default="strict", metadata={"help": "Edge-case rules of the episode: 'strict' or 'released' "
                                                             "(out-of-range boxes clamped, observation_0 = the original, "
                                                             "any <grounding> makes a zoom, released numbering)."})


def load_dataset_rows(path: str, episode: EpisodeConfig) -> Dataset:
    p = Path(path)
    if p.is_dir():
        return load_from_disk(str(p))
    return Dataset.from_list(grpo_rows(load_rows(p), config=episode))


def episode_config(recipe: RecipeArguments, args: MaskedGRPOConfig) -> EpisodeConfig:
    """The zoom environment's rules: the trainer's budgets, the recipe's dialect, preset and views."""
    view = ViewRules(max_pixels=recipe.view_max_pixels, min_pixels=recipe.view_min_pixels)
    return EpisodeConfig.from_options(max_turns=args.max_turns, max_images=recipe.max_images, dialect=recipe.dialect,
                         preset=recipe.preset, max_context_tokens=None,  # TRL's max_completion_length caps the context
                         view=view)


def main() -> None:
    recipe, args, model_args = TrlParser((RecipeArguments, MaskedGRPOConfig, ModelConfig)).parse_args_and_config()
    episode = episode_config(recipe, args)
    view = episode.view
    processor = AutoProcessor.from_pretrained(model_args.model_name_or_path, min_pixels=recipe.view_min_pixels,
                                              max_pixels=recipe.view_max_pixels, padding_side="left")
    if recipe.dialect == "minio3":
        use_minio3_dialect(processor, episode)  # <grounding> calls rendered and parsed through TRL's hooks
    else:
        use_tool_chat_template(processor)  # Qwen2.5-VL's own template cannot render tool calls
    model = AutoModelForImageTextToText.from_pretrained(
        model_args.model_name_or_path, dtype=getattr(torch, model_args.dtype or "bfloat16"),
        attn_implementation=attention_implementation(model_args.attn_implementation))
    if recipe.freeze_vision_tower:
        for p in model.model.visual.parameters():
            p.requires_grad_(False)
    bank = ImageBank(max_bytes=int(recipe.image_bank_gib * (1 << 30)), view_rules=view)
    reward_funcs = [AccuracyReward(Judge(JudgeConfig.from_env()))]
    if recipe.format_reward_weight:
        reward_funcs.append(format_reward)
        args.reward_weights = [1.0, recipe.format_reward_weight]
    trainer = MaskedGRPOTrainer(
        model, reward_funcs=reward_funcs, args=args, train_dataset=load_dataset_rows(recipe.train_data, episode),
        processing_class=processor, environment_factory=partial(ZoomEnvironment, config=episode, bank=bank),
    )
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    trainer.save_model(args.output_dir)
    trainer.save_state()  # output_dir/trainer_state.json: the run's logged metrics (log_history)


if __name__ == "__main__":
    main()
