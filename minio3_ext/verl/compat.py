"""The private verl 0.9.1 symbols the verl adapter touches beyond verl's registries and
documented extension points, in one list (CONTRIBUTING: upstream seams in the open).

Each :class:`Seam` names a module attribute, what the adapter expects of it (the
parameter names of a callable it overrides or calls, or that it exists) and who uses
it. ``tests/verl/test_verl_compat.py`` checks every entry against the installed verl, and
``minio3 doctor`` reports :func:`problems` (through ``registration_problems``); a verl
upgrade that moves one of them fails there, not in the middle of a rollout.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

__all__ = ["Seam", "SEAMS", "AGENT_DATA_ATTRS", "PARSER_SLOT", "ACTIVE_TOOL_SCHEMAS", "REPLAY_BUFFER_ATTRS", "problems", "resolve"]


@dataclass(frozen=True)
class Seam:
    module: str
    qualname: str
    """Dotted path inside ``module`` (``Class.method``, ``Class.dataclass_field`` or ``name``)."""
    params: tuple[str, ...] | None
    """Parameter names (in order) of a callable; ``None`` when only presence matters."""
    used_by: str

    @property
    def name(self) -> str:
        return f"{self.module}:{self.qualname}"


_TAL = "verl.experimental.agent_loop.tool_agent_loop"
_AL = "verl.experimental.agent_loop.agent_loop"
_RB = "verl.trainer.ppo.v1.replay_buffer"
SEAMS: tuple[Seam, ...] = (
    # registries read by registration_problems() / `minio3 doctor` (private dicts)
    Seam(_AL, "_agent_loop_registry", None, "verl.registration_problems reads the registered agent loop"),
    Seam("verl.experimental.agent_loop.tool_parser", "ToolParser._registry", None,
         "verl.registration_problems reads the registered tool parsers"),
    # ToolAgentLoop state handlers the minio3 loop wraps via super() (private methods)
    Seam(_TAL, "ToolAgentLoop._handle_pending_state", ("self", "agent_data", "sampling_params"),
         "agent_loop.MiniO3AgentLoop wraps it: builds the episode after verl's initial tokens"),
    Seam(_TAL, "ToolAgentLoop._handle_generating_state",
         ("self", "agent_data", "sampling_params", "ignore_termination"),
         "agent_loop.MiniO3AgentLoop wraps it: per-turn token cap, the episode reads the turn"),
    Seam(_TAL, "ToolAgentLoop._handle_processing_tools_state", ("self", "agent_data"),
         "agent_loop.MiniO3AgentLoop replaces it: the dialect's observation turn, never truncated"),
    Seam(_TAL, "ToolAgentLoop.ct_merge_context_msg",
         ("self", "previous_messages", "updated_messages", "runtime_token_ids", "response_mask",
          "response_logprobs", "tools"),
         "agent_loop.MiniO3AgentLoop calls it to append the observation turn"),
    # v1 replay buffer internals the live-row sampler overrides / reads
    Seam(_RB, "ReplayBuffer.__init__",
         ("self", "trainer_mode", "trainer_config", "max_off_policy_threshold", "max_off_policy_strategy",
          "sampler_kwargs", "poll_interval", "refill_fn", "filter_groups_metric", "train_batch_size",
          "gen_batch_size", "max_inflight_gen_batches", "sync_refill_failed_groups"), "verl/sampler.py"),
    Seam(_RB, "ReplayBuffer._dapo_filtered_keys", ("self", "partition_id"), "verl/sampler.py"),
    Seam(_RB, "ReplayBuffer.sample", ("self", "global_steps", "partition_id", "batch_size"), "verl/sampler.py"),
    Seam(_RB, "ReplayBufferAsync.sample", ("self", "global_steps", "partition_id", "batch_size"), "verl/sampler.py"),
    # the trainer builds custom samplers with these keyword arguments only
    Seam("verl.trainer.ppo.v1.trainer_base", "PPOTrainer._build_replay_buffer", ("self",),
         "verl/sampler.py (contract)"),
    # the wrapped policy loss and the per-micro-batch dict it guards
    Seam("verl.trainer.ppo.core_algos", "compute_policy_loss_vanilla",
         ("old_log_prob", "log_prob", "advantages", "response_mask", "loss_agg_mode", "config", "rollout_is_weights"),
         "verl/estimator.py"),
    Seam("verl.workers.config.actor", "ActorConfig.global_batch_info", None, "verl/estimator.py (masked_vanilla)"),
    # SFT: the hook that imports model.external_lib, and the auto class verl loads with
    Seam("verl.workers.config.model", "HFModelConfig.external_lib", None, "verl/freeze_vision.py"),
    Seam("verl.utils.model", "get_hf_auto_model_class", ("hf_config",), "verl/freeze_vision.py"),
    # VERL_PLATFORM=cpu: the process-group helpers whose backend string the CPU platform replaces
    Seam("verl.utils.distributed", "initialize_global_process_group", ("timeout_second",), "verl/cpu_platform.py"),
    Seam("verl.utils.distributed", "initialize_global_process_group_ray", ("timeout_second", "backend"),
         "verl/cpu_platform.py"),
)

#: ``AgentData`` attributes the minio3 loop reads or writes (set in ``AgentData.__init__``).
AGENT_DATA_ATTRS = ("messages", "image_data", "prompt_ids", "response_ids", "response_mask", "response_logprobs",
                    "tools_kwargs", "user_turns", "assistant_turns")
#: The ``ToolAgentLoop`` instance attribute holding its tool parser (set in ``__init__`` from
#: ``multi_turn.format``, called once per turn by the generating handler); the minio3 loop
#: puts its :class:`~minio3_ext.verl.tool_parser.TurnReader` there.
PARSER_SLOT = "tool_parser"
#: The private per-trajectory tool-schema attribute ``ToolAgentLoop`` sets in its pending
#: handler from ``self.tool_schemas`` and reads when it renders turns; the minio3 loop sets
#: ``self.tool_schemas`` to the dialect's schemas (hermes) or None (minio3: no <tools> block).
ACTIVE_TOOL_SCHEMAS = "_active_tool_schemas"
#: ``ReplayBuffer`` instance state the live-row filter reads.
REPLAY_BUFFER_ATTRS = ("finished_keys", "partitions", "filter_groups_metric")


def resolve(seam: Seam) -> Any:
    """The object a seam names (raises ImportError/AttributeError when it is gone);
    a dataclass field resolves to its :class:`dataclasses.Field`."""
    obj: Any = importlib.import_module(seam.module)
    for part in seam.qualname.split("."):
        if isinstance(obj, type) and part in getattr(obj, "__dataclass_fields__", {}):
            return obj.__dataclass_fields__[part]
        obj = getattr(obj, part)
    return obj


def problems() -> list[str]:
    """Seams the installed verl no longer provides as expected (empty when all hold)."""
    out = []
    for seam in SEAMS:
        where = f"{seam.module}.{seam.qualname}"
        try:
            obj = resolve(seam)
        except (ImportError, AttributeError) as e:
            out.append(f"{where} is missing ({e}); used by {seam.used_by}")
            continue
        if seam.params is None:
            continue
        try:
            params = tuple(inspect.signature(obj).parameters)
        except (TypeError, ValueError):
            out.append(f"{where}: no signature; used by {seam.used_by}")
            continue
        if params != seam.params:
            out.append(f"{where} takes {params}, expected {seam.params}; used by {seam.used_by}")
    return out
