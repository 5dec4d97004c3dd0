"""``masked_grpo`` through verl's real advantage paths (legacy ``compute_advantage`` and
the v1 trainer's ``compute_advantage_for_multi_trajectories``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from verl import DataProto
from verl.trainer.config import AlgoConfig
from verl.trainer.ppo.ray_trainer import compute_advantage
from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

from minio3_ext.core.masking import masked_group_advantages
from minio3_ext.verl.estimator import compute_masked_grpo_advantage, dense_group_ids

L = 5


def _batch(scores, uids, live, lengths=None):
    n = len(scores)
    lengths = lengths or [L] * n
    mask = torch.zeros(n, L)
    rewards = torch.zeros(n, L)
    for i, (s, ok, ln) in enumerate(zip(scores, live, lengths)):
        if ok:
            mask[i, :ln] = 1.0
        rewards[i, ln - 1] = s  # verl puts the outcome reward on the last response token
    return DataProto.from_dict(
        tensors={"token_level_rewards": rewards, "response_mask": mask},
        non_tensors={"uid": np.array(uids, dtype=object)},
    )


def _algo(include=False, norm=True):
    return OmegaConf.create({"adv_estimator": "masked_grpo", "norm_adv_by_std_in_grpo": norm,
                             "masked_grpo": {"include_masked_in_stats": include}})


def _row_adv(data):
    adv = data.batch["advantages"]
    mask = data.batch["response_mask"]
    # every unmasked token carries the row's scalar; masked rows must be all zero
    scal = adv[:, 0].clone()
    assert torch.allclose(adv, scal[:, None] * mask)
    return scal.numpy()


def _random_case(seed, n_groups=7, size=4, masked_share=0.0):
    rng = np.random.default_rng(seed)
    uids = [f"uid-{g}" for g in range(n_groups) for _ in range(size)] + ["lone"]
    rng.shuffle(uids)
    # discrete scores: exact ties give std 0 in both float32 and float64 (no near-ties
    # whose tiny std would amplify float32 rounding)
    scores = rng.integers(0, 4, len(uids)) / 3.0
    live = rng.random(len(uids)) >= masked_share
    lengths = rng.integers(1, L + 1, len(uids)).tolist()
    return scores.tolist(), uids, live.tolist(), lengths


@pytest.mark.parametrize("norm", [True, False])
def test_equals_verl_grpo_when_nothing_is_masked_legacy_path(norm):
    scores, uids, live, lengths = _random_case(0)
    ours = compute_advantage(_batch(scores, uids, live, lengths), "masked_grpo",
                             config=_algo(norm=norm), norm_adv_by_std_in_grpo=norm)
    ref = compute_advantage(_batch(scores, uids, live, lengths), "grpo", norm_adv_by_std_in_grpo=norm)
    torch.testing.assert_close(ours.batch["advantages"], ref.batch["advantages"], atol=1e-5, rtol=1e-5)
    assert ours.batch["advantages"].abs().sum() > 0


def test_equals_verl_grpo_through_v1_trainer_path():
    scores, uids, live, lengths = _random_case(1)
    keys = [f"{u}_{i}_0" for i, u in enumerate(uids)]  # v1 keys: {uid}_{session}_{index}
    ours = compute_advantage_for_multi_trajectories(_batch(scores, uids, live, lengths), keys, "masked_grpo",
                                                    config=_algo())
    ref = compute_advantage_for_multi_trajectories(_batch(scores, uids, live, lengths), keys,
                                                   __import__("verl").trainer.ppo.core_algos.AdvantageEstimator.GRPO,
                                                   config=AlgoConfig(adv_estimator="grpo"))
    torch.testing.assert_close(ours.batch["advantages"], ref.batch["advantages"], atol=1e-5, rtol=1e-5)


def test_norm_flag_is_read_from_the_algorithm_dataclass_config():
    scores, uids, live, lengths = [1.0, 0.0, 0.0], ["a"] * 3, [True] * 3, None
    out = compute_advantage(_batch(scores, uids, live), "masked_grpo",
                            config=AlgoConfig(adv_estimator="masked_grpo", norm_adv_by_std_in_grpo=False))
    np.testing.assert_allclose(_row_adv(out), [2 / 3, -1 / 3, -1 / 3], atol=1e-6)


# group a: 4 rows, the last one over-turn; group b: 2 rows, one over-turn; group c untouched
HAND = dict(
    scores=[1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0],
    uids=["a", "a", "a", "a", "b", "b", "c", "c"],
    live=[True, True, True, False, True, False, True, True],
)
S3 = np.sqrt(1 / 3)  # unbiased std of [1, 0, 0] and of [1, 0, 0, 1]
S2 = np.sqrt(0.5)  # unbiased std of [1, 0]


@pytest.mark.parametrize("path", ["legacy", "v1"])
@pytest.mark.parametrize(
    "include, expected",
    [
        # default: masked rows leave the stats; a: mean 1/3 over the live rows
        (False, [(2 / 3) / S3, (-1 / 3) / S3, (-1 / 3) / S3, 0.0, 0.0, 0.0, 0.5 / S2, -0.5 / S2]),
        # released code: masked rows stay in the stats; a: mean 1/2 over all four rows,
        # b keeps its whole-group baseline (mean 1/2)
        (True, [0.5 / S3, -0.5 / S3, -0.5 / S3, 0.0, 0.5 / S2, 0.0, 0.5 / S2, -0.5 / S2]),
    ],
)
def test_hand_computed_values_in_both_modes(path, include, expected):
    data = _batch(**HAND)
    if path == "legacy":
        out = compute_advantage(data, "masked_grpo", config=_algo(include=include))
    else:
        keys = [f"{u}_{i}_0" for i, u in enumerate(HAND["uids"])]
        out = compute_advantage_for_multi_trajectories(data, keys, "masked_grpo", config=_algo(include=include))
    got = _row_adv(out)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # default mode: group b was cut below 2 live rows by masking, so its survivor gets 0
    assert (got[4] == 0.0) == (not include)


@pytest.mark.parametrize("include", [False, True])
@pytest.mark.parametrize("norm", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_matches_numpy_reference(include, norm, seed):
    scores, uids, live, lengths = _random_case(seed, n_groups=9, size=5, masked_share=0.3)
    data = _batch(scores, uids, live, lengths)
    adv, ret = compute_masked_grpo_advantage(
        data.batch["token_level_rewards"], data.batch["response_mask"], data.non_tensor_batch["uid"],
        config=_algo(include=include, norm=norm),
    )
    ref = masked_group_advantages(scores, uids, live, include_masked_in_stats=include, norm_by_std=norm)
    np.testing.assert_allclose(adv[:, 0].numpy() * np.asarray(live), ref, atol=1e-5)
    assert adv is ret


def test_all_masked_group_and_lone_rows():
    data = _batch([1.0, 0.0, 3.0], ["a", "a", "z"], [False, False, True])
    got = _row_adv(compute_advantage(data, "masked_grpo", config=_algo()))
    # fully masked group: zeros, no NaN; lone live row: verl's rule (mean 0, std 1)
    np.testing.assert_allclose(got, [0.0, 0.0, 3.0 / (1 + 1e-6)], rtol=1e-6)


def test_dense_group_ids_accepts_verl_index_types():
    ids, n = dense_group_ids(np.array(["x", "y", "x"], dtype=object))
    assert ids.tolist() == [0, 1, 0] and n == 2
    ids, n = dense_group_ids(torch.tensor([7, 7, 3]))
    assert ids.tolist() == [0, 0, 1] and n == 2


def test_missing_uid_fails_with_a_message():
    data = _batch([1.0, 0.0], ["a", "a"], [True, True])
    with pytest.raises(ValueError, match="uid"):
        compute_masked_grpo_advantage(data.batch["token_level_rewards"], data.batch["response_mask"], None)


# --- the run checks and the loss, through verl's composed config and real ppo_loss ----------------

def _run_cfg(*overrides):
    import os

    import verl
    from hydra import compose, initialize_config_dir

    cfgdir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
    with initialize_config_dir(config_dir=cfgdir, version_base=None):
        return compose("ppo_trainer", overrides=[
            "algorithm.adv_estimator=masked_grpo", "actor_rollout_ref.model.path=x",
            "actor_rollout_ref.actor.use_dynamic_bsz=true", "actor_rollout_ref.actor.ppo_mini_batch_size=2",
            "actor_rollout_ref.rollout.n=1", *overrides])


@pytest.mark.parametrize("mode", ["seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"])
def test_seq_mean_loss_modes_are_refused_at_the_first_advantage(mode):
    cfg = _run_cfg(f"actor_rollout_ref.actor.loss_agg_mode={mode}")
    with pytest.raises(ValueError, match=f"loss_agg_mode={mode} divides the loss by every row"):
        compute_advantage(_batch(**HAND), "masked_grpo", config=cfg.algorithm)  # verl's legacy path
    keys = [f"{u}_{i}_0" for i, u in enumerate(HAND["uids"])]
    with pytest.raises(ValueError, match="masked \\(over-turn / unscorable\\) rows included"):
        compute_advantage_for_multi_trajectories(_batch(**HAND), keys, "masked_grpo", config=cfg.algorithm)
    ok = compute_advantage(_batch(**HAND), "masked_grpo", config=_run_cfg("actor_rollout_ref.actor.loss_agg_mode=token-mean").algorithm)
    np.testing.assert_allclose(_row_adv(ok)[:3], [(2 / 3) / S3, (-1 / 3) / S3, (-1 / 3) / S3], atol=1e-5)


def test_group_filter_without_the_live_sampler_is_refused():
    legacy = _run_cfg("trainer.use_v1=false", "algorithm.filter_groups.enable=true")
    with pytest.raises(ValueError, match="legacy trainer .*ignores it"):
        compute_advantage(_batch(**HAND), "masked_grpo", config=legacy.algorithm)
    builtin = _run_cfg("algorithm.filter_groups.enable=true")
    with pytest.raises(ValueError, match="built-in group filter, which counts masked rows"):
        compute_advantage(_batch(**HAND), "masked_grpo", config=builtin.algorithm)
    ours = _run_cfg("algorithm.filter_groups.enable=true",
                    "trainer.v1.sampler.custom_sampler.path=pkg://minio3_ext.verl.sampler",
                    "trainer.v1.sampler.custom_sampler.name=LiveGroupReplayBuffer")
    compute_advantage(_batch(**HAND), "masked_grpo", config=ours.algorithm)


def _ppo_loss(loss_mode: str, live: list[bool], agg="token-mean"):
    from verl.utils import tensordict_utils as tu
    from verl.utils.config import omega_conf_to_dataclass
    from verl.workers.utils.losses import ppo_loss
    from tensordict import TensorDict

    actor = omega_conf_to_dataclass(_run_cfg(f"actor_rollout_ref.actor.policy_loss.loss_mode={loss_mode}",
                                             f"actor_rollout_ref.actor.loss_agg_mode={agg}").actor_rollout_ref.actor)
    lens = [4, 5, 3][: len(live)]
    prompt = 3

    def nested(ts):
        return torch.nested.as_nested_tensor(ts, layout=torch.jagged)

    torch.manual_seed(0)
    values = torch.randn(sum(prompt + n for n in lens), requires_grad=True)
    offsets = torch.tensor([0] + np.cumsum([prompt + n for n in lens]).tolist())
    log_probs = torch.nested.nested_tensor_from_jagged(values, offsets=offsets)
    masks = [torch.full((n,), float(ok)) for n, ok in zip(lens, live)]
    data = TensorDict({
        "prompts": nested([torch.ones(prompt, dtype=torch.long)] * len(lens)),
        "responses": nested([torch.ones(n, dtype=torch.long) for n in lens]),
        "response_mask": nested(masks),
        "old_log_probs": nested([torch.full((n,), -0.5) for n in lens]),
        "advantages": nested([torch.full((n,), 0.7 if ok else 0.0) for n, ok in zip(lens, live)]),
    }, batch_size=len(lens))
    tu.assign_non_tensor(data, dp_size=1, batch_num_tokens=int(sum(m.sum() for m in masks)), global_batch_size=len(lens))
    loss, _ = ppo_loss(actor, {"log_probs": log_probs}, data)
    loss.backward()
    return loss.detach(), values.grad


def test_masked_vanilla_loss_is_zero_not_nan_on_an_all_masked_mini_batch():
    stock, _ = _ppo_loss("vanilla", [False, False])
    assert torch.isnan(stock)  # verl's vanilla token-mean: 0 / 0
    loss, grad = _ppo_loss("masked_vanilla", [False, False])
    assert loss.item() == 0.0 and torch.equal(grad, torch.zeros_like(grad))


def test_masked_vanilla_equals_verls_vanilla_when_rows_are_live():
    for live in ([True, False, True], [True, True, True]):
        ours, g1 = _ppo_loss("masked_vanilla", live)
        ref, g2 = _ppo_loss("vanilla", live)
        assert torch.equal(ours, ref) and torch.equal(g1, g2)


def test_seq_mean_on_request_released_loss_unchanged_and_finite():
    # +algorithm.masked_grpo.allow_seq_mean=true (the released variant): no refusal, and the
    # loss is verl's own (masked rows count as 0 in the mini-batch denominator)
    cfg = _run_cfg("actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-mean",
                   "+algorithm.masked_grpo.allow_seq_mean=true")
    compute_advantage(_batch(**HAND), "masked_grpo", config=cfg.algorithm)
    for live in ([True, False], [False, False]):
        ours, g1 = _ppo_loss("masked_vanilla", live, agg="seq-mean-token-mean")
        ref, g2 = _ppo_loss("vanilla", live, agg="seq-mean-token-mean")
        assert torch.isfinite(ours) and torch.equal(ours, ref) and torch.equal(g1, g2)


@pytest.mark.parametrize("path", ["legacy", "v1"])
def test_a_misspelt_masked_grpo_option_is_refused_naming_it(path):
    # a typo used to train the default (masked rows left out of the group statistics)
    cfg = _run_cfg("+algorithm.masked_grpo.include_masked_in_stat=true")
    with pytest.raises(ValueError, match=r"^masked_grpo: unknown option algorithm\.masked_grpo\.include_masked_in_stat; "
                                         r"valid keys: \['allow_seq_mean', 'include_masked_in_stats'\]$"):
        if path == "legacy":
            compute_advantage(_batch(**HAND), "masked_grpo", config=cfg.algorithm)
        else:
            keys = [f"{u}_{i}_0" for i, u in enumerate(HAND["uids"])]
            compute_advantage_for_multi_trajectories(_batch(**HAND), keys, "masked_grpo", config=cfg.algorithm)
