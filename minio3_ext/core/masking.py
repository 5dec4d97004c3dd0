"""Masked-GRPO advantage math, vectorised numpy reference.

Over-turn trajectories are *excluded*: advantage 0 and no say in their group's
baseline (unless ``include_masked_in_stats``, the released code's behaviour). With
nothing masked the result equals verl's ``grpo`` estimator: unbiased std, a lone
row has mean 0 and std 1. The torch adapters mirror this function and are tested
against it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["masked_group_advantages", "group_ids"]


def group_ids(index) -> tuple[np.ndarray, int]:
    """Map arbitrary group labels (uids) to dense ``0..G-1`` ids."""
    _, inverse = np.unique(np.asarray(index, dtype=object).astype(str), return_inverse=True)
    inverse = inverse.reshape(-1)
    return inverse, int(inverse.max(initial=-1)) + 1


def masked_group_advantages(
    scores,
    index,
    live,
    *,
    include_masked_in_stats: bool = False,
    norm_by_std: bool = True,
    epsilon: float = 1e-6,
) -> np.ndarray:
    """Per-trajectory advantages.

    Args:
        scores: ``(N,)`` scalar rewards.
        index: ``(N,)`` group label per row (the prompt uid).
        live: ``(N,)`` bool, False for masked (over-turn) rows.
        include_masked_in_stats: keep masked rows inside the group mean/std.
        norm_by_std: divide by the group std (GRPO) or not (Dr. GRPO).
        epsilon: added to the std.

    With masked rows left out of the statistics, a group that masking cut below 2
    live rows has no baseline and gets advantage 0 everywhere. With
    ``include_masked_in_stats`` the baseline comes from the whole group, as in the
    released code, so its live rows keep their advantage.

    >>> masked_group_advantages([1.0, 0.0, 0.0], ["a", "a", "a"], [True, True, False]).round(4).tolist()
    [0.7071, -0.7071, 0.0]
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    live = np.asarray(live, dtype=bool).reshape(-1)
    gid, num_groups = group_ids(index)
    if not len(scores) == len(gid) == len(live):
        raise ValueError(f"masked_group_advantages: scores, index and live must have one entry per row, "
                         f"got {len(scores)}, {len(gid)} and {len(live)}")
    in_stats = np.ones_like(live) if include_masked_in_stats else live
    w = in_stats.astype(np.float64)
    count = np.bincount(gid, weights=w, minlength=num_groups)
    total = np.bincount(gid, weights=w * scores, minlength=num_groups)
    mean = np.divide(total, count, out=np.zeros(num_groups), where=count > 0)
    dev = (scores - mean[gid]) * w
    var = np.divide(np.bincount(gid, weights=dev * dev, minlength=num_groups), count - 1,
                    out=np.zeros(num_groups), where=count > 1)
    std = np.sqrt(var)
    # verl's rule for a lone row: mean 0, std 1
    lone = count == 1
    mean[lone], std[lone] = 0.0, 1.0
    adv = scores - mean[gid]
    if norm_by_std:
        adv = adv / (std[gid] + epsilon)
    live_count = np.bincount(gid, weights=live.astype(np.float64), minlength=num_groups)
    size = np.bincount(gid, minlength=num_groups)
    cut_below_two = (live_count < 2) & (live_count < size) & (not include_masked_in_stats)
    return np.where(live & ~cut_below_two[gid], adv, 0.0)
