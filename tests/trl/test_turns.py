"""Turns, answers and unscorable rows through TRL's real GRPOTrainer (tiny Qwen2.5-VL, scripted generations).

- issue 12 item 4: two zoom calls in one assistant message are one turn; a correct answer
  after them within the budget is ``answered`` and trains (it ended as ``turn_limit`` and
  was masked when the environment counted calls);
- issue 10: an ``<answer>`` written before a tool call ends the core episode there; the
  TRL record, the episode and ``AccuracyReward`` all hold that answer;
- issue 12 item 5: an unscorable required reward (the judge) makes the whole row
  unscorable whatever the other reward functions and weights (TRL ``nansum``-ed the rest);
- issue 12 item 8: plain text completions cut by ``max_completion_length`` are recorded as
  ``context_limit`` and train as in stock TRL unless ``mask_plain_truncation=True``.
"""

from __future__ import annotations

import json

import pytest
import torch

from minio3_ext.judge import Judge, JudgeConfig, Verdict
from minio3_ext.trl import AccuracyReward, MaskedGRPOConfig, MaskedGRPOTrainer, format_reward

ZOOM_BOX = [0.1, 0.1, 0.5, 0.5]  # the box of conftest's scripted ZOOM

pytestmark = pytest.mark.slow

_CALL = '<tool_call>\n{"name": "zoom", "arguments": {"bbox_2d": %s, "source": "original_image"}}\n</tool_call>'
ZOOM = _CALL % ZOOM_BOX
TWO_ZOOMS = "<think>both halves</think>" + _CALL % ZOOM_BOX + "\n" + _CALL % [0.5, 0.5, 0.9, 0.9]


def _logs(run):
    return run.trainer.state.log_history[0]


def test_two_calls_in_one_message_then_a_correct_answer_is_answered_not_turn_limit(run_scripted, trl_setup):
    solution = trl_setup["row"]["solution"]
    run = run_scripted(MaskedGRPOTrainer, script=[[TWO_ZOOMS, ZOOM, "I do not know."],
                                                  [f"<think>ok</think><answer>{solution}</answer>", ZOOM]])
    logs = _logs(run)
    assert logs["minio3/termination/answered"] == pytest.approx(1 / 3)
    assert logs["minio3/termination/turn_limit"] == pytest.approx(1 / 3)  # row 1 zoomed at its last turn
    assert logs["minio3/masked_share"] == pytest.approx(1 / 3)
    adv = run.outputs[0]["advantages"]
    assert adv[0] > 0.7 and adv[1] == 0.0  # the row that answered trains
    env = run.trainer.environments[0]
    assert env.episode.termination_reason == "answered" and env.episode.turns == 2 and env.extra_calls == 1
    assert env.episode.num_observations == 1  # only the first call of the message ran
    # TRL still answered both calls: the second with the error note
    tool_messages = [m for m in run.trainer.environments[0]._messages if m["role"] == "tool"]
    assert len(tool_messages) == 2 and "one call per turn" in tool_messages[1]["content"]


def test_an_answer_before_a_call_is_the_episodes_answer_for_record_and_reward(run_scripted, trl_setup):
    solution = trl_setup["row"]["solution"]
    answer_then_call = f"<think>I see it</think><answer>{solution}</answer>\n" + _CALL % ZOOM_BOX
    run = run_scripted(MaskedGRPOTrainer, script=[[answer_then_call, ZOOM, "I do not know."],
                                                  ["<think>no</think><answer>wrong</answer>", ZOOM]])
    env = run.trainer.environments[0]
    assert env.episode.answer == solution and env.episode.termination_reason == "answered"
    assert env.episode.turns == 1 and env.episode.num_observations == 0  # the call after the answer never ran
    logs = _logs(run)
    assert logs["rewards/accuracy/mean"] == pytest.approx(1 / 2)  # rows 0 (correct, turn 1) and 2 (0); row 1 masked
    assert logs["minio3/termination/answered"] == pytest.approx(1 / 3)


class _NoAnswerUnscorable:
    """The rule judge, except that a rollout without an answer is a judge failure (e.g. a timeout)."""

    def __init__(self):
        self.rule = Judge(JudgeConfig())

    def score_sync(self, items):
        return [Verdict(None, "unscorable", error="timeout") if it.prediction is None else v
                for it, v in zip(items, self.rule.score_sync(items))]


def _half(completions, **kwargs):
    return [0.5] * len(completions)


def test_an_unscorable_required_reward_makes_the_row_unscorable_with_other_rewards(run_scripted):
    run = run_scripted(MaskedGRPOTrainer, reward_funcs=[AccuracyReward(_NoAnswerUnscorable()), format_reward, _half],
                       reward_weights=[1.0, 0.3, 2.0])
    out = run.outputs[0]
    # row 2 ("I do not know.") is unscorable: advantage 0, out of the baseline, out of the logged reward
    assert out["advantages"][2] == 0.0
    logs = _logs(run)
    assert logs["reward"] == pytest.approx(1.0 * 1 + 0.3 * 0 + 2.0 * 0.5)  # row 0 only (row 1 masked)
    # the other columns of the row were dropped too, not only the judge's
    assert logs["rewards/_half/mean"] == pytest.approx(0.5)


def test_propagation_also_holds_without_masking(run_scripted, trl_setup):
    solution = trl_setup["row"]["solution"]
    script = [[ZOOM, "<think>hm</think><answer>wrong</answer>", "I do not know."],
              [f"<think>ok</think><answer>{solution}</answer>"]]
    run = run_scripted(MaskedGRPOTrainer, script=script, reward_funcs=[AccuracyReward(_NoAnswerUnscorable()), _half],
                       mask_overturn=False)
    adv = run.outputs[0]["advantages"]
    assert adv[2] == 0.0 and adv[0] > 0 > adv[1]  # rows 0 and 1 form the group; row 2 is out


# -- plain text completions cut by max_completion_length (no tool loop) -----------------------

def _text_run(tiny_qwen_dir, tmp_path, monkeypatch, **overrides):
    from datasets import Dataset

    from minio3_ext.testing import load_tiny_qwen

    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    torch.manual_seed(0)
    model, processor = load_tiny_qwen(tiny_qwen_dir)
    args = MaskedGRPOConfig(output_dir=str(tmp_path / "out"), num_generations=3, per_device_train_batch_size=3,
                            max_steps=1, max_completion_length=8, report_to=[], logging_steps=1, learning_rate=1e-2,
                            use_cpu=True, save_strategy="no", seed=0, **overrides)
    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": "Count to ten."}]}])

    def by_length(completions, **kwargs):  # rewards differ, so the group has advantages to train on
        return [float(len(json.dumps(c))) for c in completions]

    trainer = MaskedGRPOTrainer(model, reward_funcs=[by_length], args=args, train_dataset=dataset,
                                processing_class=processor)
    tok = processor.tokenizer

    def truncated_generation(prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        texts = ["one two three four five six seven eight nine", "1 2 3 4 5 6 7 8 9 10", "un deux trois quatre cinq six"]
        return [tok(t, add_special_tokens=False)["input_ids"][:8] for t in texts], None  # cut: no end-of-turn token

    trainer._generate_single_turn = truncated_generation
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    trainer.train()
    changed = any(not torch.equal(before[k], v) for k, v in trainer.model.named_parameters())
    return trainer.state.log_history[0], changed


def test_truncated_text_completions_train_as_in_stock_trl(tiny_qwen_dir, tmp_path, monkeypatch):
    logs, changed = _text_run(tiny_qwen_dir, tmp_path, monkeypatch)
    assert logs["completions/clipped_ratio"] == 1.0
    assert logs["minio3/masked_share"] == 0.0 and logs["minio3/termination/context_limit"] == 1.0
    assert changed and logs["loss"] != 0.0


def test_truncated_text_completions_are_masked_when_the_user_opts_in(tiny_qwen_dir, tmp_path, monkeypatch):
    logs, changed = _text_run(tiny_qwen_dir, tmp_path, monkeypatch, mask_plain_truncation=True)
    assert logs["minio3/masked_share"] == 1.0 and logs["minio3/termination/context_limit"] == 1.0
