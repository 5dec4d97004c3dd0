"""Mini-o3 cold-start SFT with TRL: Qwen2.5-VL-7B on the released cold-start data.

    minio3 data import-coldstart --input Mini-o3-Coldstart-Dataset/data --out data/coldstart
    accelerate launch --config_file recipes/trl/accelerate_zero3.yaml \\
        recipes/trl/sft_coldstart_qwen2_5_vl_7b.py --config recipes/trl/sft_coldstart_qwen2_5_vl_7b.yaml

Any YAML field can be overridden on the command line. The loss covers the assistant
turns only (as LLaMA-Factory's sharegpt training did); observation turns, the system
prompt and image tokens are context.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from datasets import load_from_disk
from transformers import AutoModelForImageTextToText, AutoProcessor
from trl import ModelConfig, SFTConfig, SFTTrainer, TrlParser

from minio3_ext.core import EpisodeConfig
from minio3_ext.trl import ZoomEnvironment
from minio3_ext.trl.attention import attention_implementation
from minio3_ext.trl.sft import ToolImageCollator


@dataclass
class SFTRecipeArguments:
    dataset_path: str = field(metadata={"help": "`minio3 data import-coldstart` output folder coldstart.trl/ "
                                                "(or `minio3 data sft` sft.trl/)."})
    view_max_pixels: int = field(default=2_000_000, metadata={"help": "Pixel budget of every image (released: 2M)."})
    view_min_pixels: int = field(default=40_000, metadata={"help": "Smaller images are enlarged to this (released: 40k)."})
    freeze_vision_tower: bool = field(default=True, metadata={"help": "Freeze the ViT and merger (released)."})
    tool_schemas: bool = field(default=False, metadata={"help": "Render the zoom environment's tool schemas into every "
                                                                 "example, as the RL recipe's hermes prompts carry them "
                                                                 "(Hermes data, e.g. `minio3 data sft`); the released "
                                                                 "<grounding> data has none."})


def main(argv: list[str] | None = None) -> SFTTrainer:
    recipe, args, model_args = TrlParser((SFTRecipeArguments, SFTConfig, ModelConfig)).parse_args_and_config(argv)
    processor = AutoProcessor.from_pretrained(model_args.model_name_or_path, min_pixels=recipe.view_min_pixels,
                                              max_pixels=recipe.view_max_pixels)
    model = AutoModelForImageTextToText.from_pretrained(
        model_args.model_name_or_path, dtype=getattr(torch, model_args.dtype or "bfloat16"),
        attn_implementation=attention_implementation(model_args.attn_implementation))
    if recipe.freeze_vision_tower:  # the vision tower and its projector (merger) stay as they are
        for p in model.model.visual.parameters():
            p.requires_grad_(False)
    tools = None
    if recipe.tool_schemas:  # the same bound methods TRL turns into the RL prompts' <tools> block
        env = ZoomEnvironment(EpisodeConfig(dialect="hermes", max_context_tokens=None))
        tools = [getattr(env, name) for name in env.tools]
    trainer = SFTTrainer(model=model, args=args, train_dataset=load_from_disk(recipe.dataset_path),
                         processing_class=processor,
                         data_collator=ToolImageCollator(processor, max_length=args.max_length, assistant_only=True,
                                                         tools=tools))
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    trainer.save_model(args.output_dir)
    trainer.save_state()  # output_dir/trainer_state.json: the run's logged metrics (log_history)
    return trainer


if __name__ == "__main__":
    main()
