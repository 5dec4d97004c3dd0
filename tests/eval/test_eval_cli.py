"""`minio3 eval` end to end: real HTTP policy and judge servers, a subprocess, kill and resume."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from PIL import Image

from eval_vlm_script import ScriptedVLM, exact_judge
from minio3_ext.testing.fake_openai import FakeOpenAIServer, Fault

MAIN = "import sys; from minio3_ext.cli import main; sys.exit(main())"  # what the `minio3` script runs
BEHAVIOURS = ["solve", "wrong", "loop", "garbage", "slow", "alternate"]


def _cmd(items_path, out, policy_url, judge_url, *extra):
    return [sys.executable, "-c", MAIN, "eval", "--data", str(items_path), "--out", str(out),
            "--base-url", policy_url, "--model", "policy", "--judge-base-url", judge_url, "--judge-model", "judge",
            "--no-progress", *extra]


def _env():
    return {**os.environ, "MINIO3_JUDGE_USE_RULES": "0", "MINIO3_JUDGE_MAX_RETRIES": "0"}


def _records(path):
    return [json.loads(line) for line in open(path)]


def test_eval_numbers_match_hand_computed_avg_at_k(synth_items, tmp_path):
    rows, items_path = synth_items
    behaviours = dict(zip((r["doc_id"] for r in rows), BEHAVIOURS))
    out = tmp_path / "run.jsonl"
    with FakeOpenAIServer(ScriptedVLM({r["doc_id"]: r for r in rows}, behaviours), models=["policy"]) as policy, \
            FakeOpenAIServer(exact_judge, models=["judge"]) as judge:
        proc = subprocess.run(_cmd(items_path, out, policy.base_url, judge.base_url,
                                   "--k", "2", "--budgets", "2,4,8", "--concurrency", "4"),
                              env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    records = _records(out)
    assert len(records) == 12 and all(r["scored"] for r in records)
    by_behaviour = {behaviours[r["id"]]: r for r in records}
    assert by_behaviour["loop"]["termination_reason"] == "turn_limit" and by_behaviour["loop"]["num_turns"] == 8
    assert by_behaviour["garbage"]["termination_reason"] == "no_answer"
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    acc = {r["budget"]: r["accuracy"] for r in summary["rows"]}
    # per item at budget 2: solve 1, wrong 0, loop 0, garbage 0, slow 0 (cut), alternate 1/2
    assert acc[2] == pytest.approx(1.5 / 6)
    # budget 4 and 8: slow answers on turn 4
    assert acc[4] == pytest.approx(2.5 / 6) and acc[8] == pytest.approx(2.5 / 6)
    reasons = {r["budget"]: r["reasons"] for r in summary["rows"]}
    assert reasons[8] == {"answered": pytest.approx(8 / 12), "no_answer": pytest.approx(2 / 12),
                          "turn_limit": pytest.approx(2 / 12)}
    assert reasons[2]["turn_limit"] == pytest.approx(4 / 12)  # loop and slow were still acting at turn 2
    # the judge saw exactly the answered samples' answers, each at most once per sample (cache)
    from minio3_ext.judge.prompt import parse_data_block

    judged = {(d["question"], d["prediction"]) for d in
              (parse_data_block(q["messages"][-1]["content"])[1] for q in judge.requests)}
    assert judged == {(r["question"], r["answer"]) for r in records if r["answer"] is not None}
    assert len(judged) <= len(judge.requests) <= sum(r["answer"] is not None for r in records) == 8
    assert "| synthetic_visual_search | all | 4 | 41.7 |" in proc.stdout
    with Image.open(out.with_suffix(".png")) as png:
        assert png.size[0] > 300
    # rerun (the same URLs: they are part of the resume key): nothing left to do, nothing rescored
    port = lambda server: int(server.base_url.rsplit(":", 1)[1].split("/")[0])  # noqa: E731
    with FakeOpenAIServer(exact_judge, models=["judge"], port=port(judge)) as judge2, \
            FakeOpenAIServer(lambda r: 1 / 0, models=["policy"], port=port(policy)) as policy2:
        again = subprocess.run(_cmd(items_path, out, policy2.base_url, judge2.base_url, "--k", "2", "--budgets", "2,4,8"),
                               env=_env(), capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        # a larger budget cannot be derived from runs that hit the old one: refused, not guessed
        larger = subprocess.run(_cmd(items_path, out, policy2.base_url, judge2.base_url, "--k", "2", "--budgets", "16"),
                                env=_env(), capture_output=True, text=True, timeout=120)
        assert larger.returncode == 2 and "cannot be derived" in larger.stderr
        assert policy2.requests == [] and judge2.requests == []
    assert len(_records(out)) == 12


def _wait_for_lines(path, n, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {n} lines")


def test_killed_eval_resumes_and_scores_every_item_exactly_once(synth_items, tmp_path):
    rows, items_path = synth_items
    vlm = ScriptedVLM({r["doc_id"]: r for r in rows}, {r["doc_id"]: "solve" for r in rows})
    out = tmp_path / "run.jsonl"
    args = ("--k", "2", "--budgets", "4", "--concurrency", "2")
    with FakeOpenAIServer(lambda req: Fault.delay(0.1, then=vlm(req)), models=["policy"]) as policy, \
            FakeOpenAIServer(exact_judge, models=["judge"]) as judge:
        for sig, lines in ((signal.SIGTERM, 2), (signal.SIGKILL, 5)):
            proc = subprocess.Popen(_cmd(items_path, out, policy.base_url, judge.base_url, *args), env=_env(),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _wait_for_lines(out, lines, proc)
            proc.send_signal(sig)
            proc.wait(timeout=30)
            assert proc.returncode == -sig
        partial = len(_records(out))
        assert 5 <= partial < 12
        final = subprocess.run(_cmd(items_path, out, policy.base_url, judge.base_url, *args), env=_env(),
                               capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    records = _records(out)
    keys = Counter((r["id"], r["sample"]) for r in records)
    assert len(keys) == 12 and set(keys.values()) == {1}
    assert all(r["scored"] and r["verdict"] == 1 for r in records)
    # verdicts judged before a kill are cached, so the judge never answers more than once per record
    assert len(judge.requests) <= 12
    assert f"{12 - partial} new, {partial} from earlier runs" in final.stdout
