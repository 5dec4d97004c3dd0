"""run_episode against a real HTTP OpenAI-compatible server, budgets as prefixes."""

import asyncio
import base64
import io

import pytest
from PIL import Image

from eval_vlm_script import ScriptedVLM, local_policy, target_box
from minio3_ext.core.episode import EpisodeConfig
from minio3_ext.core.images import ImageBank
from minio3_ext.eval.openai_policy import OpenAIPolicy, to_openai_messages
from minio3_ext.eval.runner import at_budget, run_episode, score_trajectory
from minio3_ext.testing.fake_openai import FakeOpenAIServer


def _run(rows, behaviour, max_turns=6, dialect="minio3", **kw):
    by_id = {r["doc_id"]: r for r in rows}
    vlm = ScriptedVLM(by_id, {i: behaviour for i in by_id})
    with FakeOpenAIServer(vlm, models=["policy"]) as server:
        policy = OpenAIPolicy(server.base_url, "policy", dialect=dialect, max_retries=0)
        traj = asyncio.run(run_episode(policy, rows[0], EpisodeConfig(max_turns=max_turns, dialect=dialect), ImageBank(), **kw))
        return traj, server.requests


def _run_local(rows, behaviour, max_turns, bank):
    vlm = ScriptedVLM({r["doc_id"]: r for r in rows}, {r["doc_id"]: behaviour for r in rows})
    return asyncio.run(run_episode(local_policy(vlm), rows[0], EpisodeConfig(max_turns=max_turns), bank))


def _decode(url):
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_solver_zooms_on_target_then_answers(synth_items, tmp_path):
    rows, _ = synth_items
    traj, requests = _run(rows, "solve", crops_dir=tmp_path / "crops")
    assert traj["termination_reason"] == "answered" and traj["answer"] == rows[0]["solution"]
    assert [t["action"]["kind"] for t in traj["turns"]] == ["zoom", "answer"]
    # the stop string dropped by the server was restored in the history
    assert traj["turns"][0]["assistant"].endswith("</grounding>")
    x0, y0, x1, y1 = traj["turns"][0]["action"]["box_in_original"]
    tx0, ty0, tx1, ty1 = rows[0]["target_bbox"]
    assert x0 <= tx0 and y0 <= ty0 and x1 >= tx1 and y1 >= ty1
    # second request: original + the crop as base64 images, the crop cut from the raw image
    images = [p["image_url"]["url"] for m in requests[1]["messages"] if isinstance(m["content"], list)
              for p in m["content"] if p["type"] == "image_url"]
    assert len(images) == 2
    crop = _decode(images[1])
    assert abs(crop.width / crop.height - (x1 - x0) / (y1 - y0)) < 0.05
    assert requests[0]["stop"] == ["</grounding>"]
    saved = Image.open(traj["turns"][0]["observation_image"])
    assert saved.size == crop.size
    assert traj["verdict"] is None and traj["scored"] is False


def test_looping_policy_hits_turn_limit(synth_items):
    rows, _ = synth_items
    traj, requests = _run(rows, "loop", max_turns=5)
    assert traj["termination_reason"] == "turn_limit" and traj["is_overturn"]
    assert traj["num_turns"] == 5 and len(requests) == 5
    assert traj["turns"][-1]["observation_text"] is None


def test_garbage_ends_without_answer(synth_items):
    rows, _ = synth_items
    traj, _ = _run(rows, "garbage")
    assert traj["termination_reason"] == "no_answer" and not traj["is_overturn"]
    assert traj["answer"] is None and traj["turns"][0]["action"]["kind"] == "none"


@pytest.mark.parametrize("behaviour", ["slow", "loop", "solve"])
def test_budget_prefix_equals_a_rerun_with_that_budget(synth_items, behaviour):
    rows, _ = synth_items
    bank = ImageBank()
    full = _run_local(rows, behaviour, 6, bank)
    for budget in range(1, 7):
        rerun = _run_local(rows, behaviour, budget, bank)
        derived = at_budget(full, budget)
        for key in ("termination_reason", "is_overturn", "answer", "num_turns", "budget"):
            assert derived[key] == rerun[key], (behaviour, budget, key)
        assert [t["action"] for t in derived["turns"]] == [t["action"] for t in rerun["turns"]]
        assert [t["observation_index"] for t in derived["turns"]] == [t["observation_index"] for t in rerun["turns"]]


def test_budget_beyond_a_cut_run_is_refused(synth_items):
    rows, _ = synth_items
    traj = _run_local(rows, "loop", 3, ImageBank())
    with pytest.raises(ValueError, match="cannot be derived"):
        at_budget(traj, 4)


def test_scoring_no_answer_is_zero_without_judge_and_unscorable_stays_none():
    class Judge:
        calls = 0

        async def score(self, items):
            Judge.calls += 1

            class V:
                score = None
            return [V()]

    base = {"question": "q", "ground_truth": "A"}
    assert asyncio.run(score_trajectory({**base, "answer": None}, Judge()))["verdict"] == 0
    assert Judge.calls == 0
    assert asyncio.run(score_trajectory({**base, "answer": "B"}, Judge()))["verdict"] is None
    assert Judge.calls == 1


def test_hermes_observations_travel_as_user_tool_responses(synth_items):
    rows, _ = synth_items
    box = target_box(rows[0])

    class Hermes(ScriptedVLM):
        def __call__(self, request):
            turn = sum(m["role"] == "assistant" for m in request["messages"])
            if turn == 0:
                return '<tool_call>{"name": "zoom", "arguments": {"bbox_2d": %s}}' % box
            return "<answer>x</answer>"

    with FakeOpenAIServer(Hermes({}, {})) as server:
        policy = OpenAIPolicy(server.base_url, "p", dialect="hermes", max_retries=0)
        traj = asyncio.run(run_episode(policy, rows[0], EpisodeConfig(dialect="hermes"), ImageBank()))
        last = server.requests[1]["messages"][-1]
    assert traj["termination_reason"] == "answered" and traj["turns"][0]["action"]["kind"] == "zoom"
    assert traj["turns"][0]["assistant"].endswith("</tool_call>")
    assert last["role"] == "user" and last["content"][0]["text"].startswith("<tool_response>")
    assert any(p["type"] == "image_url" for p in last["content"])


def test_to_openai_messages_puts_images_where_the_slots_are():
    img = Image.new("RGB", (40, 30), "red")
    msgs = [{"role": "system", "content": [{"type": "text", "text": "sys"}]},
            {"role": "user", "content": [{"type": "text", "text": "a "}, {"type": "image", "image": img},
                                         {"type": "text", "text": " b"}]}]
    out = to_openai_messages(msgs)
    assert out[0] == {"role": "system", "content": "sys"}
    kinds = [p["type"] for p in out[1]["content"]]
    assert kinds == ["text", "image_url", "text"]
    assert _decode(out[1]["content"][1]["image_url"]["url"]).size == (40, 30)


def test_server_context_overflow_ends_the_episode_as_context_limit(synth_items):
    from minio3_ext.testing.fake_openai import Fault

    rows, _ = synth_items
    vlm = ScriptedVLM({r["doc_id"]: r for r in rows}, {r["doc_id"]: "loop" for r in rows})

    def handler(request):
        if sum(m["role"] == "assistant" for m in request["messages"]) == 2:
            return Fault.status(400, message="This model's maximum context length is 32768 tokens. However, you requested 40000 tokens.")
        return vlm(request)

    with FakeOpenAIServer(handler) as server:
        policy = OpenAIPolicy(server.base_url, "p", max_retries=0)
        traj = asyncio.run(run_episode(policy, rows[0], EpisodeConfig(max_turns=8), ImageBank()))
    assert traj["termination_reason"] == "context_limit" and traj["is_overturn"] and traj["num_turns"] == 2

    def other_400(request):
        return Fault.status(400, message="invalid image")

    from minio3_ext.eval.openai_policy import EndpointError

    with FakeOpenAIServer(other_400) as server:
        policy = OpenAIPolicy(server.base_url, "p", max_retries=0)
        with pytest.raises(EndpointError, match="HTTP 400: invalid image"):
            asyncio.run(run_episode(policy, rows[0], EpisodeConfig(max_turns=8), ImageBank()))


def test_the_runner_asks_the_core_for_a_stop_event_reason(synth_items, monkeypatch):
    """A server's context error is the ``context_full`` stop event; its reason is the core's table."""
    from minio3_ext.core import termination
    from minio3_ext.eval.runner import ContextLimitExceeded, ImageLimitExceeded

    rows, _ = synth_items
    monkeypatch.setitem(termination.STOP_EVENTS, "context_full", "no_answer")
    monkeypatch.setitem(termination.STOP_EVENTS, "image_cap", "turn_limit")
    for error, reason in ((ContextLimitExceeded("full"), "no_answer"), (ImageLimitExceeded("4 images"), "turn_limit")):
        async def policy(messages, error=error):
            raise error
        traj = asyncio.run(run_episode(policy, rows[0], EpisodeConfig(max_turns=4), ImageBank()))
        assert traj["termination_reason"] == reason
