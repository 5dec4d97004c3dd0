"""The reward function as verl loads it (``pkg://`` path, async, reward kwargs)."""

from __future__ import annotations

import asyncio

import pytest
from omegaconf import OmegaConf
from verl.trainer.ppo.reward import get_custom_reward_fn

from minio3_ext.judge import Verdict
from minio3_ext.verl.reward import RESULT_KEYS, compute_score



class FakeJudge:
    def __init__(self, score):
        self.verdict = Verdict(score, "llm" if score is not None else "unscorable")
        self.items = []

    async def score(self, items):
        self.items.extend(items)
        return [self.verdict for _ in items]


def score(solution, truth="K", extra=None, **kw):
    return asyncio.run(compute_score("synthetic", solution, truth, extra or {}, **kw))


def test_verl_loads_it_by_pkg_path_as_async_with_reward_kwargs():
    cfg = OmegaConf.create({"reward": {"custom_reward_function": {
        "path": "pkg://minio3_ext.verl.reward", "name": "compute_score",
        "reward_kwargs": {"acc_weight": 0.8, "format_weight": 0.2, "tool_weight": 1.2}}}})
    fn = get_custom_reward_fn(cfg)
    out = asyncio.run(fn(data_source="s", solution_str="<answer>k</answer>", ground_truth="K",
                         extra_info={"question": "which letter?", "termination_reason": "answered",
                                     "answer": "k", "zooms": 2, "turns": 3}))
    assert out["score"] == pytest.approx(0.8 + 0.2 + 1.2)  # rule-only judge: normalised match
    assert out["acc"] == 1.0 and out["minio3/answered"] == 1.0 and out["minio3/zooms"] == 2.0


def test_rule_match_by_default_and_wrong_answers_score_zero():
    assert score("<think>x</think><answer> k </answer>")["score"] == 1.0
    wrong = score("<answer>Q</answer>")
    assert wrong["score"] == 0.0 and wrong["judged"] == 1.0


def test_no_answer_scores_zero_without_judging():
    judge = FakeJudge(1.0)
    out = score("I give up", judge=judge)
    assert out["score"] == 0.0 and out["judged"] == 0.0 and out["format"] == 0.0 and judge.items == []


@pytest.mark.parametrize("dialect", ["minio3", "hermes"])
def test_answer_tags_quoted_by_observations_are_skipped(dialect):
    """The released observation words quote "<answer> and </answer>": outside the agent
    loop (verl's stock ToolAgentLoop), the answer is the final turn's, never "and"."""
    from minio3_ext.core.dialect import get_dialect

    d = get_dialect(dialect)
    judge = FakeJudge(1.0)
    turns = [d.render_thought("look") + d.render_call("zoom", {"bbox_2d": [0, 0, 1, 1]}),
             d.observation_text(0, 1).replace(d.image_slot, ""),
             d.render_thought("again") + d.render_call("zoom", {"bbox_2d": [0, 0, 1, 1]}),
             d.observation_text(1, 2).replace(d.image_slot, ""), "<think>found</think><answer>K</answer>"]
    out = score("".join(turns), judge=judge)
    assert out["score"] == 1.0 and judge.items[0].prediction == "K"


def test_overturn_rows_are_not_judged():
    judge = FakeJudge(1.0)
    out = score("<answer>K</answer>", extra={"is_overturn": True, "termination_reason": "turn_limit", "turns": 6},
                judge=judge)
    assert judge.items == [] and out["score"] == 0.0 and out["overturn"] == 1.0
    assert out["minio3/turn_limit"] == 1.0


def test_unscorable_is_flagged_never_a_silent_zero():
    out = score("<answer>K</answer>", extra={"question": "q", "termination_reason": "answered", "answer": "K",
                                             "turns": 1}, judge=FakeJudge(None))
    assert out["unscorable"] == 1.0 and out["judged"] == 0.0 and out["minio3/masked"] == 1.0


def test_the_loops_parsed_answer_wins_and_the_question_reaches_the_judge():
    judge = FakeJudge(1.0)
    score("<answer></answer> <answer>wrong</answer>", extra={"termination_reason": "answered", "answer": "K",
                                                               "question": "What letter?"}, judge=judge)
    assert judge.items[0].prediction == "K" and judge.items[0].question == "What letter?"
    judge = FakeJudge(1.0)
    score("<answer>K</answer>", extra={"raw_prompt": [{"role": "user", "content": "<image>\nWhich one?"}]}, judge=judge)
    assert judge.items[0].question == "Which one?"


def test_every_result_has_the_same_keys():
    results = [score("<answer>K</answer>"), score("none"), score("<answer>K</answer>", extra={"is_overturn": True}),
               score("<answer>K</answer>", judge=FakeJudge(None))]
    assert all(set(r) == set(RESULT_KEYS) for r in results)


def _manager_score(tiny_qwen_dir, reward_kwargs, **manager_kwargs):
    """One row through verl's reward-loop ``naive`` manager, reward fn loaded as verl loads it."""
    import numpy as np
    import torch
    from transformers import AutoTokenizer
    from verl import DataProto
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

    cfg = OmegaConf.create({"reward": {"custom_reward_function": {
        "path": "pkg://minio3_ext.verl.reward", "name": "compute_score", "reward_kwargs": reward_kwargs}}})
    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen_dir)
    ids = tokenizer.encode("<answer>k</answer>", add_special_tokens=False)
    data = DataProto.from_dict(
        tensors={"responses": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long)},
        non_tensors={"data_source": np.array(["s"], dtype=object),
                     "reward_model": np.array([{"ground_truth": "K"}], dtype=object),
                     "extra_info": np.array([{"question": "which letter?"}], dtype=object)})

    async def run():
        manager = NaiveRewardManager(cfg, tokenizer, get_custom_reward_fn(cfg), **manager_kwargs)
        return await manager.run_single(data)

    return asyncio.run(run())


def test_verls_own_reward_manager_kwargs_keep_working(tiny_qwen_dir):
    # with a reward-model router configured verl adds reward_router_address / reward_model_tokenizer
    out = _manager_score(tiny_qwen_dir, {"acc_weight": 0.5}, reward_router_address="127.0.0.1:9",
                         reward_model_tokenizer=object())
    assert out["reward_score"] == 0.5


def test_a_misspelt_reward_kwarg_is_refused_naming_it(tiny_qwen_dir):
    # it used to be swallowed: the run trained with acc_weight=1.0
    with pytest.raises(ValueError, match=r"^minio3_ext.verl.reward.compute_score: unknown option reward\.custom_reward_"
                                         r"function\.reward_kwargs\.acc_weigth; valid keys: \['acc_weight', "
                                         r"'format_weight', 'tool_weight', 'judge_preset'\]$"):
        _manager_score(tiny_qwen_dir, {"acc_weigth": 0.5})
