"""``MaskedGRPOTrainer``: TRL's ``GRPOTrainer`` with Mini-o3 over-turn masking (SPEC 3).

Swap the estimator by changing one import and one config class::

    from minio3_ext.trl import MaskedGRPOConfig, MaskedGRPOTrainer   # was: from trl import GRPOConfig, GRPOTrainer

Three small overrides, each calling TRL first:

- ``_generate``: after TRL's rollout (and tool loop), classify every trajectory
  (:func:`~minio3_ext.trl.termination.rollout_record`), log ``minio3/...`` metrics, and
  zero the ``tool_mask`` row of each masked trajectory. TRL multiplies that mask into
  the loss mask *and* derives ``num_items_in_batch`` (the ``dapo`` normaliser) from it,
  so masked rows contribute no loss tokens and no normaliser tokens.
- ``_calculate_rewards``: mark masked rows' rewards NaN. TRL already treats an all-NaN
  row as unscorable: it is left out of the group mean/std and its advantage is 0,
  which is exactly :func:`minio3_ext.core.masking.masked_group_advantages`.
- ``_generate_and_score_completions``: only with ``include_masked_in_stats`` (the
  released code's choice), zero masked rows' advantages after TRL normalised them
  with the masked rows inside the group statistics.

With ``mask_overturn=False`` nothing is changed: the numbers are stock GRPOTrainer's.
TRL's ``reward``/``rewards/*`` metrics then cover the live rows only; the masked share
is logged as ``minio3/masked_share``.
"""

from __future__ import annotations

from typing import Any

import torch
from trl import GRPOTrainer

from ..core.episode import TERMINATION_REASONS
from .config import MaskedGRPOConfig
from .environment import bind_conversations
from .rewards import propagate_unscorable
from .termination import rollout_record

__all__ = ["MaskedGRPOTrainer"]


class MaskedGRPOTrainer(GRPOTrainer):
    """GRPO whose over-turn trajectories leave the policy gradient. Use with :class:`MaskedGRPOConfig`."""

    _tag_names = ["trl", "grpo", "minio3", "masked-grpo"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, MaskedGRPOConfig):
            raise TypeError(f"MaskedGRPOTrainer needs args=MaskedGRPOConfig(...), got {type(self.args).__name__}")
        self._masked_reasons = frozenset(self.args.masked_reasons)
        self._live_local: torch.Tensor | None = None
        self._live_global: torch.Tensor | None = None
        self._masking_active = False
        self._check_environment_budgets()

    def _check_environment_budgets(self) -> None:
        """An environment episode config must agree with the trainer's turn and image budgets."""
        for pool in (getattr(self, "_environment_pool", None) or {}).values():
            config = getattr(pool[0], "config", None)
            if config is None or not hasattr(config, "max_turns"):
                continue
            for key in ("max_turns", "max_images"):
                if getattr(config, key) != getattr(self.args, key):
                    raise ValueError(
                        f"MaskedGRPOTrainer: environment EpisodeConfig.{key}={getattr(config, key)} differs from "
                        f"MaskedGRPOConfig.{key}={getattr(self.args, key)}; set both to the same budget"
                    )

    # -- rollout: classify, log, cut masked rows out of the loss mask ----------------
    def _generate(self, prompts: list):
        (prompt_ids, completion_ids, tool_mask, completions, logprobs,
         extra_fields, images, tool_images) = super()._generate(prompts)
        device = self.accelerator.device
        mode = "train" if self.model.training else "eval"
        stop_ids = {*self.eos_token_ids, self._tokenizer.pad_token_id}
        environments = self.environments or [None] * len(completion_ids)
        records = [
            rollout_record(messages, truncated=not ids or ids[-1] not in stop_ids,
                           max_tool_rounds=self.max_tool_calling_iterations, environment=env,
                           mask_truncated_text=self.args.mask_truncated_text)
            for messages, ids, env in zip(completions, completion_ids, environments, strict=True)
        ]
        local = torch.tensor(
            [[TERMINATION_REASONS.index(r["reason"]), r["turns"], r["zooms"], r["invalid_actions"]] for r in records],
            dtype=torch.float32, device=device,
        )
        stats = self.accelerator.gather(local)
        reason_idx = stats[:, 0].long()
        masked_idx = [TERMINATION_REASONS.index(r) for r in self._masked_reasons]
        masked_global = torch.isin(reason_idx, torch.tensor(masked_idx, dtype=torch.long, device=device))
        masked_share = masked_global.float().mean().item()
        guard = self.args.max_masked_share is not None and masked_share > self.args.max_masked_share
        self._masking_active = bool(self.args.mask_overturn and not guard)
        self._live_global = ~masked_global
        start = self.accelerator.process_index * len(completion_ids)
        self._live_local = self._live_global[start:start + len(completion_ids)]

        metrics = self._metrics[mode]
        for i, reason in enumerate(TERMINATION_REASONS):
            metrics[f"minio3/termination/{reason}"].append((reason_idx == i).float().mean().item())
        metrics["minio3/masked_share"].append(masked_share)
        metrics["minio3/turns_mean"].append(stats[:, 1].mean().item())
        metrics["minio3/zooms_mean"].append(stats[:, 2].mean().item())
        metrics["minio3/invalid_actions_mean"].append(stats[:, 3].mean().item())
        if self.args.max_masked_share is not None:
            metrics["minio3/guard_active"].append(float(guard))

        if self._masking_active and not bool(self._live_local.all()):
            if tool_mask is None:
                tool_mask = [[1] * len(ids) for ids in completion_ids]
            tool_mask = [
                row if live else [0] * len(row) for row, live in zip(tool_mask, self._live_local.tolist(), strict=True)
            ]
        return prompt_ids, completion_ids, tool_mask, completions, logprobs, extra_fields, images, tool_images

    # -- one turn per assistant message: environments see their rollout's messages -------
    def _tool_call_loop(self, prompts, prompt_ids, completion_ids, completions, *args, **kwargs):
        bind_conversations(self.environments, completions)
        return super()._tool_call_loop(prompts, prompt_ids, completion_ids, completions, *args, **kwargs)

    # -- baseline: masked rows become "unscorable" for TRL's nan-aware statistics -------
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        # a required reward (the judge) that could not score a row makes the whole row unscorable
        rewards_per_func = propagate_unscorable(rewards_per_func, self.reward_funcs)
        if self._masking_active and not self.args.include_masked_in_stats:
            rewards_per_func[~self._live_global.to(rewards_per_func.device)] = torch.nan
        return rewards_per_func

    # -- released-code variant: masked rows stayed in the statistics, advantage 0 -------
    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        if self._masking_active and self.args.include_masked_in_stats:
            # the whole group was the baseline, so every live row keeps its advantage
            # (a lone live row too, as in the core reference)
            output["advantages"] = output["advantages"] * self._live_local.to(output["advantages"].dtype)
        return output
