"""The ``minio3_agent`` loop end to end through verl's ``AgentLoopWorker`` (dataset →
agent loop → tool → reward → padded batch), with a scripted fake LLM server and the
offline tiny Qwen2.5-VL tokenizer/processor. Both dialects."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections import Counter

import numpy as np
import pytest
import verl
from hydra import compose, initialize_config_dir
from omegaconf import open_dict
from verl import DataProto
from verl.experimental.agent_loop.agent_loop import AgentLoopWorker, _agent_loop_registry
from verl.trainer.ppo.metric_utils import process_validation_metrics
from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

import minio3_ext.verl as mv
from minio3_ext.core import load_image, resize_for_model
from minio3_ext.core.dialect import get_dialect
from minio3_ext.core.images import ViewRules
from minio3_ext.verl.dataset import write_parquet
from minio3_ext.verl.metrics import batch_metrics, dataproto_step_metrics

MAX_TURNS = 3
IM_END = "<|im_end|>"


def _zoom(dialect: str, bbox, source="original_image") -> str:
    args = {"bbox_2d": bbox, "source": source}
    if dialect == "minio3":  # generation stops at the string </grounding>: no end-of-turn token
        return "<think>look closer</think><grounding>" + json.dumps(args) + "</grounding>"
    return "<think>look closer</think><tool_call>" + json.dumps({"name": "zoom", "arguments": args}) + "</tool_call>" + IM_END


def _scripts(dialect: str, truth: str) -> dict[str, list[str]]:
    bad_call = "<grounding>{'bbox_2d': [0.2, 0.2, 0.1" if dialect == "minio3" else "<tool_call>{\"name\": \"zoom\", \"arguments\": {\"bbox_2d\": [0.2, 0.2,</tool_call>" + IM_END
    return {
        "answers": [_zoom(dialect, [0.0, 0.0, 0.5, 0.5]), _zoom(dialect, [0.5, 0.5, 1.0, 1.0], "observation_1"),
                    f"<think>found it</think><answer>{truth}</answer>{IM_END}"],
        "loops": [_zoom(dialect, [0.1, 0.1, 0.6, 0.6])],  # zooms forever: hits the turn limit
        "malformed": [_zoom(dialect, [0.5, 0.5, 1.5, 1.0]), bad_call, f"<answer>{truth}</answer>{IM_END}"],
    }


def _config(tiny_qwen_dir, dialect: str, *extra: str):
    cfgdir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
    with initialize_config_dir(config_dir=cfgdir, version_base=None):
        return compose("ppo_trainer", overrides=[
            f"actor_rollout_ref.model.path={tiny_qwen_dir}",
            "actor_rollout_ref.rollout.name=vllm",
            "actor_rollout_ref.rollout.prompt_length=2048",
            "actor_rollout_ref.rollout.response_length=3072",
            "actor_rollout_ref.rollout.multi_turn.enable=true",
            f"actor_rollout_ref.rollout.multi_turn.max_assistant_turns={MAX_TURNS}",
            f"actor_rollout_ref.rollout.multi_turn.format={dialect}",
            f"actor_rollout_ref.rollout.multi_turn.tool_config_path={mv.config_path('zoom_tool.yaml')}",
            f"actor_rollout_ref.rollout.agent.agent_loop_config_path={mv.config_path('agent_loop.yaml')}",
            "reward.custom_reward_function.path=pkg://minio3_ext.verl.reward",
            "data.return_raw_chat=true",
            *extra,
        ])


def _batch(cfg, worker, rows, tmp_path, dialect, cases=("answers", "loops", "malformed")) -> DataProto:
    marked = [dict(row, problem=f"case={case} " + row["problem"]) for row, case in zip(rows, cases)]
    path = write_parquet(marked, tmp_path / f"{dialect}.parquet", dialect=dialect,
                         view=ViewRules(max_pixels=200_000, min_pixels=3136))
    ds = RLHFDataset(data_files=[str(path)], tokenizer=worker.tokenizer, config=cfg.data, processor=worker.processor)
    batch = DataProto.from_single_dict(collate_fn([ds[i] for i in range(len(ds))]))
    batch.meta_info["validate"] = False
    return batch


@pytest.mark.slow
@pytest.mark.parametrize("dialect", ["minio3", "hermes"])
def test_three_trajectories_through_verl_agent_loop_worker(dialect, tiny_qwen_dir, synthetic_rows, tmp_path, scripted_server):
    cfg = _config(tiny_qwen_dir, dialect)
    worker = AgentLoopWorker(cfg, llm_client=None)
    rows = synthetic_rows[:3]
    server = scripted_server(worker.tokenizer, _scripts(dialect, rows[0]["solution"]))
    # the malformed case answers its own ground truth
    server.scripts["malformed"][-1] = f"<answer>{rows[2]['solution']}</answer>{IM_END}"
    worker.llm_client = server
    out = asyncio.run(worker.generate_sequences(_batch(cfg, worker, rows, tmp_path, dialect)))

    reason = list(out.non_tensor_batch["termination_reason"])
    assert reason == ["answered", "turn_limit", "answered"]
    live = out.batch["response_mask"].sum(-1)
    assert live[0] > 0 and live[2] > 0 and live[1] == 0  # over-turn: mask zeroed
    assert out.batch["responses"][1].ne(worker.tokenizer.pad_token_id).any()  # ...but the tokens are kept
    assert list(out.non_tensor_batch["masked"]) == [False, True, False]
    assert list(out.non_tensor_batch["turns"]) == [3, MAX_TURNS, 3]
    assert list(out.non_tensor_batch["zooms"]) == [2, MAX_TURNS - 1, 0]
    assert list(out.non_tensor_batch["invalid_actions"]) == [0, 0, 2]
    # reward computed in-loop: right answers score 1, the over-turn one is not judged
    scores = out.batch["rm_scores"].sum(-1).tolist()
    assert scores == [1.0, 0.0, 1.0]
    assert list(out.non_tensor_batch["judged"]) == [1.0, 0.0, 1.0]
    assert list(out.non_tensor_batch["minio3/turn_limit"]) == [0.0, 1.0, 0.0]
    # the indicators reach verl's own validation metrics (val-aux/<data_source>/minio3/...)
    infos = {k: list(out.non_tensor_batch[k]) for k in out.meta_info["reward_extra_keys"]}
    val = process_validation_metrics(list(out.non_tensor_batch["data_source"]), ["u0", "u1", "u2"], infos)
    (per_source,) = val.values()
    assert per_source["minio3/turn_limit"]["mean@1"] == pytest.approx(1 / 3)
    assert per_source["minio3/masked"]["mean@1"] == pytest.approx(1 / 3)
    keys = ("termination_reason", "masked", "turns", "zooms", "invalid_actions")
    step = batch_metrics([{k: out.non_tensor_batch[k][i] for k in keys} for i in range(3)])
    assert step["minio3/invalid_rate"] == pytest.approx(2 / 9) and step["minio3/turns"] == 3.0
    assert step["minio3/answered"] == pytest.approx(2 / 3)
    # the legacy trainer's batch: the same per-step scalars, live-only means beside verl's
    legacy = dataproto_step_metrics(out)
    assert legacy["minio3/masked"] == pytest.approx(1 / 3) and legacy["minio3/live_share"] == pytest.approx(2 / 3)
    assert legacy["minio3/judge_calls"] == 2.0 and legacy["minio3/invalid_actions"] == pytest.approx(2 / 3)
    assert legacy["minio3/live/score/mean"] == 1.0  # verl's critic/score/mean: 2/3 (the masked row as 0)
    lengths = out.batch["attention_mask"][:, -out.batch["responses"].shape[-1]:].sum(-1)
    assert legacy["minio3/live/response_length/mean"] == pytest.approx(float(lengths[[0, 2]].float().mean()))

    # chained crops reached the model as images, cut from the raw file
    answers = server.calls["answers"]
    assert [len(c["images"]) for c in answers] == [1, 2, 3]
    raw = load_image(rows[0]["images"][0])
    w, h = raw.size
    expected = resize_for_model(raw.crop((0, 0, w // 2, h // 2)), ViewRules())  # the loop's view rules
    np.testing.assert_array_equal(np.asarray(answers[1]["images"][1]), np.asarray(expected))
    # malformed actions: error observations without images, and the loop went on
    malformed = server.calls["malformed"]
    assert [len(c["images"]) for c in malformed] == [1, 1, 1]
    d = get_dialect(dialect)
    assert d.error_text(0, "bbox_2d [0.5, 0.5, 1.5, 1] is outside the valid range [0, 1] "
                           "(relative to the image width and height)") in malformed[1]["context"]
    assert "Error Information: could not read the action" in malformed[2]["context"]
    # the system prompt is the dialect's (released words for minio3)
    assert answers[0]["context"].startswith("<|im_start|>system\n" + d.system_prompt())
    # per-turn cap: min(8192, remaining response budget), as vLLM's max_tokens
    caps = [c["sampling_params"]["max_tokens"] for c in answers]
    assert caps[0] == 3072 and caps[0] > caps[1] > caps[2] > 0
    # the whole observation in the dialect's words, image at its slot: never truncated
    # (verl's tool path cuts tool text at max_tool_response_length=256 characters)
    before, after = d.split_slots(d.observation_text(0, 1))
    assert len(after) > cfg.actor_rollout_ref.rollout.multi_turn.max_tool_response_length
    assert f"{before}<|vision_start|>" in answers[1]["context"] and f"<|vision_end|>{after}" in answers[1]["context"]
    assert "(truncated)" not in answers[2]["context"]
    if dialect == "minio3":
        assert answers[0]["sampling_params"]["stop"] == ["</grounding>"] == list(d.stop)
        # observations are user turns in the released wording, no Hermes tool block
        turn = f"</grounding><|im_end|>\n<|im_start|>user\n{before}<|vision_start|>"
        assert turn in answers[1]["context"] and f"<|vision_end|>{after}<|im_end|>" in answers[1]["context"]
        assert "[0.2, 0.2, 0.1<|im_end|>\n<|im_start|>user\nERROR occurs" in malformed[2]["context"]
        assert "<tools>" not in answers[0]["context"]
    else:
        assert "<tool_response>" in answers[1]["context"] and "<tools>" in answers[0]["context"]
        assert answers[0]["sampling_params"]["stop"] == ["</tool_call>"] == list(d.stop)


@pytest.mark.slow
def test_a_trajectory_the_judge_cannot_score_is_masked_not_zeroed(
    tiny_qwen_dir, synthetic_rows, tmp_path, scripted_server, monkeypatch
):
    import minio3_ext.verl.reward as reward

    # a judge endpoint that refuses connections, no retries: the verdict is unscorable
    monkeypatch.setenv("MINIO3_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("MINIO3_JUDGE_MODEL", "judge")
    monkeypatch.setenv("MINIO3_JUDGE_MAX_RETRIES", "0")
    monkeypatch.setattr(reward, "_judge", None)
    cfg = _config(tiny_qwen_dir, "minio3")
    worker = AgentLoopWorker(cfg, llm_client=None)
    worker.llm_client = scripted_server(worker.tokenizer, _scripts("minio3", "not-a-rule-match"))
    out = asyncio.run(worker.generate_sequences(_batch(cfg, worker, synthetic_rows[:1], tmp_path, "minio3", cases=["answers"])))
    assert list(out.non_tensor_batch["termination_reason"]) == ["answered"]
    assert list(out.non_tensor_batch["unscorable"]) == [True] and list(out.non_tensor_batch["masked"]) == [True]
    assert out.batch["response_mask"].sum() == 0 and out.batch["rm_scores"].sum() == 0


def test_a_row_without_its_raw_image_path_fails_naming_the_row(tiny_qwen_dir, synthetic_rows, tmp_path, scripted_server):
    cfg = _config(tiny_qwen_dir, "minio3")
    worker = AgentLoopWorker(cfg, llm_client=None)
    worker.llm_client = scripted_server(worker.tokenizer, _scripts("minio3", "x"))
    batch = _batch(cfg, worker, synthetic_rows[:1], tmp_path, "minio3", cases=["answers"])
    batch.non_tensor_batch["tools_kwargs"][0] = {}
    doc_id = synthetic_rows[0]["doc_id"]
    with pytest.raises(ValueError, match=f"doc_id='{doc_id}'.*tools_kwargs.zoom.create_kwargs.image"):
        asyncio.run(worker.generate_sequences(batch))


@pytest.mark.slow
def test_overturn_penalty_guard_keeps_looping_trajectories_in_the_gradient(
    tiny_qwen_dir, synthetic_rows, tmp_path, scripted_server, monkeypatch
):
    # the worker writes the YAML entry into verl's process-wide registry: restore it afterwards
    monkeypatch.setitem(_agent_loop_registry, "minio3_agent", _agent_loop_registry["minio3_agent"])
    loops = tmp_path / "agent_loop.yaml"
    loops.write_text(mv.config_path("agent_loop.yaml").read_text().replace("overturn_penalty: null", "overturn_penalty: 0.25"))
    cfg = _config(tiny_qwen_dir, "hermes")
    cfg.actor_rollout_ref.rollout.agent.agent_loop_config_path = str(loops)
    worker = AgentLoopWorker(cfg, llm_client=None)
    worker.llm_client = scripted_server(worker.tokenizer, _scripts("hermes", "x"))
    out = asyncio.run(worker.generate_sequences(_batch(cfg, worker, synthetic_rows[:1], tmp_path, "hermes", cases=["loops"])))
    assert list(out.non_tensor_batch["termination_reason"]) == ["turn_limit"]
    assert list(out.non_tensor_batch["masked"]) == [False] and list(out.non_tensor_batch["minio3/masked"]) == [0.0]
    assert out.batch["response_mask"].sum() > 0 and out.batch["rm_scores"].sum().item() == -0.25


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_sync_and_async_custom_reward_functions_score_in_loop(kind, tiny_qwen_dir, synthetic_rows, tmp_path, scripted_server):
    # verl accepts both kinds for reward.custom_reward_function; a sync one used to crash the
    # rollout with "object dict can't be used in 'await' expression"
    module = tmp_path / f"reward_{kind}.py"
    prefix = "async " if kind == "async" else ""
    module.write_text(
        "import threading\n"
        f"{prefix}def score(data_source, solution_str, ground_truth, extra_info=None, bonus=0.0, **kw):\n"
        "    return {'score': 0.5 + bonus, 'thread': float(threading.current_thread() is threading.main_thread())}\n"
    )
    cfg = _config(tiny_qwen_dir, "minio3")
    cfg.reward.custom_reward_function.path = str(module)
    cfg.reward.custom_reward_function.name = "score"
    with open_dict(cfg):
        cfg.reward.custom_reward_function.reward_kwargs = {"bonus": 0.25}
    worker = AgentLoopWorker(cfg, llm_client=None)
    worker.llm_client = scripted_server(worker.tokenizer, _scripts("minio3", "x"))
    out = asyncio.run(worker.generate_sequences(_batch(cfg, worker, synthetic_rows[:1], tmp_path, "minio3", cases=["answers"])))
    assert out.batch["rm_scores"].sum().item() == 0.75
    # a sync function runs in the executor, never blocking the event loop's thread
    assert list(out.non_tensor_batch["thread"]) == [1.0 if kind == "async" else 0.0]


@pytest.mark.slow
@pytest.mark.parametrize("dialect", ["minio3", "hermes"])
def test_a_final_turn_that_does_not_fit_ends_as_context_limit_unscored(
    dialect, tiny_qwen_dir, synthetic_rows, tmp_path, scripted_server
):
    """Issue 11 item 4: response_length=300 and a ~1,200-token final turn whose answer
    lies past the cut. vLLM generates at most max_tokens; the trajectory is not
    ``answered`` and not scored on text outside the trained tokens."""
    row = synthetic_rows[0]
    cfg = _config(tiny_qwen_dir, dialect, "actor_rollout_ref.rollout.response_length=300")
    worker = AgentLoopWorker(cfg, llm_client=None)
    long_turn = "<think>" + "the sign is small and far away, " * 120 + f"</think><answer>{row['solution']}</answer>{IM_END}"
    assert len(worker.tokenizer.encode(long_turn, add_special_tokens=False)) > 1000
    server = scripted_server(worker.tokenizer, {"answers": [long_turn]})
    worker.llm_client = server
    out = asyncio.run(worker.generate_sequences(_batch(cfg, worker, [row], tmp_path, dialect, cases=["answers"])))
    assert list(out.non_tensor_batch["termination_reason"]) == ["context_limit"]
    assert server.calls["answers"][0]["sampling_params"].get("max_tokens") == 300  # min(8192, budget)
    assert list(out.non_tensor_batch["masked"]) == [True] and list(out.non_tensor_batch["answer"]) == [None]
    assert out.batch["rm_scores"].sum().item() == 0.0 and list(out.non_tensor_batch["judged"]) == [0.0]
    trained = worker.tokenizer.decode(out.batch["responses"][0][out.batch["attention_mask"][0, -300:].bool()])
    assert "<answer>" not in trained


@pytest.mark.slow
def test_the_loop_asks_the_core_for_a_stop_event_reason(tiny_qwen_dir, synthetic_rows, tmp_path, scripted_server,
                                                          monkeypatch):
    """The turn cut by the response budget is the ``length`` stop event; its reason is the
    core's table (``core.termination.STOP_EVENTS``), the same one TRL and eval ask."""
    from minio3_ext.core import termination

    monkeypatch.setitem(termination.STOP_EVENTS, "length", "no_answer")
    row = synthetic_rows[0]
    cfg = _config(tiny_qwen_dir, "minio3", "actor_rollout_ref.rollout.response_length=300")
    worker = AgentLoopWorker(cfg, llm_client=None)
    long_turn = "<think>" + "the sign is small and far away, " * 120 + f"</think><answer>{row['solution']}</answer>{IM_END}"
    worker.llm_client = scripted_server(worker.tokenizer, {"answers": [long_turn]})
    out = asyncio.run(worker.generate_sequences(_batch(cfg, worker, [row], tmp_path, "minio3", cases=["answers"])))
    assert list(out.non_tensor_batch["termination_reason"]) == ["no_answer"]
    assert list(out.non_tensor_batch["turns"]) == [1]


@pytest.fixture(scope="module")
def minio3_cfg(tiny_qwen_dir):
    return _config(tiny_qwen_dir, "minio3")


@pytest.mark.parametrize("where, line, message", [
    # each used to be accepted and silently replaced by the rollout config's value
    ("loop", "max_turns: 4", r"'max_turns' cannot be set here, it is taken from actor_rollout_ref.rollout.multi_turn.max_assistant_turns"),
    ("loop", "dialect: hermes", r"'dialect' cannot be set here, it is taken from actor_rollout_ref.rollout.multi_turn.format"),
    ("loop", "max_context_tokens: 1000", r"'max_context_tokens' cannot be set here, it is taken from context_budget"),
    # used to reach the crop rules only
    ("loop", "min_side: 56", r"'min_side' is ambiguous; use 'crop_min_side'"),
    # the tool YAML's dialect used to be dropped by the loop
    ("tool", "dialect: hermes", r"'dialect' is 'hermes' in the tool YAML entry of 'zoom' but .*format='minio3' speaks 'minio3'"),
])
def test_a_yaml_option_the_loop_would_replace_is_refused_in_one_line(
    where, line, message, minio3_cfg, synthetic_rows, tmp_path, scripted_server, monkeypatch
):
    import copy

    monkeypatch.setitem(_agent_loop_registry, "minio3_agent", _agent_loop_registry["minio3_agent"])
    cfg = copy.deepcopy(minio3_cfg)
    multi_turn, agent = cfg.actor_rollout_ref.rollout.multi_turn, cfg.actor_rollout_ref.rollout.agent
    if where == "loop":
        path = tmp_path / "agent_loop.yaml"
        path.write_text(mv.config_path("agent_loop.yaml").read_text() + f"  {line}\n")
        agent.agent_loop_config_path = str(path)
    else:
        path = tmp_path / "zoom_tool.yaml"
        path.write_text(mv.config_path("zoom_tool.yaml").read_text() + f"      {line}\n")
        multi_turn.tool_config_path = str(path)
    worker = AgentLoopWorker(cfg, llm_client=None)
    worker.llm_client = scripted_server(worker.tokenizer, _scripts("minio3", "x"))
    batch = _batch(cfg, worker, synthetic_rows[:1], tmp_path, "minio3", cases=["answers"])
    with pytest.raises(Exception) as e:  # hydra.utils.instantiate wraps the loop's error
        asyncio.run(worker.generate_sequences(batch))
    error = e.value if isinstance(e.value, ValueError) else e.value.__cause__
    assert isinstance(error, ValueError) and re.search(message, str(error)) and "\n" not in str(error)
    if where == "loop":
        assert "valid keys: [" in str(error) and "'score_in_loop'" in str(error) and "'view_min_side'" in str(error)


def test_a_tool_yaml_tools_list_reaches_the_loops_episode(minio3_cfg, synthetic_rows, tmp_path, scripted_server):
    # the loop used to drop the tool YAML's `tools` (it reached verl's stock loop only)
    import copy

    cfg = copy.deepcopy(minio3_cfg)
    path = tmp_path / "zoom_tool.yaml"
    path.write_text(mv.config_path("zoom_tool.yaml").read_text() + "      tools: [zoom, rotate]\n")
    cfg.actor_rollout_ref.rollout.multi_turn.tool_config_path = str(path)
    worker = AgentLoopWorker(cfg, llm_client=None)
    row = synthetic_rows[0]
    server = scripted_server(worker.tokenizer, {"answers": [f"<answer>{row['solution']}</answer>{IM_END}"]})
    worker.llm_client = server
    asyncio.run(worker.generate_sequences(_batch(cfg, worker, [row], tmp_path, "minio3", cases=["answers"])))
    prompt = get_dialect("minio3", tools=("zoom", "rotate")).system_prompt()
    assert "- rotate:" in prompt and server.calls["answers"][0]["context"].startswith("<|im_start|>system\n" + prompt)


@pytest.mark.parametrize("dialect", ["minio3", "hermes"])
def test_each_turn_is_decoded_once_and_read_once_by_the_core(
    dialect, tiny_qwen_dir, synthetic_rows, tmp_path, scripted_server, monkeypatch
):
    """Issue 20: a turn used to be decoded twice (verl's parser call, then the loop) and
    read twice (``read_call``, then ``parse_call`` of the arguments JSON-encoded for verl
    and decoded back, or ``parse`` again). Now one decode and one
    :meth:`Dialect.parse` per assistant turn, the turn verl does not parse (its turn cap,
    the ``loops`` case) included, and one call from the loop into the episode per turn,
    :meth:`Episode.step` (the loop made two, ``parse`` through its reader, then ``act``)."""
    from minio3_ext.core import Episode
    from minio3_ext.core.dialect import Dialect

    calls, depth = [], [0]  # the loop's calls into the episode (not the episode's calls to itself)
    for name in ("step", "act", "parse", "parse_call", "parse_turn", "call"):
        def entry(self, *a, _real=getattr(Episode, name), _name=name, **kw):
            if not depth[0]:
                calls.append(_name)
            depth[0] += 1
            try:
                return _real(self, *a, **kw)
            finally:
                depth[0] -= 1
        monkeypatch.setattr(Episode, name, entry)
    reads = []
    for name in ("parse", "read_call"):  # the core's entry points that read a turn's text
        def spy(self, text, *a, _real=getattr(Dialect, name), _name=name, **kw):
            reads.append((_name, text))
            return _real(self, text, *a, **kw)
        monkeypatch.setattr(Dialect, name, spy)
    cfg = _config(tiny_qwen_dir, dialect)
    worker = AgentLoopWorker(cfg, llm_client=None)
    rows = synthetic_rows[:3]
    server = scripted_server(worker.tokenizer, _scripts(dialect, rows[0]["solution"]))
    generated = []
    real_generate = server.generate

    async def generate(*args, **kwargs):
        out = await real_generate(*args, **kwargs)
        generated.append(list(out.token_ids))
        return out
    server.generate = generate
    decoded = []
    real_decode = worker.tokenizer.decode
    monkeypatch.setattr(worker.tokenizer, "decode", lambda ids, *a, **kw: (decoded.append(list(ids)), real_decode(ids, *a, **kw))[1])
    worker.llm_client = server
    out = asyncio.run(worker.generate_sequences(_batch(cfg, worker, rows, tmp_path, dialect)))

    turns = sum(int(t) for t in out.non_tensor_batch["turns"])
    assert turns == len(generated) == 3 + MAX_TURNS + 3
    assert [name for name, _ in reads] == ["parse"] * turns
    assert calls == ["step"] * turns
    assert sorted(text for _, text in reads) == sorted(real_decode(ids) for ids in generated)
    # each generated turn decoded once (a script may repeat a turn; the reward decodes whole responses)
    times = Counter(map(tuple, decoded))
    assert {ids: times[ids] for ids in Counter(map(tuple, generated))} == Counter(map(tuple, generated))
