"""Per-trajectory indicators under ``minio3/...`` keys, the masked share among them.

The agent loop records the episode in ``extra_fields``; the reward function copies
these indicators into its result dict, so verl's own reward-extra-info path carries
them (``val-aux/<data_source>/minio3/<key>/mean@N`` in validation, the generation
dumps) and :func:`batch_metrics` averages them for a training step.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from minio3_ext.core import TERMINATION_REASONS

__all__ = ["trajectory_indicators", "batch_metrics", "step_metrics", "dataproto_step_metrics", "INDICATOR_KEYS"]

INDICATOR_KEYS = tuple(f"minio3/{r}" for r in TERMINATION_REASONS) + (
    "minio3/masked", "minio3/unscorable", "minio3/turns", "minio3/zooms", "minio3/invalid_rate",
)


def trajectory_indicators(fields: Mapping[str, Any]) -> dict[str, float]:
    """Numbers for one trajectory; empty when it was not run by the minio3 agent loop."""
    reason = fields.get("termination_reason")
    if reason is None:
        return {}
    turns = float(fields.get("turns") or 0)
    out = {f"minio3/{r}": float(reason == r) for r in TERMINATION_REASONS}
    masked = fields["masked"] if "masked" in fields else fields.get("is_overturn") or fields.get("unscorable")
    out["minio3/masked"] = float(bool(masked))
    out["minio3/unscorable"] = float(bool(fields.get("unscorable")))
    out["minio3/turns"] = turns
    out["minio3/zooms"] = float(fields.get("zooms") or 0)
    out["minio3/invalid_rate"] = float(fields.get("invalid_actions") or 0) / turns if turns else 0.0
    return out


def batch_metrics(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Mean of each indicator over trajectories: shares per termination reason, masked
    share, mean turns and zooms, invalid-action rate. Rows from other loops are skipped."""
    sums: dict[str, float] = {}
    n = 0
    for row in rows:
        ind = trajectory_indicators(row or {})
        if not ind:
            continue
        n += 1
        for k, v in ind.items():
            sums[k] = sums.get(k, 0.0) + v
    return {k: v / n for k, v in sums.items()} if n else {}


def step_metrics(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Per-step scalars for verl's logger, over the trajectories trained on in a step.

    Each row: ``extra_fields`` (the agent loop's, with ``reward_extra_info`` when scored
    in-loop), ``score`` (the trajectory's reward), ``response_length`` (its response
    tokens) and ``live`` (a non-zero response mask). Beside :func:`batch_metrics`'
    shares: ``minio3/invalid_actions`` (mean count), ``minio3/judge_calls`` (trajectories
    sent to the judge in the step), ``minio3/live_share``, and score / response-length
    means over live rows only (verl's ``critic/score/mean`` and ``response_length/mean``
    count masked rows as 0 and full-length)."""
    rows = list(rows)
    fields = [dict(r.get("extra_fields") or {}) for r in rows]
    out = batch_metrics(fields)
    if not rows:
        return out
    live = [r for r in rows if r.get("live")]
    out["minio3/invalid_actions"] = sum(float(f.get("invalid_actions") or 0) for f in fields) / len(rows)
    out["minio3/judge_calls"] = float(sum(float((f.get("reward_extra_info") or {}).get("judged") or 0) for f in fields))
    out["minio3/live_share"] = len(live) / len(rows)
    out["minio3/live/score/mean"] = sum(float(r["score"]) for r in live) / len(live) if live else 0.0
    out["minio3/live/response_length/mean"] = (
        sum(float(r["response_length"]) for r in live) / len(live) if live else 0.0
    )
    return out


_FIELD_KEYS = ("termination_reason", "masked", "is_overturn", "unscorable", "turns", "zooms", "invalid_actions")


def dataproto_step_metrics(batch: Any) -> dict[str, float]:
    """:func:`step_metrics` for a ``DataProto`` as verl's ``AgentLoopWorker`` returns it
    (the legacy trainer's batch: extra fields and reward extra info as non-tensor
    columns, ``rm_scores`` and ``response_mask`` tensors). verl's legacy trainer has no
    hook to log them per step; call it from a trainer subclass or on the rollout dumps."""
    nt = batch.non_tensor_batch
    scores = batch.batch["rm_scores"].sum(-1).tolist()
    mask = batch.batch["response_mask"]
    live = (mask.sum(-1) > 0).tolist()
    width = mask.shape[-1]  # responses are right-padded to the batch's response width
    if "attention_mask" in batch.batch.keys():
        lengths = batch.batch["attention_mask"][:, -width:].sum(-1).tolist()
    else:
        lengths = [width] * len(scores)
    rows = []
    for i in range(len(scores)):
        fields = {k: nt[k][i] for k in _FIELD_KEYS if k in nt}
        if "judged" in nt:
            fields["reward_extra_info"] = {"judged": nt["judged"][i]}
        rows.append({"extra_fields": fields, "score": scores[i], "response_length": lengths[i], "live": live[i]})
    return step_metrics(rows)
