"""Run in a subprocess whose PYTHONPATH holds the pip-installed test plugin (``equalize``).

``python _plugin_rollout.py MODEL_DIR ROWS_JSONL OUT_JSON DIALECT``: builds a
MaskedGRPOTrainer with ``EpisodeConfig(dialect=get_dialect(..., tools=("zoom", "equalize")))`` exactly as docs/trl.md
says, runs one scripted step whose first rollout calls ``equalize``, and writes what the
test checks as JSON.
"""

from __future__ import annotations

import functools
import json
import os
import sys

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def main(model_dir: str, rows_path: str, out_path: str, dialect: str) -> None:
    import torch
    from datasets import Dataset

    from minio3_ext.core import EpisodeConfig, ImageBank, ViewRules
    from minio3_ext.core.tools import available_tools
    from minio3_ext.data.synthetic import load_rows
    from minio3_ext.testing import load_tiny_qwen
    from minio3_ext.trl import AccuracyReward, MaskedGRPOConfig, MaskedGRPOTrainer, ZoomEnvironment, grpo_rows
    from minio3_ext.trl.templates import use_minio3_dialect

    view = ViewRules(max_pixels=28 * 28 * 48, min_pixels=28 * 28 * 8)
    config = EpisodeConfig.from_options(max_turns=2, dialect=dialect, tools=("zoom", "equalize"), max_context_tokens=None, view=view)
    row = load_rows(rows_path)[0]
    torch.manual_seed(0)
    model, processor = load_tiny_qwen(model_dir)
    if dialect == "minio3":
        use_minio3_dialect(processor, config)
    args = MaskedGRPOConfig(output_dir=os.path.join(os.path.dirname(out_path), "out"), num_generations=3,
                            per_device_train_batch_size=3, max_steps=1, max_completion_length=512, report_to=[],
                            logging_steps=1, learning_rate=1e-2, use_cpu=True, save_strategy="no", seed=0, max_turns=2)
    trainer = MaskedGRPOTrainer(model, reward_funcs=[AccuracyReward()], args=args,
                                train_dataset=Dataset.from_list(grpo_rows([row], config=config)),
                                processing_class=processor,
                                environment_factory=functools.partial(ZoomEnvironment, config=config,
                                                                      bank=ImageBank(view_rules=view)))
    d = config.dialect
    equalize = d.render_call("equalize", {"source": "original_image"})
    zoom = d.render(d.parse_call("zoom", {"bbox_2d": [0.1, 0.1, 0.5, 0.5]}))
    script = iter([[f"<think>too faint</think>{equalize}", zoom, "I do not know."],
                   [f"<think>ok</think><answer>{row['solution']}</answer>", zoom]])
    tok = processor.tokenizer
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    prompts: list[str] = []

    def scripted(prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        prompts.append(tok.decode(prompt_ids[0]))
        return [tok(t, add_special_tokens=False)["input_ids"] + [im_end] for t in next(script)], None

    trainer._generate_single_turn = scripted
    tools = [t.__name__ for t in trainer.tools]
    trainer.train()
    env = trainer.environments[0]
    json.dump({
        "registered": available_tools(),
        "trainer_tools": tools,
        "first_prompt": prompts[0],
        "second_prompt": prompts[1],
        "actions": [a["kind"] for a in env.episode.summary()["actions"]],
        "reason": env.episode.termination_reason,
        "answer": env.episode.answer,
        "system_prompt": d.system_prompt(),
        "logs": trainer.state.log_history[0],
    }, open(out_path, "w"), default=str)


if __name__ == "__main__":
    main(*sys.argv[1:5])
