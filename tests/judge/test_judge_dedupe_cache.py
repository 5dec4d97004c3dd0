"""Dedupe within a batch and the persistent sqlite cache."""

from __future__ import annotations

import multiprocessing as mp
import pickle
import sqlite3

import pytest
from judge_helpers import fast_config, oracle, request_data

from minio3_ext.judge import Judge, JudgeConfigError, JudgeItem, VerdictCache, cache_key
from minio3_ext.judge.prompt import PROMPT_VERSION
from minio3_ext.testing.fake_openai import Fault

QUESTION = "What is the man holding in his left hand?"


def _rollouts() -> list[JudgeItem]:
    """16 rollouts of one prompt with 3 distinct answers the rules cannot decide."""
    surface = {"a red umbrella": ["a red umbrella", "A red umbrella.", "red umbrella"],
               "a walking stick": ["a walking stick", "Walking stick"],
               "nothing": ["nothing", "Nothing."]}
    preds = (surface["a red umbrella"] * 3 + surface["a walking stick"] * 2 + surface["nothing"] * 1)[:15]
    preds.append("a red umbrella")
    assert len(preds) == 16
    return [JudgeItem(QUESTION, "umbrella", p) for p in preds]


def _accept(data) -> bool:
    return "umbrella" in data["prediction"].lower()


def test_16_rollouts_3_answers_make_at_most_3_calls_then_0(judge_server, tmp_path):
    server = judge_server(oracle(_accept))
    cache = str(tmp_path / "judge.sqlite")
    items = _rollouts()

    first = Judge(fast_config(server.base_url, cache_path=cache))
    v1 = first.score_sync(items)
    assert len(server.requests) <= 3
    assert [v.score for v in v1] == [1.0 if "umbrella" in i.prediction.lower() else 0.0 for i in items]
    m = first.metrics()
    assert m["calls"] == len(server.requests) and m["dedupe_saves"] == 16 - 3
    first.close()

    # A new process would build a new Judge on the same file: 0 calls, same verdicts.
    second = Judge(fast_config(server.base_url, cache_path=cache))
    v2 = second.score_sync(items)
    assert len(server.requests) == 3
    assert [v.score for v in v2] == [v.score for v in v1]
    assert {v.source for v in v2} == {"cache"}
    assert second.metrics()["calls"] == 0 and second.metrics()["cache_hits"] == 3


def test_without_dedupe_every_rollout_is_a_call(judge_server):
    server = judge_server(oracle(_accept))
    judge = Judge(fast_config(server.base_url, dedupe=False))
    judge.score_sync(_rollouts())
    assert len(server.requests) == 16


def test_unscorable_is_not_cached(judge_server, tmp_path):
    healthy = [False]
    server = judge_server(lambda r: "Score: 1" if healthy[0] else Fault.status(500))
    cache = str(tmp_path / "judge.sqlite")
    judge = Judge(fast_config(server.base_url, cache_path=cache, max_retries=0))
    assert judge.score_sync([JudgeItem("q", "red", "crimson")])[0].score is None
    assert len(judge.cache) == 0
    healthy[0] = True
    [verdict] = judge.score_sync([JudgeItem("q", "red", "crimson")])
    assert verdict.score == 1.0 and verdict.source == "llm" and len(judge.cache) == 1


def test_cache_key_depends_on_every_judge_setting_and_the_inputs():
    settings = {"model": "m", "prompt_version": PROMPT_VERSION, "base_url": "http://a/v1"}
    base = cache_key(settings, "q", "gt", "p")
    assert base == cache_key(dict(reversed(list(settings.items()))), "q", "gt", "p")
    others = [cache_key({**settings, "model": "m2"}, "q", "gt", "p"),
              cache_key({**settings, "prompt_version": "v0"}, "q", "gt", "p"),
              cache_key({**settings, "base_url": "http://b/v1"}, "q", "gt", "p"),
              cache_key(settings, "q2", "gt", "p"), cache_key(settings, "q", "gt2", "p"),
              cache_key(settings, "q", "gt", "p2"), cache_key(settings, "qg", "t", "p")]
    assert len(set(others)) == len(others) and base not in others


def test_every_judge_config_field_is_keyed_or_has_a_reason_not_to_be():
    from dataclasses import fields, make_dataclass

    from minio3_ext.judge import JudgeConfig
    from minio3_ext.judge.config import KEYED, NOT_KEYED

    names = {f.name for f in fields(JudgeConfig)}
    assert names == set(KEYED) | set(NOT_KEYED) and not set(KEYED) & set(NOT_KEYED)
    assert all(reason.strip() for reason in NOT_KEYED.values())
    keyed = JudgeConfig(base_url="http://j/v1", model="m").key_settings()
    assert set(keyed) == set(KEYED) | {"prompt_version"} and keyed["prompt_version"] == PROMPT_VERSION
    assert "api_key" not in keyed  # a credential is never written into a record or a key
    # a setting added without deciding whether it changes a verdict fails at once
    grown = make_dataclass("Grown", [("temperature_floor", float, 0.0)], bases=(JudgeConfig,), frozen=True)
    with pytest.raises(RuntimeError, match="temperature_floor"):
        grown(base_url="http://j/v1", model="m").key_settings()


@pytest.mark.parametrize("change", [{"base_url": "other"}, {"max_tokens": 32}, {"use_rules": False},
                                    {"dedupe": False}])
def test_another_url_or_setting_with_the_same_model_does_not_read_the_cache(judge_server, tmp_path, change):
    first, second = judge_server(oracle(_accept)), judge_server(oracle(_accept))
    cache = str(tmp_path / "judge.sqlite")
    item = JudgeItem("q", "umbrella", "brolly umbrella")
    Judge(fast_config(first.base_url, cache_path=cache)).score_sync([item])
    url = second.base_url if change.get("base_url") else first.base_url
    (verdict,) = Judge(fast_config(url, cache_path=cache, **{k: v for k, v in change.items() if k != "base_url"})
                       ).score_sync([item])
    assert verdict.source == "llm" and len(first.requests) + len(second.requests) == 2
    (again,) = Judge(fast_config(first.base_url, cache_path=cache)).score_sync([item])
    assert again.source == "cache"


def test_other_model_does_not_read_the_cache(judge_server, tmp_path):
    server = judge_server(oracle(_accept))
    cache = str(tmp_path / "judge.sqlite")
    Judge(fast_config(server.base_url, cache_path=cache)).score_sync([JudgeItem("q", "umbrella", "brolly umbrella")])
    Judge(fast_config(server.base_url, cache_path=cache, model="other")).score_sync(
        [JudgeItem("q", "umbrella", "brolly umbrella")])
    assert len(server.requests) == 2


def test_cache_is_wal_mode(tmp_path):
    path = tmp_path / "c.sqlite"
    VerdictCache(str(path)).put_many([("k", 1.0, "m", "v", "Score: 1")])
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _writer(path: str, worker: int, n: int) -> None:
    cache = VerdictCache(path)
    for i in range(n):
        # Overlapping keys between workers exercise INSERT OR IGNORE under contention.
        cache.put_many([(f"k{(worker * n // 2) + i}", float(i % 2), "m", "v", None),
                        (f"w{worker}-{i}", 1.0, "m", "v", None)])
        cache.get_many([f"k{i}", f"w{worker}-{i}"])


def test_several_processes_write_one_cache(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    VerdictCache(path)  # create the schema once, as the driver would
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, w, 60)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    cache = VerdictCache(path)
    expected_k = {f"k{(w * 30) + i}" for w in range(4) for i in range(60)}
    assert len(cache) == len(expected_k) + 4 * 60
    assert set(cache.get_many([f"w{w}-{i}" for w in range(4) for i in range(60)]).values()) == {1.0}


def test_cache_survives_fork_of_an_open_handle(tmp_path):
    path = str(tmp_path / "fork.sqlite")
    cache = VerdictCache(path)
    cache.put_many([("parent", 1.0, "m", "v", None)])
    ctx = mp.get_context("fork")
    p = ctx.Process(target=_child_uses_inherited_handle, args=(cache,))
    p.start()
    p.join(timeout=30)
    assert p.exitcode == 0
    assert cache.get_many(["parent", "child"]) == {"parent": 1.0, "child": 0.0}


def _child_uses_inherited_handle(cache: VerdictCache) -> None:
    assert cache.get_many(["parent"]) == {"parent": 1.0}
    cache.put_many([("child", 0.0, "m", "v", None)])


def test_broken_cache_costs_calls_not_the_batch(judge_server, tmp_path, monkeypatch):
    server = judge_server(oracle(_accept))
    judge = Judge(fast_config(server.base_url, cache_path=str(tmp_path / "c.sqlite")))

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(judge.cache, "get_many", locked)
    monkeypatch.setattr(judge.cache, "put_many", locked)
    with pytest.warns(RuntimeWarning, match=r"judge cache (read|write) failed"):
        verdicts = judge.score_sync(_rollouts())
    assert all(v.source == "llm" for v in verdicts) and len(server.requests) == 3
    assert judge.metrics()["errors_cache"] == 2


def test_unusable_cache_path_fails_at_construction(tmp_path):
    bad = tmp_path / "not_a_db.sqlite"
    bad.write_bytes(b"this is not an sqlite file" * 100)
    with pytest.raises(JudgeConfigError, match="cache_path=.*not_a_db.sqlite.* is unusable"):
        Judge(fast_config("http://127.0.0.1:9/v1", cache_path=str(bad)))


def test_judge_pickles_for_worker_processes(judge_server, tmp_path):
    server = judge_server(oracle(_accept))
    cache = str(tmp_path / "c.sqlite")
    judge = Judge(fast_config(server.base_url, cache_path=cache))
    judge.score_sync(_rollouts())
    clone = pickle.loads(pickle.dumps(judge))
    assert clone.config == judge.config and clone.metrics()["calls"] == 3
    assert {v.source for v in clone.score_sync(_rollouts())} == {"cache"}
    assert len(server.requests) == 3


def test_concurrent_per_sample_calls_share_requests_in_flight(judge_server):
    """An async reward function that awaits ``score([item])`` once per rollout, all
    rollouts of a group at once: 16 concurrent calls, 3 answers → 3 requests."""
    import asyncio
    import time

    def slow_oracle(request):
        time.sleep(0.1)  # keep the first requests in flight while the others arrive
        return "Score: 1" if _accept(request_data(request)) else "Score: 0"

    server = judge_server(slow_oracle)
    judge = Judge(fast_config(server.base_url, timeout_s=5))
    items = _rollouts()

    async def main():
        results = await asyncio.gather(*(judge.score([item]) for item in items))
        await judge.aclose()
        return [r[0] for r in results]

    verdicts = asyncio.run(main())
    assert len(server.requests) == 3
    assert [v.score for v in verdicts] == [1.0 if "umbrella" in i.prediction.lower() else 0.0 for i in items]
    m = judge.metrics()
    assert m["calls"] == 3 and m["dedupe_saves"] == 13 and m["llm_verdicts"] == 3


def test_joiners_of_a_failed_request_see_the_error(judge_server):
    import asyncio
    import time

    def rejecting(request):
        time.sleep(0.1)
        return Fault.status(401, message="invalid api key")

    server = judge_server(rejecting)
    judge = Judge(fast_config(server.base_url, timeout_s=5))

    async def main():
        results = await asyncio.gather(*(judge.score([JudgeItem("q", "red", "crimson")]) for _ in range(4)),
                                       return_exceptions=True)
        await judge.aclose()
        return results

    results = asyncio.run(main())
    assert all(isinstance(r, JudgeConfigError) for r in results) and len(server.requests) == 1


@pytest.mark.parametrize("stored", ["Score: 1", b"\x01", 7.0, -0.5])
def test_a_non_numeric_score_in_the_cache_is_judged_again(judge_server, tmp_path, stored):
    """Issue 21 item 9: an entry that is not a score warns once and is re-judged, never raises."""
    import sqlite3

    server = judge_server(oracle(_accept))
    cache = str(tmp_path / "judge.sqlite")
    item = JudgeItem("q", "umbrella", "brolly umbrella")
    Judge(fast_config(server.base_url, cache_path=cache)).score_sync([item])
    with sqlite3.connect(cache) as conn:
        conn.execute("UPDATE verdicts SET score = ?", (stored,))
    judge = Judge(fast_config(server.base_url, cache_path=cache))
    with pytest.warns(RuntimeWarning, match="not a score in"):
        [verdict] = judge.score_sync([item])
    assert verdict.score == 1.0 and verdict.source == "llm" and len(server.requests) == 2
    assert judge.metrics()["errors_cache"] == 1
    [again] = Judge(fast_config(server.base_url, cache_path=cache)).score_sync([item])  # the fresh verdict is stored
    assert again.source == "cache" and len(server.requests) == 2
