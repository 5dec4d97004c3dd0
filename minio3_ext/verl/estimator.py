"""``masked_grpo``: GRPO that leaves over-turn trajectories out of the gradient (SPEC 3).

verl hands a registered estimator only the token rewards, the ``response_mask``, the
group ``index`` (uid) and the algorithm config. The agent loop zeroes the response
mask of every excluded trajectory, so "all-zero response mask" is the per-row flag.
Semantics are those of :func:`minio3_ext.core.masking.masked_group_advantages`
(the numpy reference); this is the same math vectorised in torch.

Config (all optional, under ``algorithm``)::

    algorithm.adv_estimator=masked_grpo
    algorithm.norm_adv_by_std_in_grpo=true            # false: Dr. GRPO (no std division)
    +algorithm.masked_grpo.include_masked_in_stats=false  # true: released-code behaviour
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
from verl.trainer.ppo.core_algos import register_adv_est

__all__ = ["NAME", "compute_masked_grpo_advantage", "masked_grpo_scalars", "dense_group_ids", "live_rows"]

NAME = "masked_grpo"


def dense_group_ids(index: Any, device: torch.device | str | None = None) -> tuple[torch.Tensor, int]:
    """Map group labels (uid strings, ints, tensors) to dense ``0..G-1`` ids.

    A dict pass over Python labels: several times faster than sorting an object array
    (``np.unique``) at verl batch sizes.
    """
    if isinstance(index, torch.Tensor):
        index = index.reshape(-1).tolist()
    elif isinstance(index, np.ndarray):
        index = index.reshape(-1).tolist()
    codes: dict[Any, int] = {}
    ids = [codes.setdefault(label, len(codes)) for label in index]
    return torch.tensor(ids, dtype=torch.long, device=device), len(codes)


def live_rows(response_mask: torch.Tensor) -> torch.Tensor:
    """True for rows that take part in the gradient (any response token unmasked)."""
    # a sum is several times faster than ``any`` on float masks on CPU
    return response_mask.reshape(response_mask.shape[0], -1).sum(dim=-1) > 0


def _config_get(config: Any, key: str, default: Any) -> Any:
    if config is None:
        return default
    getter = getattr(config, "get", None)
    value = getter(key, default) if getter is not None else getattr(config, key, default)
    return default if value is None else value


def masked_grpo_scalars(
    scores: torch.Tensor,
    gid: torch.Tensor,
    num_groups: int,
    live: torch.Tensor,
    *,
    include_masked_in_stats: bool = False,
    norm_by_std: bool = True,
    epsilon: float = 1e-6,
) -> torch.Tensor:
    """Per-row advantage scalars; see the numpy reference for the exact rules."""
    scores = scores.to(torch.float32)
    livef = live.to(torch.float32)
    w = torch.ones_like(scores) if include_masked_in_stats else livef
    zeros = torch.zeros(num_groups, dtype=torch.float32, device=scores.device)
    count = zeros.index_add(0, gid, w)
    mean = zeros.index_add(0, gid, w * scores) / count.clamp_min(1.0)
    dev = (scores - mean[gid]) * w
    var = zeros.index_add(0, gid, dev * dev) / (count - 1.0).clamp_min(1.0)
    std = var.sqrt()
    lone = count == 1.0  # verl's rule for a lone row: mean 0, std 1
    mean = torch.where(lone, 0.0, mean)
    std = torch.where(lone, 1.0, std)
    adv = scores - mean[gid]
    if norm_by_std:
        adv = adv / (std[gid] + epsilon)
    if include_masked_in_stats:  # the whole group is the baseline, as in the released code
        return torch.where(live, adv, 0.0)
    # masking cut the group below 2 live rows: no baseline left
    live_count = zeros.index_add(0, gid, livef)
    size = zeros.index_add(0, gid, torch.ones_like(scores))
    cut_below_two = (live_count < 2.0) & (live_count < size)
    return torch.where(live & ~cut_below_two[gid], adv, 0.0)


@register_adv_est(NAME)
def compute_masked_grpo_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray,
    epsilon: float = 1e-6,
    norm_adv_by_std_in_grpo: Optional[bool] = None,
    config: Any = None,
    **_: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Outcome-only GRPO advantages with over-turn rows (all-zero mask) excluded.

    Equals verl's ``grpo`` when no row is masked. ``norm_adv_by_std_in_grpo`` comes
    from the algorithm config (verl's generic estimator path does not pass it).
    """
    if index is None:
        raise ValueError("masked_grpo needs the group index: the batch has no 'uid' column")
    if norm_adv_by_std_in_grpo is None:
        norm_adv_by_std_in_grpo = bool(_config_get(config, "norm_adv_by_std_in_grpo", True))
    options = _config_get(config, NAME, {})
    include = bool(_config_get(options, "include_masked_in_stats", False))
    with torch.no_grad():
        scores = token_level_rewards.sum(dim=-1)
        gid, num_groups = dense_group_ids(index, device=scores.device)
        if gid.numel() != scores.numel():
            raise ValueError(f"masked_grpo: index has {gid.numel()} labels for {scores.numel()} rows")
        scalars = masked_grpo_scalars(
            scores, gid, num_groups, live_rows(response_mask),
            include_masked_in_stats=include, norm_by_std=norm_adv_by_std_in_grpo, epsilon=epsilon,
        )
        advantages = scalars.unsqueeze(-1) * response_mask
    return advantages, advantages
