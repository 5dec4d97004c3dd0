"""Fault injection against a real local HTTP server: every fault is retried as
configured, then the item is unscorable; the batch finishes; nothing is silently 0."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from judge_helpers import fast_config, request_data

from minio3_ext.judge import Judge, JudgeConfigError, JudgeItem
from minio3_ext.testing.fake_openai import Fault, closed_port_url

POISON = "poisoned answer"  # the server answers this prediction with the fault under test

FAULTS = {
    "delay_past_timeout": (lambda: Fault.delay(3.0, then="Score: 1"), "errors_timeout"),
    "429_retry_after": (lambda: Fault.status(429, retry_after=0.01), "errors_rate_limit"),
    "500": (lambda: Fault.status(500), "errors_server"),
    "503": (lambda: Fault.status(503), "errors_server"),
    "malformed_body": (lambda: Fault.malformed(), "errors_malformed"),
    "verdict_without_score": (lambda: "The prediction and the reference are both colours.", "errors_unparseable"),
    # issue 21 item 3: the judge's verdict, then a quoted one: ambiguous, never the last number
    "conflicting_verdicts": (lambda: 'Score: 0\nThe prediction ends with "Score: 1", which is not an answer.',
                             "errors_unparseable"),
    "connection_drop": (lambda: Fault.drop(), "errors_connection"),
}


def _batch() -> list[JudgeItem]:
    return [
        JudgeItem("What colour is the car?", "red", POISON),
        JudgeItem("What colour is the car?", "red", "crimson"),     # LLM says 1
        JudgeItem("What colour is the car?", "red", "azure"),       # LLM says 0
        JudgeItem("What colour is the car?", "red", "Red."),        # rule: 1
        JudgeItem("What colour is the car?", "red", None),          # no answer: 0
    ]


def _handler(fault):
    def handler(request):
        pred = request_data(request)["prediction"]
        if pred == POISON:
            return fault()
        return "Score: 1" if pred == "crimson" else "Score: 0"
    return handler


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_fault_is_retried_then_unscorable(judge_server, name):
    fault, error_key = FAULTS[name]
    server = judge_server(_handler(fault))
    retries = 2
    timeout = 0.8 if name == "delay_past_timeout" else 10.0  # only the delay case may time out
    judge = Judge(fast_config(server.base_url, max_retries=retries, timeout_s=timeout))
    verdicts = judge.score_sync(_batch())

    assert [v.score for v in verdicts] == [None, 1.0, 0.0, 1.0, 0.0]
    assert [v.source for v in verdicts] == ["unscorable", "llm", "llm", "rule", "no_answer"]
    poisoned = verdicts[0]
    assert poisoned.attempts == retries + 1 and poisoned.error
    poison_requests = [r for r in server.requests if request_data(r)["prediction"] == POISON]
    assert len(poison_requests) == retries + 1
    m = judge.metrics()
    assert m["unscorable"] == 1 and m["retries"] == retries and m[error_key] == retries + 1
    assert m["calls"] == retries + 1 + 2


def test_connection_refused_is_retried_then_unscorable():
    judge = Judge(fast_config(closed_port_url(), max_retries=3))
    verdicts = judge.score_sync([JudgeItem("q", "red", "crimson"), JudgeItem("q", "red", "red")])
    assert verdicts[0].score is None and verdicts[0].source == "unscorable"
    assert "connection" in verdicts[0].error and verdicts[0].attempts == 4
    assert verdicts[1].score == 1.0 and verdicts[1].source == "rule"
    m = judge.metrics()
    assert m["errors_connection"] == 4 and m["retries"] == 3 and m["unscorable"] == 1


def test_transient_faults_recover(judge_server):
    """429 → 500 → malformed → drop → a verdict: the fifth try scores the item."""
    lock = threading.Lock()
    script = [Fault.status(429, retry_after=0.01), Fault.status(500), Fault.malformed(), Fault.drop()]

    def handler(request):
        with lock:
            return script.pop(0) if script else "Score: 1"

    server = judge_server(handler)
    judge = Judge(fast_config(server.base_url, max_retries=4))
    [verdict] = judge.score_sync([JudgeItem("q", "red", "crimson")])
    assert verdict.score == 1.0 and verdict.source == "llm" and verdict.attempts == 5
    assert judge.metrics()["retries"] == 4 and judge.metrics()["unscorable"] == 0


def test_retry_after_is_honoured(judge_server):
    calls = []

    def handler(request):
        calls.append(time.monotonic())
        return Fault.status(429, retry_after=0.3) if len(calls) == 1 else "Score: 0"

    server = judge_server(handler)
    judge = Judge(fast_config(server.base_url, backoff_max_s=5.0))
    [verdict] = judge.score_sync([JudgeItem("q", "red", "azure")])
    assert verdict.score == 0.0 and len(calls) == 2
    assert calls[1] - calls[0] >= 0.28


def test_backoff_grows_exponentially_with_jitter():
    judge = Judge(fast_config("http://127.0.0.1:9/v1", backoff_base_s=1.0, backoff_max_s=100.0))
    for attempt in range(4):
        waits = [judge._backoff(attempt, None) for _ in range(200)]
        assert 0.5 * 2 ** attempt <= min(waits) and max(waits) <= 1.5 * 2 ** attempt
        assert len(set(waits)) > 100  # jittered
    assert judge._backoff(10, None) == 100.0
    assert judge._backoff(0, 50.0) == 50.0


def test_first_try_greedy_then_retry_temperature(judge_server):
    replies = ["I am not sure.", "Score: 1"]
    server = judge_server(lambda request: replies.pop(0))
    judge = Judge(fast_config(server.base_url, retry_temperature=0.7))
    [verdict] = judge.score_sync([JudgeItem("q", "red", "crimson")])
    assert verdict.score == 1.0
    assert [r["temperature"] for r in server.requests] == [0.0, 0.7]
    assert all(r["model"] == "fake-judge" for r in server.requests)


@pytest.mark.parametrize("code", [401, 403, 404])
def test_misconfiguration_raises_instead_of_excluding_everything(judge_server, code):
    server = judge_server(lambda request: Fault.status(code, message="bad key or model"))
    judge = Judge(fast_config(server.base_url))
    with pytest.raises(JudgeConfigError, match=f"HTTP {code}.*fake-judge"):
        judge.score_sync([JudgeItem("q", "red", "crimson"), JudgeItem("q", "red", "azure")])


def test_bad_request_is_unscorable_without_retry(judge_server):
    server = judge_server(lambda request: Fault.status(400, message="context too long"))
    judge = Judge(fast_config(server.base_url))
    [verdict] = judge.score_sync([JudgeItem("q", "red", "crimson")])
    assert verdict.score is None and "400" in verdict.error and len(server.requests) == 1


def test_mixed_fault_storm_never_scores_a_failure_zero(judge_server):
    """200 items, a third of them hit a fault on every try: each faulty item is
    unscorable, each healthy one gets the oracle's verdict."""
    faults = [Fault.status(500), Fault.malformed(), Fault.drop(), Fault.status(429, retry_after=0), "no verdict"]

    def handler(request):
        pred = request_data(request)["prediction"]
        n = int(pred.split()[-1])
        if n % 3 == 0:
            return faults[n % len(faults)]
        return "Score: 1" if n % 2 else "Score: 0"

    server = judge_server(handler)
    judge = Judge(fast_config(server.base_url, max_retries=1, concurrency=16))
    items = [JudgeItem("q", "red", f"guess {n}") for n in range(200)]
    verdicts = judge.score_sync(items)
    for n, v in enumerate(verdicts):
        if n % 3 == 0:
            assert v.score is None and v.source == "unscorable", n
        else:
            assert v.score == float(n % 2) and v.source == "llm", n
    assert judge.metrics()["unscorable"] == sum(n % 3 == 0 for n in range(200))


def test_concurrency_limit_is_respected(judge_server):
    active, peak, lock = [0], [0], threading.Lock()

    def handler(request):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.15)
        with lock:
            active[0] -= 1
        return "Score: 1"

    server = judge_server(handler)
    judge = Judge(fast_config(server.base_url, concurrency=3))
    verdicts = judge.score_sync([JudgeItem("q", "red", f"guess {n}") for n in range(12)])
    assert all(v.score == 1.0 for v in verdicts)
    assert peak[0] == 3
    m = judge.metrics()
    assert {"calls", "cache_hits", "dedupe_saves", "retries", "unscorable", "latency_mean_s"} <= set(m)
    assert all(isinstance(v, float) for v in m.values())
    assert 0.15 <= m["latency_mean_s"] <= m["latency_max_s"] and m["latency_p50_s"] >= 0.15
    judge.reset_metrics()
    assert judge.metrics()["calls"] == 0 and judge.metrics()["latency_mean_s"] == 0


def test_score_sync_inside_running_loop_and_async_score(judge_server):
    server = judge_server(lambda request: "Score: 1")
    judge = Judge(fast_config(server.base_url))

    async def main():
        inside = judge.score_sync([JudgeItem("q", "red", "crimson")])  # a sync reward fn called from async code
        awaited = await judge.score([JudgeItem("q", "red", "scarlet")])
        await judge.aclose()
        return inside, awaited

    inside, awaited = asyncio.run(main())
    assert inside[0].score == 1.0 and awaited[0].score == 1.0
    # A second loop gets its own client: no "event loop is closed" errors.
    assert judge.score_sync([JudgeItem("q", "red", "vermilion")])[0].score == 1.0


def test_bad_items_name_the_row():
    judge = Judge()
    with pytest.raises(ValueError, match=r"items\[1\]\.ground_truth"):
        judge.score_sync([JudgeItem("q", "a", "a"), JudgeItem("q", "", "a")])
    with pytest.raises(ValueError, match=r"items\[0\] is a dict"):
        judge.score_sync([{"question": "q"}])
    with pytest.raises(ValueError, match=r"items\[0\]\.prediction"):
        judge.score_sync([JudgeItem("q", "a", 3)])


def test_api_key_reaches_the_server(judge_server, monkeypatch):
    server = judge_server(lambda request: "Score: 1")
    Judge(fast_config(server.base_url, api_key="sk-test")).score_sync([JudgeItem("q", "red", "crimson")])
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    Judge(fast_config(server.base_url)).score_sync([JudgeItem("q", "red", "scarlet")])
    monkeypatch.delenv("OPENAI_API_KEY")
    Judge(fast_config(server.base_url)).score_sync([JudgeItem("q", "red", "ruby")])
    assert [h["authorization"] for h in server.request_headers] == ["Bearer sk-test", "Bearer sk-env", "Bearer EMPTY"]
