"""Dynamic sampling on **live** rows and per-step ``minio3/*`` metrics for verl's v1
trainer, plugged in through verl's own extension point::

    trainer.v1.sampler.custom_sampler.path=pkg://minio3_ext.verl.sampler
    trainer.v1.sampler.custom_sampler.name=LiveGroupReplayBuffer        # trainer_mode=sync
    #                                     LiveGroupReplayBufferAsync   # the async modes
    +trainer.v1.sampler.sampler_kwargs.min_live_std=1e-4
    +trainer.v1.sampler.sampler_kwargs.train_batch_size=${data.train_batch_size}
    algorithm.filter_groups.enable=true     # verl then fetches prompts one by one (exact refills)

verl's built-in filter drops a group only when the std of *all* its rewards is exactly
0, masked rows included, so a group with live rewards [1, 1] plus masked rows, or with a
single live row, is kept although ``masked_grpo`` gives it all-zero advantages. This
buffer drops a finished group when it has fewer than 2 live rows (non-zero response
mask) or the population std of its live rewards is below ``min_live_std`` (the released
code's 1e-4), and lets verl's own sampling loop refill the batch (sync: 2 prompts per
dropped group in flight, surplus discarded; async: one per dropped group).

Every training batch it hands out also carries :func:`minio3_ext.verl.metrics.step_metrics`
(termination shares, masked / unscorable / live shares, turns, zooms, invalid actions,
judge calls, live-only score and response length), which verl's trainer merges into the
step's metrics (``metrics.update(...)`` on the sampler's second return value) and logs
with its own logger. Caveat: verl's ``MetricsAggregator`` picks an aggregation by
substring, and ``minio3/`` contains ``min``: with ``parameter_sync_step > 1``
(``separate_async``) a step logs the minimum over its sub-steps instead of the mean. The
sync trainer (one sub-step per step, the recipe's) logs them exactly.

``sampler_kwargs``: ``min_live_std`` (1e-4), ``std_rows`` (``live``, the rule above; ``all``:
the released code's rule, see :func:`all_rows_group_verdict`), ``filter_groups`` (true;
false keeps the metrics without filtering), ``train_batch_size`` (sync only: prompts per
step, needed for the in-flight bound), ``max_inflight_gen_batches`` (1, as verl's).

``std_rows=all`` (``recipes/verl/masked_grpo_released.args``) is the released code's
dynamic sampling (Mini-o3 @8654dbf, ``function_tools.get_valid_mask``, called with no
exceed mask): a group is dropped when the sample std (Bessel-corrected, as ``torch.std``)
of the rewards of *all* its rows, over-turn rows included, is below ``min_live_std``; a
group with one row (std undefined) is kept. A group of 4 correct and 12 over-turn rows is
then kept, and with ``include_masked_in_stats`` its correct rows get advantage +1.68; the
live rule drops it (its live rewards are all 1). Not reproduced: the released code also
drops every group in which a judge call failed; here such rows are masked (unscorable).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Mapping

import numpy as np
import transfer_queue as tq
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer, ReplayBufferAsync

from .metrics import step_metrics

__all__ = ["LiveGroupReplayBuffer", "LiveGroupReplayBufferAsync", "DEFAULT_MIN_LIVE_STD", "STD_ROWS",
           "live_group_verdict", "all_rows_group_verdict", "group_verdict"]

DEFAULT_MIN_LIVE_STD = 1e-4
#: The value verl's sampling loop keys its filtered-group diagnostic by, for groups
#: dropped because masking left fewer than 2 live rows.
NO_LIVE_PAIR = -1.0
#: ``sampler_kwargs.std_rows``: whose rewards the group std is taken over (the first is the default).
STD_ROWS = ("live", "all")
_OPTIONS = {"min_live_std", "std_rows", "filter_groups", "train_batch_size", "max_inflight_gen_batches"}
_METRIC_FIELDS = ["extra_fields", "rm_scores", "response_mask"]


def live_group_verdict(scores: list[float], live: list[bool], min_live_std: float) -> float | None:
    """``None`` to keep a group; else the value logged for a dropped one (the shared live
    reward, or :data:`NO_LIVE_PAIR` when fewer than 2 rows are live)."""
    values = [s for s, ok in zip(scores, live) if ok]
    if len(values) < 2:
        return NO_LIVE_PAIR
    if float(np.std(values)) < min_live_std:
        return float(np.mean(values))
    return None


def all_rows_group_verdict(scores: list[float], min_std: float) -> float | None:
    """The released rule: ``None`` to keep a group; else its mean reward (logged for a dropped
    one). Dropped when the sample std (ddof 1) of every row's reward, masked rows included, is
    below ``min_std``; a single row has no std and is kept (released: NaN < 1e-4 is false)."""
    if len(scores) < 2:
        return None
    if float(np.std(scores, ddof=1)) < min_std:
        return float(np.mean(scores))
    return None


def group_verdict(scores: list[float], live: list[bool], min_std: float, std_rows: str = STD_ROWS[0]) -> float | None:
    """The verdict of the rule ``std_rows`` names (see :data:`STD_ROWS`)."""
    if std_rows == "all":
        return all_rows_group_verdict(scores, min_std)
    return live_group_verdict(scores, live, min_std)


def _check_run(sampler_kwargs: Any) -> None:
    """At trainer construction (before any worker starts): the run checks ``masked_grpo``
    would otherwise make at its first advantage computation. ``sampler_kwargs`` is the
    ``trainer.v1.sampler.sampler_kwargs`` node of the run config verl hands the buffer."""
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import ConfigKeyError

    from .estimator import NAME, check_run_config

    if not isinstance(sampler_kwargs, DictConfig):
        return
    try:
        algorithm = OmegaConf.select(sampler_kwargs, ".....algorithm", default=None)
    except ConfigKeyError:  # not inside a run config
        return
    if algorithm is not None and algorithm.get("adv_estimator") == NAME:
        check_run_config(algorithm)


def _options(sampler_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    _check_run(sampler_kwargs)
    opts = dict(sampler_kwargs or {})
    unknown = sorted(set(opts) - _OPTIONS)
    if unknown:
        raise ValueError(
            f"trainer.v1.sampler.sampler_kwargs: unknown option(s) {unknown} for the minio3 sampler; "
            f"expected some of {sorted(_OPTIONS)}"
        )
    min_std = float(opts.get("min_live_std", DEFAULT_MIN_LIVE_STD))
    if min_std < 0:
        raise ValueError(f"trainer.v1.sampler.sampler_kwargs.min_live_std must be >= 0, got {min_std}")
    opts["min_live_std"] = min_std
    rows = opts.get("std_rows", STD_ROWS[0])
    if rows not in STD_ROWS:
        raise ValueError(f"trainer.v1.sampler.sampler_kwargs.std_rows must be one of {list(STD_ROWS)}, got {rows!r}")
    opts["std_rows"] = rows
    return opts


class _LiveGroups:
    """Shared by the sync and async buffers: the group verdict and the step metrics."""

    min_live_std: float
    std_rows: str

    def _setup_live(self, opts: dict[str, Any]) -> None:
        self.min_live_std = opts["min_live_std"]
        self.std_rows = opts["std_rows"]
        self._live_cache: dict[str, dict[str, float | None]] = defaultdict(dict)

    # verl calls this from its sampling loop (both modes) to find groups to evict
    def _dapo_filtered_keys(self, partition_id: str) -> tuple[set[str], Counter]:
        if partition_id == "val" or self.filter_groups_metric is None:
            return set(), Counter()
        finished = self.finished_keys[partition_id]
        cache = self._live_cache[partition_id]
        for uid in cache.keys() - finished:
            del cache[uid]
        new = finished - cache.keys()
        keys = [k for k in self.partitions[partition_id] if k.split("_")[0] in new]
        scores: dict[str, list[float]] = defaultdict(list)
        live: dict[str, list[bool]] = defaultdict(list)
        if keys:
            data = tq.kv_batch_get(keys=keys, partition_id=partition_id, select_fields=["rm_scores", "response_mask"])
            for key, rm, mask in zip(keys, data["rm_scores"], data["response_mask"], strict=True):
                uid = key.split("_")[0]
                scores[uid].append(float(rm.sum().item()))
                live[uid].append(bool(mask.sum().item() > 0))
        for uid in new:  # a group without trajectories has no live row either
            cache[uid] = group_verdict(scores[uid], live[uid], self.min_live_std, self.std_rows)
        dropped = {uid: v for uid, v in cache.items() if v is not None}
        return set(dropped), Counter(dropped.values())

    def _with_metrics(self, partition_id: str, result):
        batch, metrics = result
        if partition_id != "val" and batch.keys:
            metrics = dict(metrics)
            metrics.update(self.batch_step_metrics(batch.keys, partition_id))
        return batch, metrics

    @staticmethod
    def batch_step_metrics(keys: list[str], partition_id: str) -> dict[str, float]:
        data = tq.kv_batch_get(keys=list(keys), partition_id=partition_id, select_fields=_METRIC_FIELDS)
        rows = []
        for extra, rm, mask in zip(data["extra_fields"], data["rm_scores"], data["response_mask"], strict=True):
            extra = getattr(extra, "data", extra)
            rows.append({"extra_fields": extra if isinstance(extra, Mapping) else {},
                         "score": float(rm.sum().item()), "response_length": int(mask.numel()),
                         "live": bool(mask.sum().item() > 0)})
        return step_metrics(rows)


class LiveGroupReplayBuffer(_LiveGroups, ReplayBuffer):
    """verl's sync ``ReplayBuffer`` with the live-row group filter and ``minio3/*`` metrics."""

    def __init__(self, trainer_mode, trainer_config, max_off_policy_threshold, max_off_policy_strategy,
                 sampler_kwargs, poll_interval: float = 2.0, refill_fn=None, **kwargs: Any):
        opts = _options(sampler_kwargs)
        enable = bool(opts.get("filter_groups", True))
        if enable and not opts.get("train_batch_size"):
            raise ValueError(
                "LiveGroupReplayBuffer: set +trainer.v1.sampler.sampler_kwargs.train_batch_size=${data.train_batch_size} "
                "(the sync sampler bounds in-flight refills in train batches)"
            )
        self._setup_live(opts)
        super().__init__(
            trainer_mode, trainer_config, max_off_policy_threshold, max_off_policy_strategy, sampler_kwargs,
            poll_interval=poll_interval, refill_fn=refill_fn,
            filter_groups_metric="minio3_live_std" if enable else None,
            train_batch_size=opts.get("train_batch_size"), gen_batch_size=1,
            max_inflight_gen_batches=int(opts.get("max_inflight_gen_batches", 1)),
        )

    def sample(self, global_steps: int, partition_id: str, batch_size: int):
        return self._with_metrics(partition_id, super().sample(global_steps, partition_id, batch_size))


class LiveGroupReplayBufferAsync(_LiveGroups, ReplayBufferAsync):
    """verl's async ``ReplayBufferAsync`` with the live-row group filter and ``minio3/*`` metrics."""

    def __init__(self, trainer_mode, trainer_config, max_off_policy_threshold, max_off_policy_strategy,
                 sampler_kwargs, poll_interval: float = 2.0, refill_fn=None, **kwargs: Any):
        opts = _options(sampler_kwargs)
        self._setup_live(opts)
        super().__init__(
            trainer_mode, trainer_config, max_off_policy_threshold, max_off_policy_strategy, sampler_kwargs,
            poll_interval=poll_interval, refill_fn=refill_fn,
            filter_groups_metric="minio3_live_std" if bool(opts.get("filter_groups", True)) else None,
        )

    def sample(self, global_steps: int, partition_id: str, batch_size: int):
        return self._with_metrics(partition_id, super().sample(global_steps, partition_id, batch_size))
