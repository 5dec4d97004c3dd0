"""verl recipe: host bytes of image data held per RL step, the ``minio3_agent`` loop vs
verl's stock ``ToolAgentLoop`` on the same batch (issue 11, item 10).

Both run through verl 0.9.1's real ``AgentLoopWorker`` with the offline tiny Qwen2.5-VL
(its processor has Qwen2.5-VL-7B's patch 14 / merge 2 / temporal patch 2, so
``pixel_values`` have the 7B's shape) and a scripted LLM server: P prompts x n
rollouts, every rollout zooms once on the original and answers (identical actions, so
both loops hold the same views). Measured on the batch the worker returns, i.e. what
the host holds for one step:

- ``pixel_values`` and the other ``multi_modal_inputs`` tensors of the batch the worker
  returns (float32, made by verl's worker per trajectory: not under the plugin's
  control in verl 0.9.1), held by the trainer for the whole step;
- the PIL views the rollouts of the step hold while in flight (4 bytes per pixel in
  Pillow, each object counted once, as the server receives them): the plugin shares one
  first view per prompt across its rollouts, the stock loop decodes and resizes one per
  rollout.

Planning formula (recipes/verl/README.md): per step ≈ B·n·Σ_views 24·w·h bytes of
float32 pixel_values + B·(1 + n·zooms)·4·w·h bytes of views.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
from pathlib import Path

from bench.common import Row

MIB = 1 << 20


class _Server:
    """verl's LLM-server client, scripted: zoom once, then answer."""

    def __init__(self, tokenizer, dialect: str):
        self.tokenizer, self.dialect, self.turns = tokenizer, dialect, {}
        self.first, self.views = {}, {}  # id -> image, every distinct object the rollouts hold

    async def generate(self, request_id, *, prompt_ids, sampling_params, image_data=None, **kwargs):
        from verl.workers.rollout.replica import TokenOutput

        for i, img in enumerate(image_data or []):
            self.views[id(img)] = img
            if i == 0:
                self.first[id(img)] = img

        n = self.turns[request_id] = self.turns.get(request_id, 0) + 1
        args = {"bbox_2d": [0.1, 0.1, 0.6, 0.6], "source": "original_image"}
        call = "<tool_call>" + json.dumps({"name": "zoom", "arguments": args}) + "</tool_call><|im_end|>"
        text = ("<think>look</think>" + call) if n == 1 else "<think>seen</think><answer>A</answer><|im_end|>"
        ids = self.tokenizer.encode(text, add_special_tokens=False)[: sampling_params.get("max_tokens") or None]
        return TokenOutput(token_ids=ids, stop_reason="completed")


def _config(model: Path, agent: str):
    import verl
    from hydra import compose, initialize_config_dir

    import minio3_ext.verl as mv

    cfgdir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
    with initialize_config_dir(config_dir=cfgdir, version_base=None):
        return compose("ppo_trainer", overrides=[
            f"actor_rollout_ref.model.path={model}", "actor_rollout_ref.rollout.name=vllm",
            "actor_rollout_ref.rollout.prompt_length=4096", "actor_rollout_ref.rollout.response_length=4096",
            "actor_rollout_ref.rollout.multi_turn.enable=true", "actor_rollout_ref.rollout.multi_turn.max_assistant_turns=3",
            "actor_rollout_ref.rollout.multi_turn.format=hermes",
            f"actor_rollout_ref.rollout.multi_turn.tool_config_path={mv.config_path('zoom_tool.yaml')}",
            f"actor_rollout_ref.rollout.agent.default_agent_loop={agent}", "data.return_raw_chat=true",
            # the tiny processor keeps its views small for tests; Qwen2.5-VL-7B's limits instead
            "+data.mm_processor_kwargs.min_pixels=3136", "+data.mm_processor_kwargs.max_pixels=12845056",
        ])


def _held(out, server: _Server) -> tuple[int, int, int]:
    """(pixel tensor bytes in the step's batch, first-view bytes, all view bytes held by the
    rollouts in flight); PIL views count once per object, 4 bytes per pixel."""
    tensors = sum(t.numel() * t.element_size() for mmi in out.non_tensor_batch["multi_modal_inputs"]
                  for t in mmi.values() if hasattr(t, "numel"))
    size = lambda images: sum(img.width * img.height * 4 for img in images.values())  # noqa: E731
    return tensors, size(server.first), size(server.views)


def _step(model: Path, parquet: Path, agent: str, n: int):
    import numpy as np
    from verl import DataProto
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    cfg = _config(model, agent)
    worker = AgentLoopWorker(cfg, llm_client=None)
    server = worker.llm_client = _Server(worker.tokenizer, "hermes")
    ds = RLHFDataset(data_files=[str(parquet)], tokenizer=worker.tokenizer, config=cfg.data, processor=worker.processor)
    batch = DataProto.from_single_dict(collate_fn([ds[i] for i in range(len(ds))])).repeat(n, interleave=True)
    batch.non_tensor_batch["agent_name"] = np.array([agent] * len(batch), dtype=object)
    batch.meta_info["validate"] = False
    return asyncio.run(worker.generate_sequences(batch)), server


def run(quick: bool) -> list[Row]:
    import minio3_ext.verl  # noqa: F401  (registers the minio3_agent loop)
    from minio3_ext.data.synthetic import generate, load_rows
    from minio3_ext.testing import save_tiny_qwen
    from minio3_ext.verl.dataset import write_parquet

    prompts, n = (2, 4) if quick else (4, 16)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = save_tiny_qwen(tmp / "model", seed=0)
        rows = load_rows(generate(tmp / "data", n=prompts, seed=0, width=1600, height=1200))
        parquet = write_parquet(rows, tmp / "rl.parquet", dialect="hermes")
        stock = _held(*_step(model, parquet, "tool_agent", n))
        ours = _held(*_step(model, parquet, "minio3_agent", n))
    per = lambda v: v / (prompts * n) / MIB  # noqa: E731
    return [
        Row(f"verl first views held per step ({prompts}x{n} rollouts)", ours[1] / MIB, stock[1] / MIB, "MiB",
            f"<= {1 / n:.3g}x (one per prompt)", ours[1] <= stock[1] / n * 1.0001,
            detail="PIL views held by the rollouts in flight, 4 B/pixel, each object once: the plugin shares one "
                   "first view per prompt across its rollouts, stock verl decodes and resizes one per rollout"),
        Row(f"verl views held per step ({prompts}x{n} rollouts, + 1 crop each)", ours[2] / MIB, stock[2] / MIB, "MiB",
            "<= 1.0x", ours[2] <= stock[2],
            detail=f"first views + crops; {per(ours[2]):.2f} vs {per(stock[2]):.2f} MiB per rollout"),
        Row(f"verl pixel_values per step (float32, {prompts}x{n} rollouts)", ours[0] / MIB, stock[0] / MIB, "MiB",
            "<= 1.0x (not plugin-controlled)", ours[0] <= stock[0] * 1.0001,
            detail="made per trajectory by verl's AgentLoopWorker._compute_multi_modal_inputs in float32 "
                   f"({per(ours[0]):.2f} MiB per rollout here; 24 bytes per view pixel, 45.8 MiB for a 2M-pixel view)"),
    ]
