"""The eval client against the ways real OpenAI-compatible servers behave (issue 14,
items 1-9): vLLM's max_model_len, per-prompt image limits, FastAPI / plain-text error
bodies, stop_reason, dead servers, settings-keyed resume. Real HTTP throughout
(:class:`FakeOpenAIServer` scripted like vLLM / ``transformers serve`` answer)."""

import asyncio
import json
import os
import subprocess
import sys
import threading
import time

import pytest
from PIL import Image

from eval_vlm_script import ScriptedVLM, exact_judge, target_box, zoom
from minio3_ext.core.episode import EpisodeConfig
from minio3_ext.core.images import ImageBank
import minio3_ext.eval.openai_policy as op
from minio3_ext.eval.openai_policy import OpenAIPolicy, image_data_url
from minio3_ext.eval.runner import run_episode
from minio3_ext.testing.fake_openai import FakeOpenAIServer, Fault, closed_port_url

MAIN = "import sys; from minio3_ext.cli import main; sys.exit(main())"


class VLLMLike(FakeOpenAIServer):
    """A fake server whose ``GET /v1/models`` lists model cards (vLLM adds ``max_model_len``)."""

    def __init__(self, handler, cards):
        super().__init__(handler, models=[c["id"] for c in cards])
        owner, base = self, self._httpd.RequestHandlerClass
        self.cards = cards

        class Handler(base):
            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    self._send_json(200, {"object": "list", "data": owner.cards})
                else:
                    super().do_GET()

        self._httpd.RequestHandlerClass = Handler


def _vlm(rows, behaviour):
    return ScriptedVLM({r["doc_id"]: r for r in rows}, {r["doc_id"]: behaviour for r in rows})


def _images(request):
    return sum(p.get("type") == "image_url" for m in request["messages"] if isinstance(m["content"], list)
               for p in m["content"])


def _episode(policy, row, **config):
    async def go():
        await policy.preflight()
        return await run_episode(policy, row, EpisodeConfig(**{"max_turns": 6, **config}), ImageBank())

    return asyncio.run(go())


# 1 ------------------------------------------------------------------------------------
def test_max_tokens_is_clamped_to_the_servers_max_model_len(synth_items):
    rows, _ = synth_items
    vlm = _vlm(rows, "solve")

    def handler(request):  # vLLM's check
        if request["max_tokens"] > 4096:
            return Fault.status(400, message=f"max_tokens={request['max_tokens']} cannot be greater than "
                                             "max_model_len=4096. Please request fewer output tokens.")
        return vlm(request)

    with VLLMLike(handler, [{"id": "policy", "object": "model", "max_model_len": 4096}]) as server:
        policy = OpenAIPolicy(server.base_url, "policy", max_retries=0)
        traj = _episode(policy, rows[0])
        assert policy.max_model_len == 4096
        assert traj["termination_reason"] == "answered"
        assert {r["max_tokens"] for r in server.requests} == {4096}
    # a server that does not list max_model_len but states it in the rejection: retried once, then clamped
    with FakeOpenAIServer(handler, models=["policy"]) as server:
        policy = OpenAIPolicy(server.base_url, "policy", max_retries=0)
        traj = _episode(policy, rows[0])
        assert traj["termination_reason"] == "answered"
        assert [r["max_tokens"] for r in server.requests] == [8192, 4096, 4096]


def test_preflight_names_the_url_and_the_models_the_server_has():
    with FakeOpenAIServer(lambda r: "x", models=["Qwen/Qwen2.5-VL-7B"]) as server:
        policy = OpenAIPolicy(server.base_url, "qwen-typo", max_retries=0)
        with pytest.raises(op.EndpointError, match="does not serve --model 'qwen-typo'.*Qwen/Qwen2.5-VL-7B"):
            asyncio.run(policy.preflight())
    url = closed_port_url()
    with pytest.raises(op.EndpointConnectionError, match=f"cannot reach {url}"):
        asyncio.run(OpenAIPolicy(url, "m", max_retries=0).preflight())


# 2 ------------------------------------------------------------------------------------
def test_server_image_limit_ends_the_episode_as_image_limit(synth_items):
    rows, _ = synth_items
    vlm = _vlm(rows, "loop")

    def handler(request):
        if _images(request) > 2:
            return Fault.status(400, message="At most 2 image(s) may be provided in one prompt.")
        return vlm(request)

    with FakeOpenAIServer(handler, models=["policy"]) as server:
        policy = OpenAIPolicy(server.base_url, "policy", max_retries=0)
        traj = _episode(policy, rows[0], max_turns=8)
    assert traj["termination_reason"] == "image_limit" and traj["is_overturn"]
    assert traj["num_turns"] == 2 and "At most 2 image(s)" in traj["termination_detail"]
    assert policy.server_image_limit == 2


# 3 ------------------------------------------------------------------------------------
def test_images_travel_as_jpeg_by_default_with_the_quality_asked(synth_items):
    rows, _ = synth_items
    with FakeOpenAIServer(_vlm(rows, "solve"), models=["policy"]) as server:
        traj = _episode(OpenAIPolicy(server.base_url, "policy", max_retries=0), rows[0])
        urls = [p["image_url"]["url"] for m in server.requests[-1]["messages"] if isinstance(m["content"], list)
                for p in m["content"] if p["type"] == "image_url"]
    assert traj["termination_reason"] == "answered"
    assert urls and all(u.startswith("data:image/jpeg;base64,") for u in urls)
    img = Image.effect_noise((400, 300), 60).convert("RGB")
    assert len(image_data_url(img, "jpeg", 30)) < len(image_data_url(img, "jpeg", 95))


def test_image_encoding_does_not_block_the_event_loop():
    big = Image.effect_noise((1200, 900), 80).convert("RGB")
    t0 = time.perf_counter()
    image_data_url(big, "png")
    encode_s = time.perf_counter() - t0
    assert encode_s > 0.1  # big enough to measure
    with FakeOpenAIServer(lambda r: "<answer>a</answer>", models=["p"]) as server:
        policy = OpenAIPolicy(server.base_url, "p", max_retries=0, image_format="png")
        messages = [{"role": "user", "content": [{"type": "image", "image": big}, {"type": "text", "text": "q"}]}]

        async def go():
            gaps, done = [], asyncio.Event()

            async def ticker():
                last = time.perf_counter()
                while not done.is_set():
                    await asyncio.sleep(0.005)
                    now = time.perf_counter()
                    gaps.append(now - last)
                    last = now

            task = asyncio.create_task(ticker())
            await asyncio.sleep(0.05)  # the ticker runs
            await policy(messages)
            done.set()
            await task
            return max(gaps)

        worst_gap = asyncio.run(go())
    assert worst_gap < encode_s / 2, (worst_gap, encode_s)


# 4 ------------------------------------------------------------------------------------
def test_no_stop_and_extra_body_reach_the_server(synth_items):
    rows, _ = synth_items
    vlm = _vlm(rows, "solve")

    def transformers_serve(request):  # answers 500 to any request with `stop`
        if "stop" in request:
            return Fault("status", code=500, body=b"Internal Server Error")
        return vlm(request)

    with FakeOpenAIServer(transformers_serve, models=["policy"]) as server:
        policy = OpenAIPolicy(server.base_url, "policy", max_retries=0, stop=False,
                              extra_body={"generation_config": json.dumps({"do_sample": True})})
        traj = _episode(policy, rows[0])
        assert all("stop" not in r for r in server.requests)
        assert all(json.loads(r["generation_config"]) == {"do_sample": True} for r in server.requests)
    # no stop sent, so nothing is "restored": the scripted zoom without its closing tag stays open
    assert not traj["turns"][0]["assistant"].endswith("</grounding>")


# 5 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("body,expected", [
    (b'{"detail": "Unexpected fields in the request: {\'do_sample\'}"}', "Unexpected fields in the request"),
    (b"Internal Server Error", "Internal Server Error"),
    (b'{"object": "error", "message": "invalid image url", "type": "BadRequestError", "code": 400}', "invalid image url"),
])
def test_full_server_error_text_reaches_the_message(body, expected):
    with FakeOpenAIServer(lambda r: Fault("status", code=400 if b"{" in body else 500, body=body), models=["p"]) as server:
        policy = OpenAIPolicy(server.base_url, "p", max_retries=0)
        with pytest.raises(op.EndpointError) as err:
            asyncio.run(policy([{"role": "user", "content": "hi"}]))
    assert expected in str(err.value) and server.base_url in str(err.value)


def test_context_overflow_in_a_fastapi_detail_body_is_context_limit(synth_items):
    rows, _ = synth_items
    vlm = _vlm(rows, "loop")

    def handler(request):
        if sum(m["role"] == "assistant" for m in request["messages"]) == 2:
            return Fault("status", code=400, body=json.dumps(
                {"detail": "Input length exceeds the model's context: prompt is too long (5000 > 4096)"}).encode())
        return vlm(request)

    with FakeOpenAIServer(handler, models=["policy"]) as server:
        traj = _episode(OpenAIPolicy(server.base_url, "policy", max_retries=0), rows[0], max_turns=8)
    assert traj["termination_reason"] == "context_limit" and traj["num_turns"] == 2


# 6 ------------------------------------------------------------------------------------
def test_closing_tag_is_restored_only_when_the_server_says_the_stop_string_matched(synth_items):
    rows, _ = synth_items
    open_zoom = zoom(target_box(rows[0]), close=False)

    def reply(stop_reason):
        return {"id": "c", "object": "chat.completion", "created": 0, "model": "p",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": open_zoom},
                             "finish_reason": "stop", "stop_reason": stop_reason}]}

    msgs = [{"role": "user", "content": "q"}]
    for stop_reason, restored in (("</grounding>", True), (None, False), (151645, False)):
        with FakeOpenAIServer(lambda r: reply(stop_reason), models=["p"]) as server:
            text = asyncio.run(OpenAIPolicy(server.base_url, "p", max_retries=0)(msgs))
        assert text.endswith("</grounding>") is restored, stop_reason


# 7 ------------------------------------------------------------------------------------
def test_dead_server_stops_the_run_after_n_connection_errors(synth_items, tmp_path):
    from minio3_ext.eval.evaluate import evaluate
    from minio3_ext.eval.records import as_item
    from minio3_ext.judge import Judge, JudgeConfig

    rows, _ = synth_items
    url = closed_port_url()
    policy = OpenAIPolicy(url, "p", max_retries=0, max_connection_errors=3)
    t0 = time.perf_counter()
    with pytest.raises(op.EndpointUnreachable, match=f"3 requests in a row could not reach {url}"):
        asyncio.run(evaluate(policy, [as_item(r) for r in rows], tmp_path / "out.jsonl", Judge(JudgeConfig()), k=20, budgets=(2,),
                             concurrency=2))
    assert time.perf_counter() - t0 < 20


def test_eval_on_a_closed_port_fails_at_once_naming_the_url(synth_items, tmp_path):
    _, items_path = synth_items
    url = closed_port_url()
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", MAIN, "eval", "--input", str(items_path), "--out",
                           str(tmp_path / "o.jsonl"), "--base-url", url, "--model", "m", "--no-progress"],
                          capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 2 and f"cannot reach {url}" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.jsonl").exists()
    print(f"closed port: failed in {elapsed:.2f} s (process start included)")


# 8, 9 and the identical-samples warning: through the CLI ------------------------------
def _eval(items_path, out, policy_url, judge_url, *extra):
    cmd = [sys.executable, "-c", MAIN, "eval", "--input", str(items_path), "--out", str(out),
           "--base-url", policy_url, "--model", "policy", "--judge-base-url", judge_url, "--judge-model", "judge",
           "--no-progress", "--budgets", "4", *extra]
    env = {**os.environ, "MINIO3_JUDGE_USE_RULES": "0", "MINIO3_JUDGE_MAX_RETRIES": "0"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)


def test_partial_run_is_marked_in_the_summary(synth_items, tmp_path):
    rows, items_path = synth_items
    vlm = _vlm(rows, "solve")
    broken = rows[0]["doc_id"]

    def handler(request):
        if f"[{broken}]" in json.dumps(request["messages"][1]):
            return Fault.status(500, message="engine crashed")
        return vlm(request)

    out = tmp_path / "run.jsonl"
    with FakeOpenAIServer(handler, models=["policy"]) as policy, FakeOpenAIServer(exact_judge, models=["judge"]) as judge:
        proc = _eval(items_path, out, policy.base_url, judge.base_url, "--max-connection-errors", "100")
    assert proc.returncode == 1
    assert "Partial run" in proc.stdout and "5 of 6" in proc.stdout
    assert "Partial run" in out.with_suffix(".summary.md").read_text()
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["run"]["partial"] is True
    assert "engine crashed" in proc.stderr


@pytest.mark.slow  # seven CLI runs (~8 s); tests/eval/test_eval_resume_keys.py checks the keys in-process
def test_resume_with_other_settings_is_refused_naming_the_setting(synth_items, tmp_path):
    rows, items_path = synth_items
    out = tmp_path / "run.jsonl"
    with FakeOpenAIServer(_vlm(rows, "solve"), models=["policy", "other"]) as policy, \
            FakeOpenAIServer(exact_judge, models=["judge"]) as judge:
        first = _eval(items_path, out, policy.base_url, judge.base_url, "--limit", "2")
        assert first.returncode == 0, first.stderr
        n = len(policy.requests)
        for flags, named in ((("--temperature", "0.5"), "--temperature was 1.0"),
                             (("--model", "other"), "--model was 'policy'"),
                             (("--dialect", "hermes"), "--dialect was 'minio3'"),
                             (("--max-images", "5"), "--max-images was 33"),
                             (("--image-format", "png"), "--image-format was 'jpeg'")):
            again = _eval(items_path, out, policy.base_url, judge.base_url, "--limit", "2", *flags)
            assert again.returncode == 2 and named in again.stderr, (flags, again.stderr)
            assert "Traceback" not in again.stderr
        assert len(policy.requests) == n  # nothing was run, nothing mixed
        same = _eval(items_path, out, policy.base_url, judge.base_url, "--limit", "2")
        assert same.returncode == 0 and "0 new, 2 from earlier runs" in same.stdout


def test_identical_samples_warn_that_avg_at_k_is_avg_at_1(synth_items, tmp_path):
    rows, items_path = synth_items
    with FakeOpenAIServer(_vlm(rows, "solve"), models=["policy"]) as policy, \
            FakeOpenAIServer(exact_judge, models=["judge"]) as judge:
        proc = _eval(items_path, tmp_path / "run.jsonl", policy.base_url, judge.base_url, "--limit", "2", "--k", "3")
    assert proc.returncode == 0, proc.stderr
    assert "every sample of each of the 2 items is identical" in proc.stderr
