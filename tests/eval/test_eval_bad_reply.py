"""Issue 21 item 2: a 200 reply with no usable message (an HTML page, no or empty
``choices``, a null message) is retried, then becomes that episode's failure; the run
goes on, summarises, and a rerun retries only that episode (real HTTP servers,
``minio3 eval`` in a subprocess)."""

import json
import re

import pytest

from eval_vlm_script import ScriptedVLM, exact_judge
from minio3_ext.testing.fake_openai import FakeOpenAIServer, Fault
from test_eval_sampling import _eval

BAD = {
    "html": Fault.malformed(b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    "no_choices": {"id": "x", "object": "chat.completion"},
    "empty_choices": {"id": "x", "object": "chat.completion", "choices": []},
    "null_message": {"id": "x", "object": "chat.completion",
                     "choices": [{"index": 0, "message": None, "finish_reason": "stop"}]},
}


# ~4 s each (two CLI runs); the fast lane keeps the HTML page, the slow lane the other three shapes
@pytest.mark.parametrize("kind", [k if k == "html" else pytest.param(k, marks=pytest.mark.slow) for k in sorted(BAD)])
def test_a_bad_200_reply_fails_its_episode_and_the_run_goes_on(synth_items, tmp_path, kind):
    rows, path = synth_items
    by_id = {r["doc_id"]: r for r in rows}
    broken = rows[0]["doc_id"]
    vlm = ScriptedVLM(by_id, {i: "solve" for i in by_id})
    calls = {"broken": 0}

    def policy(request):
        text = " ".join(p.get("text", "") for p in request["messages"][1]["content"] if isinstance(p, dict))
        if f"[{broken}]" in text and calls.get("healed") is None:
            calls["broken"] += 1
            return BAD[kind]
        return vlm(request)

    out = tmp_path / "out.jsonl"
    with FakeOpenAIServer(policy, models=["policy"]) as server, \
            FakeOpenAIServer(exact_judge, models=["judge"]) as judge:
        proc = _eval(path, out, server.base_url, "--k", "1", "--concurrency", "1", judge_url=judge.base_url)
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout
        assert calls["broken"] == 3  # retried, then the episode failed
        assert re.search(rf"failed: .*answered HTTP 200 with .*3 times in a row", proc.stderr), proc.stderr
        assert "1 failed (rerun to retry)" in proc.stdout
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert sorted(r["id"] for r in records) == sorted(i for i in by_id if i != broken)  # the run went on
        calls["healed"] = True  # the server recovers: the rerun runs only the failed episode
        again = _eval(path, out, server.base_url, "--k", "1", "--concurrency", "1", judge_url=judge.base_url)
        assert again.returncode == 0, again.stderr
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert sorted(r["id"] for r in records) == sorted(by_id)
