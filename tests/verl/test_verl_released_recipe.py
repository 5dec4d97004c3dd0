"""The released-code recipe variant (``recipes/verl/masked_grpo_released.args``): it
composes in verl's real Hydra config, and each of its rules does what the released code
did — masked rows in the group statistics (the issue's 4 correct / 6 wrong / 6 masked
group), the loss aggregation of ``dp_actor.py`` (one-sequence micro-batches, averaged),
the whole-context budget through verl's ``AgentLoopWorker``, 12 images."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from omegaconf import OmegaConf
from verl.experimental.agent_loop.agent_loop import AgentLoopWorker, _agent_loop_registry
from verl.trainer.ppo import core_algos

import minio3_ext.verl as mv
from minio3_ext.verl.recipe import read_overrides
from test_agent_loop import _batch, _config, _scripts
from test_recipes import _job as compose_job

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "verl"
ENV = {"MODEL_PATH": "/models/qwen", "TRAIN_FILES": "/data/train.parquet", "VAL_FILES": "/data/val.parquet",
       "NNODES": "1", "GPUS_PER_NODE": "8"}


def _job(files: list[str]) -> dict:
    """``python -m verl.trainer.main_ppo --cfg job`` with these files' overrides (in this interpreter)."""
    return compose_job("verl.trainer.main_ppo", [o for f in files for o in read_overrides(RECIPES / f, ENV)])


@pytest.fixture(scope="module")
def released_job():
    return _job(["masked_grpo.args", "masked_grpo_released.args"])


def test_released_variant_composes_in_main_ppo(released_job):
    job = released_job
    actor, rollout = job["actor_rollout_ref"]["actor"], job["actor_rollout_ref"]["rollout"]
    # allow_seq_mean: masked_grpo would refuse the released seq-mean loss otherwise
    assert job["algorithm"]["masked_grpo"] == {"include_masked_in_stats": True, "allow_seq_mean": True}
    assert actor["loss_agg_mode"] == "seq-mean-token-mean" and actor["ppo_micro_batch_size_per_gpu"] == 1
    assert actor["use_dynamic_bsz"] is False and rollout["limit_images"] == 12
    assert Path(rollout["agent"]["agent_loop_config_path"]) == mv.config_path("agent_loop_released.yaml")
    assert job["reward"]["custom_reward_function"]["reward_kwargs"]["judge_preset"] == "released"
    assert rollout["multi_turn"]["max_assistant_turns"] == 6  # training turns as in the paper
    evaluation = _job(["masked_grpo.args", "masked_grpo_released.args", "masked_grpo_eval.args",
                       "masked_grpo_released_eval.args"])
    rollout = evaluation["actor_rollout_ref"]["rollout"]
    assert rollout["multi_turn"]["max_assistant_turns"] == 12 and rollout["val_kwargs"]["n"] == 32
    assert rollout["limit_images"] == 12 and evaluation["trainer"]["val_only"] is True


def test_released_agent_loop_options():
    (entry,) = yaml.safe_load(mv.config_path("agent_loop_released.yaml").read_text())
    assert (entry["max_images"], entry["context_budget"], entry["preset"]) == (12, 32768 - 2000, "released")


def test_group_statistics_include_masked_rows(released_job):
    # 4 correct, 6 wrong, 6 masked (over-turn: all-zero response mask, reward 0), one group
    rewards = torch.tensor([1.0] * 4 + [0.0] * 12)
    mask = torch.ones(16, 3)
    mask[10:] = 0
    token_rewards = torch.zeros(16, 3)
    token_rewards[:, -1] = rewards
    index = np.array(["g"] * 16, dtype=object)
    estimator = core_algos.get_adv_estimator_fn(released_job["algorithm"]["adv_estimator"])
    released_cfg = OmegaConf.create(released_job["algorithm"])
    adv, _ = estimator(token_level_rewards=token_rewards, response_mask=mask, index=index, config=released_cfg)
    assert adv[0, 0].item() == pytest.approx(1.677, abs=1e-3) and adv[4, 0].item() == pytest.approx(-0.559, abs=1e-3)
    assert adv[10:].abs().sum() == 0
    clean_cfg = OmegaConf.create({**released_job["algorithm"], "masked_grpo": {"include_masked_in_stats": False}})
    adv, _ = estimator(token_level_rewards=token_rewards, response_mask=mask, index=index, config=clean_cfg)
    assert adv[0, 0].item() == pytest.approx(1.162, abs=1e-3) and adv[4, 0].item() == pytest.approx(-0.775, abs=1e-3)


def test_four_correct_twelve_over_turn_group_is_kept_and_trained(released_job):
    # the released dynamic sampling keeps the group (std over all 16 rows) and, masked rows in
    # the statistics, its correct rows get +1.68; the clean default drops it (live rewards all 1)
    from minio3_ext.verl.sampler import group_verdict

    rewards = [1.0] * 4 + [0.0] * 12
    live = [True] * 4 + [False] * 12
    kwargs = released_job["trainer"]["v1"]["sampler"]["sampler_kwargs"]
    assert group_verdict(rewards, live, kwargs["min_live_std"], kwargs["std_rows"]) is None
    clean = _job(["masked_grpo.args"])["trainer"]["v1"]["sampler"]["sampler_kwargs"]
    assert group_verdict(rewards, live, clean["min_live_std"], clean.get("std_rows", "live")) == 1.0
    mask = torch.tensor([[1.0] * 3 if ok else [0.0] * 3 for ok in live])
    token_rewards = torch.zeros(16, 3)
    token_rewards[:, -1] = torch.tensor(rewards)
    estimator = core_algos.get_adv_estimator_fn(released_job["algorithm"]["adv_estimator"])
    adv, _ = estimator(token_level_rewards=token_rewards, response_mask=mask, index=np.array(["g"] * 16, dtype=object),
                       config=OmegaConf.create(released_job["algorithm"]))
    assert adv[0, 0].item() == pytest.approx(1.677, abs=1e-3) and adv[4:].abs().sum() == 0


def test_whole_context_budget_is_the_limit_that_governs(released_job):
    job = OmegaConf.to_container(OmegaConf.create(released_job), resolve=True)  # verl's interpolations resolved
    rollout = job["actor_rollout_ref"]["rollout"]
    (loop,) = yaml.safe_load(Path(rollout["agent"]["agent_loop_config_path"]).read_text())
    budget = loop["context_budget"]
    assert budget == 32768 - 2000
    # the loop stops at whichever comes first: prompt + responses reaching the budget, or the
    # responses reaching verl's response length (rollout.response_length, composed from data.*)
    assert rollout["response_length"] == job["data"]["max_response_length"]
    for prompt_tokens in (1, 2_800, job["data"]["max_prompt_length"]):
        assert min(budget, prompt_tokens + rollout["response_length"]) == budget, prompt_tokens
    assert rollout["max_model_len"] is None or rollout["max_model_len"] >= budget  # None: the model's own


def test_loss_aggregation_equals_the_released_one_sequence_micro_batches(released_job):
    torch.manual_seed(0)
    n = 8  # one mini-batch of 8 sequences on one GPU, 2 of them masked (all-zero mask)
    loss_mat = torch.randn(n, 5)
    lengths = [5, 3, 1, 4, 0, 2, 0, 5]
    mask = torch.tensor([[1.0] * k + [0.0] * (5 - k) for k in lengths])
    # released dp_actor.py: micro-batch of one sequence, token-mean, divided by the gradient
    # accumulation (= the mini-batch size); a masked sequence adds 0 but still counts
    released = sum((loss_mat[i] * mask[i]).sum() / (mask[i].sum() + 1e-6) for i in range(n)) / n
    mode = released_job["actor_rollout_ref"]["actor"]["loss_agg_mode"]
    # verl 0.9.1: per micro-batch agg_loss normalised by the mini-batch's sequence count
    # (ray_trainer passes global_batch_size = ppo_mini_batch_size * n), summed over micro-batches
    ours = sum(core_algos.agg_loss(loss_mat[i:i + 1], mask[i:i + 1], mode, dp_size=1, global_batch_size=n)
               for i in range(n))
    assert ours.item() == pytest.approx(released.item(), rel=1e-5)
    token_mean = sum(core_algos.agg_loss(loss_mat[i:i + 1], mask[i:i + 1], "token-mean", dp_size=1,
                                         batch_num_tokens=mask.sum()) for i in range(n))
    assert abs(token_mean.item() - released.item()) > 1e-3  # the default recipe's aggregation differs


@pytest.mark.slow
def test_whole_context_budget_through_verl_agent_loop_worker(tiny_qwen_dir, synthetic_rows, tmp_path,
                                                              scripted_server, monkeypatch):
    monkeypatch.setitem(_agent_loop_registry, "minio3_agent", _agent_loop_registry["minio3_agent"])

    def run(budget):
        loops = tmp_path / f"agent_loop_{budget}.yaml"
        loops.write_text(mv.config_path("agent_loop.yaml").read_text() + f"  context_budget: {budget}\n")
        cfg = _config(tiny_qwen_dir, "minio3")
        cfg.actor_rollout_ref.rollout.agent.agent_loop_config_path = str(loops)
        worker = AgentLoopWorker(cfg, llm_client=None)
        worker.llm_client = scripted_server(worker.tokenizer, _scripts("minio3", "x"))
        folder = tmp_path / f"run_{budget}"
        folder.mkdir()
        batch = _batch(cfg, worker, synthetic_rows[:1], folder, "minio3", cases=["loops"])
        return asyncio.run(worker.generate_sequences(batch))

    roomy = run(10**6)  # the budget is never reached: the loop runs into the turn limit
    assert list(roomy.non_tensor_batch["termination_reason"]) == ["turn_limit"]
    prompt_len = int(roomy.batch["attention_mask"][0, : roomy.batch["prompts"].shape[1]].sum())
    assert prompt_len > 50
    # a budget a few tokens above the prompt: the whole context (prompt + first turn) reaches it
    # on turn 1, although the responses alone are far below it
    tight = run(prompt_len + 5)
    assert list(tight.non_tensor_batch["termination_reason"]) == ["context_limit"]
    assert list(tight.non_tensor_batch["turns"]) == [1] and list(tight.non_tensor_batch["masked"]) == [True]
    assert tight.batch["response_mask"].sum() == 0
