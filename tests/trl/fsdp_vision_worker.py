"""One rank of a two-process (gloo, CPU) FSDP run of the transformers backend's tool loop; see
``test_idle_rank_runs_the_vision_tower_under_fsdp`` in test_multiprocess.py.

    python tests/trl/fsdp_vision_worker.py MODEL_DIR OUT_DIR

A real ``MaskedGRPOTrainer`` (no vLLM) on the tiny Qwen2.5-VL, sharded with FSDP2
(``fully_shard`` on every vision block and decoder layer, as accelerate's transformer
auto-wrap does with ``_no_split_modules``): every module's forward all-gathers its
parameters. Rank 0 still has a rollout calling tools (a prompt with an image); rank 1 has
none and joins the iteration with the trainer's idle-rank turn, as
``MaskedGRPOTrainer._tool_call_loop`` does. Both go through TRL's real
``_generate_single_turn`` and transformers' ``generate`` (``synced_gpus`` is set under FSDP).
If the idle turn skipped the vision tower, rank 1's language-model gathers would meet
rank 0's vision gathers: gloo reports a collective mismatch (NCCL would hang).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch.distributed as dist


def lookup(key: str) -> str:
    """Look a word up.

    Args:
        key: The word.

    Returns:
        Its definition.
    """
    return key


def main() -> None:
    model_dir, out_dir = sys.argv[1:3]  # (the launcher passes two more, unused)
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from datasets import Dataset
    from PIL import Image
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from minio3_ext.testing import load_tiny_qwen
    from minio3_ext.trl import MaskedGRPOConfig, MaskedGRPOTrainer

    model, processor = load_tiny_qwen(model_dir)
    args = MaskedGRPOConfig(output_dir=str(Path(out_dir) / "run"), num_generations=2, per_device_train_batch_size=2,
                            max_steps=1, max_completion_length=6, report_to=[], use_cpu=True, save_strategy="no",
                            use_vllm=False, max_turns=4, seed=0)
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": "Define alpha."}]}])
    trainer = MaskedGRPOTrainer(model, reward_funcs=[lambda completions, **kw: [0.0] * len(completions)], args=args,
                                processing_class=processor, tools=[lookup], train_dataset=data)
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    for module in model.modules():
        if type(module).__name__ in model._no_split_modules:
            fully_shard(module, mesh=mesh)
    fully_shard(model, mesh=mesh)
    rank = dist.get_rank()
    trainer._in_tool_loop = True  # inside TRL's tool loop, as MaskedGRPOTrainer._tool_call_loop sets it
    turns = []
    if rank == 0:  # a rollout still calling tools: its history holds an image
        image = Image.new("RGB", (112, 84), "red")
        text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text",
                                                                                               "text": "What?"}]}],
                                             add_generation_prompt=True, tokenize=False)
        enc = processor(text=[text], images=[image], return_tensors="pt")
        fields = {"pixel_values": enc["pixel_values"], "image_grid_thw": enc["image_grid_thw"]}
        ids, _ = trainer._generate_single_turn([enc["input_ids"][0].tolist()], [[image]], fields, 1, True)
        turns.append(len(ids[0]))
    while trainer._lockstep_turn([], None, {}, False) is not None:  # done: join the others' iterations
        turns.append(0)
    dist.barrier()
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps({"rank": rank, "turns": turns}))


if __name__ == "__main__":
    main()
