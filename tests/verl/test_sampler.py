"""The live-row group filter and the per-step ``minio3/*`` metrics through verl's real
v1 code: the buffer is built by ``PPOTrainer._build_replay_buffer`` from the recipe's
overrides and sampled with verl's own sync / async sampling loops over a real
TransferQueue (local Ray). Only the trainer's prompt dispatch is played by the test:
its ``refill_fn`` writes finished groups the way ``AgentLoopWorkerTQ`` does."""

from __future__ import annotations

import os
import threading
from types import MethodType, SimpleNamespace

import numpy as np
import pytest
import ray
import torch
import transfer_queue as tq
import verl
from hydra import compose, initialize_config_dir
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
from verl.trainer.ppo.v1.trainer_base import PPOTrainer
from verl.trainer.ppo.v1.utils import MetricsAggregator
from verl.utils.tensordict_utils import list_of_dict_to_tensordict

from minio3_ext.verl.recipe import read_overrides
from minio3_ext.verl.sampler import (LiveGroupReplayBuffer, LiveGroupReplayBufferAsync, all_rows_group_verdict,
                                     group_verdict, live_group_verdict)

from test_recipes import ENV, RECIPES



@pytest.fixture(scope="module")
def transfer_queue():
    from omegaconf import OmegaConf

    ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
    tq.init(OmegaConf.create({"backend": {"SimpleStorage": {"num_data_storage_units": 1}}}))
    yield tq
    tq.close()
    ray.shutdown()


def _put_group(uid: str, rows: list[tuple[float, bool]], step: int = 1, judged: float = 1.0) -> None:
    """One finished prompt group, stored as AgentLoopWorkerTQ stores it."""
    fields, tags = [], []
    for session, (score, live) in enumerate(rows):
        n = 4
        rm = torch.zeros(n)
        rm[-1] = score
        fields.append({
            "prompts": torch.ones(3, dtype=torch.int64), "responses": torch.ones(n, dtype=torch.int64),
            "response_mask": torch.full((n,), int(live), dtype=torch.int64), "rm_scores": rm,
            "extra_fields": {"termination_reason": "answered" if live else "turn_limit", "masked": not live,
                             "unscorable": False, "turns": 2 if live else 6, "zooms": 1 if live else 5,
                             "invalid_actions": 0 if live else 1,
                             "reward_extra_info": {"score": score, "judged": judged if live else 0.0}},
        })
        tags.append({"status": "success", "global_steps": step, "min_global_steps": step, "max_global_steps": step})
    keys = [f"{uid}_{s}_0" for s in range(len(rows))]
    tq.kv_batch_put(keys=keys, partition_id="train", fields=list_of_dict_to_tensordict(fields), tags=tags)
    tq.kv_batch_put(keys=[uid], partition_id="train", tags=[{"is_prompt": True, "status": "finished", "global_steps": step}])


def _clear():
    listing = tq.kv_list() or {}
    for partition, items in listing.items():
        if items:
            tq.kv_clear(partition_id=partition, keys=list(items))


def _cfg(extra=(), files=("masked_grpo.args",)):
    cfgdir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
    overrides = [o for f in files for o in read_overrides(RECIPES / f, ENV)
                 if o.split("=", 1)[0].lstrip("+").startswith(("trainer.v1", "algorithm.filter_groups"))]
    with initialize_config_dir(config_dir=cfgdir, version_base=None):
        return compose("ppo_trainer", overrides=[*overrides, "data.train_batch_size=2", *extra])


# group masking emptied of signal: live [1, 1] + 2 masked rows; verl's filter keeps it (std of all > 0)
EMPTIED = [(1.0, True), (1.0, True), (0.0, False), (0.0, False)]
ONE_LIVE = [(1.0, True), (0.0, False), (0.0, False), (0.0, False)]
MIXED = [(1.0, True), (0.0, True), (1.0, True), (0.0, True)]
REFILL = [(0.0, True), (1.0, True), (1.0, True), (0.0, False)]


def test_verdicts():
    assert live_group_verdict([1, 1, 0, 0], [True, True, False, False], 1e-4) == 1.0
    assert live_group_verdict([1, 0], [True, False], 1e-4) == -1.0
    assert live_group_verdict([1, 0, 0], [True, True, False], 1e-4) is None
    assert live_group_verdict([0.5, 0.50001], [True, True], 1e-4) == pytest.approx(0.500005)  # std 5e-6 < 1e-4


# the group: 4 correct rows and 12 over-turn rows (masked, reward 0)
FOUR_OF_16 = [(1.0, True)] * 4 + [(0.0, False)] * 12


def released_rule_drops(rewards: list[float]) -> bool:
    """Test oracle, transcribed from the released code (Mini-o3 @8654dbf,
    verl/workers/rollout/vllm_rollout/function_tools.py, get_valid_mask, called from
    vllm_async_engine.py with exceed_mask=None): every row of the uid, then torch's std."""
    uid_rewards = torch.tensor(rewards, dtype=torch.float32)
    exceed_mask = None
    if exceed_mask is not None:  # never taken: the caller passes None
        uid_rewards = uid_rewards[~exceed_mask]
    return uid_rewards.std().item() < 1e-4


def test_released_rule_agrees_with_its_transcription():
    scores = [s for s, _ in FOUR_OF_16]
    live = [ok for _, ok in FOUR_OF_16]
    assert released_rule_drops(scores) is False and all_rows_group_verdict(scores, 1e-4) is None  # kept
    assert group_verdict(scores, live, 1e-4, "all") is None
    # the default live-row rule drops it: its live rewards are all 1
    assert live_group_verdict(scores, live, 1e-4) == 1.0 and group_verdict(scores, live, 1e-4) == 1.0
    rng = np.random.default_rng(0)
    cases = [[1.0], [0.0, 0.0], [1.0, 1.0, 1.0], [0.5, 0.50001], [0.5, 0.5004], [0.0] * 16, [1.0] + [0.0] * 15]
    cases += [rng.choice([0.0, 0.5, 1.0], size=int(rng.integers(1, 17))).tolist() for _ in range(300)]
    cases += [(0.3 + rng.normal(0, 10 ** rng.uniform(-7, -2), size=int(rng.integers(2, 9)))).tolist() for _ in range(300)]
    for rewards in cases:
        rows_live = rng.random(len(rewards)) < 0.5
        verdict = group_verdict(rewards, rows_live.tolist(), 1e-4, "all")
        assert (verdict is not None) == released_rule_drops(rewards), rewards


def test_unknown_std_rows_is_named():
    with pytest.raises(ValueError, match=r"std_rows must be one of \['live', 'all'\], got 'some'"):
        LiveGroupReplayBuffer("sync", {}, None, "drop", {"std_rows": "some", "train_batch_size": 2}, refill_fn=lambda n: n)


def _build(cfg, refill):
    """verl's own ``PPOTrainer._build_replay_buffer`` on a trainer holding only what it reads."""
    trainer = SimpleNamespace(config=cfg, trainer_mode=cfg.trainer.v1.trainer_mode, _add_prompts_to_generate=refill)
    trainer._resolve_filter_groups_metric = MethodType(PPOTrainer._resolve_filter_groups_metric, trainer)
    return PPOTrainer._build_replay_buffer(trainer)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sync", "colocate_async"])
def test_live_filter_refills_through_verls_sampling_loop(transfer_queue, mode):
    _clear()
    refills = []

    def refill(n):  # the trainer dispatches n fresh prompts; they finish before the next poll
        for i in range(n):
            _put_group(f"refill{len(refills)}x{i}", REFILL, step=2)  # newer: sampled after "mixed"
        refills.append(n)
        return n

    name = "LiveGroupReplayBuffer" if mode == "sync" else "LiveGroupReplayBufferAsync"
    buf = _build(_cfg([f"trainer.v1.trainer_mode={mode}", f"trainer.v1.sampler.custom_sampler.name={name}"]), refill)
    assert type(buf) is (LiveGroupReplayBuffer if mode == "sync" else LiveGroupReplayBufferAsync)
    assert buf.min_live_std == 1e-4
    buf.poll_interval = 0.01
    _put_group("emptied", EMPTIED)
    _put_group("onelive", ONE_LIVE)
    _put_group("mixed", MIXED)
    batch, metrics = buf.sample(global_steps=1, partition_id="train", batch_size=2)
    uids = sorted({k.split("_")[0] for k in batch.keys})
    assert uids[0] == "mixed" and uids[1].startswith("refill0x")  # signal-free groups dropped, batch refilled
    assert len(batch.keys) == 8
    # verl's refill policy: one prompt per dropped group (async); sync asks 2 per group, bounded
    # by one train batch in flight
    assert refills and refills[0] == 2
    assert metrics["training/filter_groups/evicted_samples"] >= 2
    # the step's minio3/* metrics ride along with verl's own sampler metrics
    assert metrics["minio3/masked"] == pytest.approx(1 / 8) and metrics["minio3/live_share"] == pytest.approx(7 / 8)
    assert metrics["minio3/turn_limit"] == pytest.approx(1 / 8) and metrics["minio3/answered"] == pytest.approx(7 / 8)
    assert metrics["minio3/judge_calls"] == 7.0 and metrics["minio3/invalid_actions"] == pytest.approx(1 / 8)
    assert metrics["minio3/live/score/mean"] == pytest.approx(4 / 7)  # verl's critic/score/mean would say 4/8
    assert metrics["minio3/turns"] == pytest.approx((7 * 2 + 6) / 8)
    # PPOTrainer.step passes them through verl's MetricsAggregator into the logged dict
    agg = MetricsAggregator()
    agg.add_step_metrics(metrics, sample_count=len(batch.keys))
    logged = agg.get_aggregated_metrics()
    assert all(logged[k] == pytest.approx(v) for k, v in metrics.items() if k.startswith("minio3/"))


@pytest.mark.slow
def test_verls_builtin_filter_keeps_the_group_masking_emptied(transfer_queue):
    # the baseline: same groups, verl's own buffer (algorithm.filter_groups.metric=reward)
    _clear()
    cfg = _cfg(["trainer.v1.sampler.custom_sampler.path=null", "trainer.v1.sampler.custom_sampler.name=null",
                "trainer.v1.sampler.sampler_kwargs={}"])
    buf = _build(cfg, lambda n: n)
    assert type(buf) is ReplayBuffer
    buf.poll_interval = 0.01
    _put_group("emptied", EMPTIED)
    _put_group("mixed", MIXED)
    batch, metrics = buf.sample(global_steps=1, partition_id="train", batch_size=2)
    assert sorted({k.split("_")[0] for k in batch.keys}) == ["emptied", "mixed"]
    assert not any(k.startswith("minio3/") for k in metrics)


def test_unknown_sampler_option_is_named():
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['min_std'\]"):
        LiveGroupReplayBuffer("sync", {}, None, "drop", {"min_std": 1e-4, "train_batch_size": 2}, refill_fn=lambda n: n)


def test_seq_mean_is_refused_when_verl_builds_the_buffer():
    # before any worker starts: the trainer constructs its replay buffer in __init__
    cfg = _cfg(["algorithm.adv_estimator=masked_grpo", "actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-mean"])
    with pytest.raises(ValueError, match="loss_agg_mode=seq-mean-token-mean divides the loss"):
        _build(cfg, lambda n: n)


@pytest.mark.slow
@pytest.mark.parametrize("released", [False, True])
def test_released_rule_keeps_the_four_of_sixteen_group_through_verls_sampling_loop(transfer_queue, released):
    _clear()
    files = ("masked_grpo.args", "masked_grpo_released.args") if released else ("masked_grpo.args",)
    buf = _build(_cfg(files=files), lambda n: n)
    assert buf.std_rows == ("all" if released else "live")
    buf.poll_interval = 0.01
    _put_group("fourof16", FOUR_OF_16)
    _put_group("mixed", MIXED)
    _put_group("refill", REFILL)
    # the released rule keeps all three groups, the live-row rule drops the 4-of-16 one: ask
    # for as many groups as the rule keeps, so the batch is the same whatever order the store
    # hands finished groups back in
    # (in a thread: a rule that dropped the group would leave the sample waiting for a third)
    got: list = []
    worker = threading.Thread(target=lambda: got.append(buf.sample(
        global_steps=1, partition_id="train", batch_size=3 if released else 2)), daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert got, "the sampler kept fewer groups than the rule keeps (still waiting after 120 s)"
    batch, _ = got[0]
    uids = sorted({k.split("_")[0] for k in batch.keys})
    assert uids == (["fourof16", "mixed", "refill"] if released else ["mixed", "refill"])
