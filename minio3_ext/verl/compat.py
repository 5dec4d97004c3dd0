"""The verl 0.9.1 seams the plugin relies on beyond verl's registries and documented
extension points, in one list, checked by ``tests/verl/test_compat.py`` (presence and
signature). When verl moves one of these, that test names it.

Each entry: ``"module:qualname"`` → the parameter names the plugin passes or overrides
(``None`` when only presence matters), and who uses it.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

__all__ = ["SEAMS", "AGENT_DATA_ATTRS", "ACTIVE_TOOL_SCHEMAS", "REPLAY_BUFFER_ATTRS", "resolve", "problems"]

SEAMS: dict[str, tuple[tuple[str, ...] | None, str]] = {
    # registries read by registration_problems() / `minio3 doctor` (private dicts)
    "verl.experimental.agent_loop.agent_loop:_agent_loop_registry": (None, "verl/__init__.py, commands/doctor.py"),
    "verl.experimental.agent_loop.tool_parser:ToolParser._registry": (None, "verl/__init__.py, commands/doctor.py"),
    # ToolAgentLoop state handlers the minio3 loop wraps via super() (private methods)
    "verl.experimental.agent_loop.tool_agent_loop:ToolAgentLoop._handle_pending_state":
        (("self", "agent_data", "sampling_params"), "verl/agent_loop.py"),
    "verl.experimental.agent_loop.tool_agent_loop:ToolAgentLoop._handle_generating_state":
        (("self", "agent_data", "sampling_params", "ignore_termination"), "verl/agent_loop.py"),
    "verl.experimental.agent_loop.tool_agent_loop:ToolAgentLoop._handle_processing_tools_state":
        (("self", "agent_data"), "verl/agent_loop.py"),
    "verl.experimental.agent_loop.tool_agent_loop:ToolAgentLoop.ct_merge_context_msg": (None, "verl/agent_loop.py"),
    # v1 replay buffer internals the live-row sampler overrides / reads
    "verl.trainer.ppo.v1.replay_buffer:ReplayBuffer.__init__":
        (("self", "trainer_mode", "trainer_config", "max_off_policy_threshold", "max_off_policy_strategy",
          "sampler_kwargs", "poll_interval", "refill_fn", "filter_groups_metric", "train_batch_size",
          "gen_batch_size", "max_inflight_gen_batches", "sync_refill_failed_groups"), "verl/sampler.py"),
    "verl.trainer.ppo.v1.replay_buffer:ReplayBuffer._dapo_filtered_keys": (("self", "partition_id"), "verl/sampler.py"),
    "verl.trainer.ppo.v1.replay_buffer:ReplayBuffer.sample":
        (("self", "global_steps", "partition_id", "batch_size"), "verl/sampler.py"),
    "verl.trainer.ppo.v1.replay_buffer:ReplayBufferAsync.sample":
        (("self", "global_steps", "partition_id", "batch_size"), "verl/sampler.py"),
    # the trainer builds custom samplers with these keyword arguments only
    "verl.trainer.ppo.v1.trainer_base:PPOTrainer._build_replay_buffer": (("self",), "verl/sampler.py (contract)"),
    # the wrapped policy loss and the per-micro-batch dict it guards
    "verl.trainer.ppo.core_algos:compute_policy_loss_vanilla":
        (("old_log_prob", "log_prob", "advantages", "response_mask", "loss_agg_mode", "config", "rollout_is_weights"),
         "verl/estimator.py"),
    "verl.workers.config.actor:ActorConfig.global_batch_info": (None, "verl/estimator.py (masked_vanilla)"),
    # SFT: the hook that imports model.external_lib, and the auto class verl loads with
    "verl.workers.config.model:HFModelConfig.external_lib": (None, "verl/freeze_vision.py"),
    "verl.utils.model:get_hf_auto_model_class": (("hf_config",), "verl/freeze_vision.py"),
}

#: ``AgentData`` attributes the minio3 loop reads or writes (set in ``AgentData.__init__``).
AGENT_DATA_ATTRS = ("messages", "image_data", "prompt_ids", "response_ids", "response_mask", "response_logprobs",
                    "tool_calls", "tools_kwargs", "user_turns", "assistant_turns")
#: The private per-trajectory tool-schema attribute ``ToolAgentLoop`` sets in its pending
#: handler and reads when it renders turns; the minio3 dialect sets it to None (no <tools>).
ACTIVE_TOOL_SCHEMAS = "_active_tool_schemas"
#: ``ReplayBuffer`` instance state the live-row filter reads.
REPLAY_BUFFER_ATTRS = ("finished_keys", "partitions", "filter_groups_metric")


def resolve(seam: str) -> Any:
    module, _, qualname = seam.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        if isinstance(obj, type) and part in getattr(obj, "__dataclass_fields__", {}):
            return obj.__dataclass_fields__[part]
        obj = getattr(obj, part)
    return obj


def problems() -> list[str]:
    """Seams missing or with other parameters than the plugin expects (empty when all match)."""
    out = []
    for seam, (params, user) in SEAMS.items():
        try:
            obj = resolve(seam)
        except (ImportError, AttributeError) as e:
            out.append(f"{seam} (used by {user}) is missing: {e}")
            continue
        if params is None:
            continue
        try:
            got = tuple(inspect.signature(obj).parameters)
        except (TypeError, ValueError):
            out.append(f"{seam}: no signature")
            continue
        if got[: len(params)] != params:
            out.append(f"{seam} (used by {user}): parameters {got}, expected {params}")
    return out
