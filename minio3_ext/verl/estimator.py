"""``masked_grpo``: GRPO that leaves over-turn trajectories out of the gradient.

verl hands a registered estimator only the token rewards, the ``response_mask``, the
group ``index`` (uid) and the algorithm config. The agent loop zeroes the response
mask of every excluded trajectory, so "all-zero response mask" is the per-row flag.
Semantics are those of :func:`minio3_ext.core.masking.masked_group_advantages`
(the numpy reference); this is the same math vectorised in torch.

Config (all optional, under ``algorithm``)::

    algorithm.adv_estimator=masked_grpo
    algorithm.norm_adv_by_std_in_grpo=true            # false: Dr. GRPO (no std division)
    +algorithm.masked_grpo.include_masked_in_stats=false  # true: released-code behaviour

Any other ``algorithm.masked_grpo`` key is refused at the first advantage computation.

Run checks (both trainers hand the estimator ``config=self.config.algorithm``, a node
of the whole run config, so the first advantage computation can read the rest of it):
a ``seq-mean-*`` ``actor.loss_agg_mode`` is refused (verl divides by every row of the
mini-batch, masked ones included, so the live loss shrinks by the live share; verl's
loss sees no global live-row count that would make a rescale exact) unless
``+algorithm.masked_grpo.allow_seq_mean=true`` asks for that released-code loss, and so is
``algorithm.filter_groups.enable`` without minio3's live-row replay buffer (verl's
filter counts masked rows; the legacy trainer ignores the flag altogether).

``masked_vanilla`` (``actor_rollout_ref.actor.policy_loss.loss_mode=masked_vanilla``) is
verl's vanilla PPO clip loss whose token-mean denominator is at least 1, so a mini-batch
in which every row is masked gives loss 0 and zero gradient instead of a NaN loss.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
from verl.trainer.ppo.core_algos import compute_policy_loss_vanilla, register_adv_est, register_policy_loss

__all__ = [
    "NAME", "POLICY_LOSS", "compute_masked_grpo_advantage", "masked_grpo_scalars", "dense_group_ids", "live_rows",
    "check_run_config", "check_loss_agg_mode", "OPTIONS", "compute_policy_loss_masked_vanilla",
]

NAME = "masked_grpo"
POLICY_LOSS = "masked_vanilla"
#: Where minio3's live-row replay buffer is loaded from (``trainer.v1.sampler.custom_sampler.path``).
SAMPLER_PATH = "pkg://minio3_ext.verl.sampler"


def check_loss_agg_mode(mode: Any, allow_seq_mean: bool = False) -> None:
    """Refuse the loss aggregations that count masked rows (see the module docstring),
    unless ``algorithm.masked_grpo.allow_seq_mean`` asks for them (the released code's loss)."""
    if isinstance(mode, str) and mode.startswith("seq-mean") and not allow_seq_mean:
        raise ValueError(
            f"masked_grpo: actor_rollout_ref.actor.loss_agg_mode={mode} divides the loss by every row of the "
            "mini-batch, masked (over-turn / unscorable) rows included, so live rows are scaled down by the live "
            "share; verl 0.9.1 exposes no live-row count to rescale exactly. Use token-mean (the recipe's) or "
            "token-sum, or set +algorithm.masked_grpo.allow_seq_mean=true to reproduce the released code's loss."
        )


def _select(config: Any, key: str) -> Any:
    """``key`` of the run config ``config`` (the ``algorithm`` node) belongs to, else None."""
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import ConfigKeyError

    if not isinstance(config, DictConfig):
        return None
    try:
        return OmegaConf.select(config, ".." + key, default=None)
    except ConfigKeyError:  # a bare algorithm config: no run config above it
        return None


#: The keys of ``algorithm.masked_grpo``.
OPTIONS = ("allow_seq_mean", "include_masked_in_stats")


def check_run_config(config: Any) -> None:
    """Refuse run settings that would train something other than masked GRPO, and
    ``algorithm.masked_grpo`` keys it does not read (a misspelt option is not ignored)."""
    options = _config_get(config, NAME, {})
    keys = options.keys() if hasattr(options, "keys") else ()
    unknown = sorted(set(map(str, keys)) - set(OPTIONS))
    if unknown:
        raise ValueError(f"masked_grpo: unknown option algorithm.{NAME}.{unknown[0]}; valid keys: {list(OPTIONS)}")
    check_loss_agg_mode(_select(config, "actor_rollout_ref.actor.loss_agg_mode"),
                        allow_seq_mean=bool(_config_get(options, "allow_seq_mean", False)))
    filter_groups = _config_get(config, "filter_groups", None)
    if not (filter_groups is not None and _config_get(filter_groups, "enable", False)):
        return
    use_v1 = _select(config, "trainer.use_v1")
    if use_v1 is False:
        raise ValueError(
            "masked_grpo: algorithm.filter_groups.enable=true but verl's legacy trainer (trainer.use_v1=false) "
            "ignores it: no group would be dropped. Use the v1 trainer with minio3's live-row sampler "
            f"(trainer.v1.sampler.custom_sampler.path={SAMPLER_PATH}) or set algorithm.filter_groups.enable=false."
        )
    if use_v1 and _select(config, "trainer.v1.sampler.custom_sampler.path") != SAMPLER_PATH:
        raise ValueError(
            "masked_grpo: algorithm.filter_groups.enable=true with verl's built-in group filter, which counts masked "
            "rows and keeps groups that masking emptied of signal. Set "
            f"trainer.v1.sampler.custom_sampler.path={SAMPLER_PATH} (name=LiveGroupReplayBuffer, or "
            "LiveGroupReplayBufferAsync for the async trainer modes), as recipes/verl/masked_grpo.args does."
        )


@register_policy_loss(POLICY_LOSS)
def compute_policy_loss_masked_vanilla(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    config: Any = None,
    rollout_is_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """verl's vanilla clip loss; a global token count of 0 (every row masked) counts as 1."""
    info = getattr(config, "global_batch_info", None)
    if isinstance(info, dict) and info.get("batch_num_tokens") is not None and info["batch_num_tokens"] == 0:
        # ppo_loss rewrites this dict per micro-batch; the entropy / KL terms it adds read it too
        info["batch_num_tokens"] = 1
    return compute_policy_loss_vanilla(
        old_log_prob, log_prob, advantages, response_mask, loss_agg_mode=loss_agg_mode, config=config,
        rollout_is_weights=rollout_is_weights,
    )


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
    check_run_config(config)
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
