"""LLM-judge benchmarks (issue 4), against a real local OpenAI-compatible server.

1. **Calls**: 256 groups × 16 rollouts (quick: 32 × 16) with a realistic answer
   distribution (open questions, multiple choice, counts, yes/no; per-group accuracy
   from a Beta distribution; answers repeat in a few surface forms; 5% without an
   answer tag). The full judge (rules → dedupe) vs one call per answered rollout
   (rules and dedupe off). Both ask the same oracle server, so their verdicts must be
   identical. Goal ≤ 0.35×.
2. **Throughput**: N distinct items that all need the LLM, server latency fixed at L,
   concurrency C: items/s vs the ideal C / L. Goal ≥ 0.8×. Full: C=64, L=0.5 s (a
   72B judge under load), 128 requests/s; quick: C=8, L=0.25 s. The openai client
   spends ~1.5–2 ms of CPU per request, so on a busy 2-core machine rates far above
   ~150 requests/s measure the machine rather than the judge.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import time

from bench.common import Row
from minio3_ext.core.answers import normalize_answer
from minio3_ext.judge import Judge, JudgeConfig, JudgeItem
from minio3_ext.judge.prompt import parse_data_block
from minio3_ext.testing.fake_openai import FakeOpenAIServer

ROLLOUTS = 16
NO_ANSWER_SHARE = 0.05

# (question, ground truth, correct surface forms by frequency, wrong answers by frequency)
_OPEN = [
    ("What colour is the {obj}?", "{c}", ["{c}", "{C}.", "The {obj} is {c}", "{c2}"], ["{w}", "{w2}", "{w3}"]),
    ("What is written on the {obj}?", "{word}", ["{word}", "{Word}", "\"{word}\"", "It says {word}"],
     ["{wword}", "{wword2}"]),
]
_COLOURS = [("red", "crimson"), ("blue", "navy blue"), ("green", "dark green"), ("yellow", "golden yellow"),
            ("white", "off-white"), ("black", "jet black"), ("orange", "bright orange")]
_OBJECTS = ["umbrella", "car", "sign", "bag", "kite", "door", "boat", "hat"]
_WORDS = ["bakery", "exit", "hotel", "pharmacy", "stop", "open", "taxi", "museum"]


def _make_question(rng: random.Random, qid: int) -> tuple[str, str, list[str], list[str], set[str]]:
    """A question, its ground truth, correct and wrong answer forms, and the oracle's
    accepted normalised answers."""
    kind = rng.choices(["colour", "text", "mc", "count", "yesno"], weights=[30, 15, 30, 15, 10])[0]
    obj = rng.choice(_OBJECTS)
    if kind == "colour":
        (c, c2), *wrong = rng.sample(_COLOURS, 4)
        q = f"[{qid}] What colour is the {obj}?"
        right = [c, f"{c.capitalize()}.", f"The {obj} is {c}", c2]
        return q, c, right, [w[0] for w in wrong], {normalize_answer(x) for x in right}
    if kind == "text":
        word, *wrong = rng.sample(_WORDS, 3)
        q = f"[{qid}] What is written on the {obj}?"
        right = [word, word.upper(), f'"{word.capitalize()}"', f"It says {word}"]
        return q, word.upper(), right, wrong, {normalize_answer(x) for x in right}
    if kind == "mc":
        options = rng.sample([c for c, _ in _COLOURS], 4)
        letter = rng.choice("ABCD")
        text = options["ABCD".index(letter)]
        q = f"[{qid}] What colour is the {obj}?\n" + "\n".join(f"({L}) {o}" for L, o in zip("ABCD", options))
        right = [letter, f"({letter})", text, f"The {obj} is {text}"]
        wrong = [L for L in "ABCD" if L != letter][:2] + [o for o in options if o != text][:1]
        return q, letter, right, wrong, {normalize_answer(x) for x in right}
    if kind == "count":
        n = rng.randint(2, 9)
        words = "two three four five six seven eight nine".split()
        q = f"[{qid}] How many {obj}s are there?"
        right = [str(n), f"{n} {obj}s", words[n - 2], f"There are {n}"]
        return q, str(n), right, [str(n + 1), str(n - 1), words[(n - 1) % 8]], {normalize_answer(x) for x in right}
    ans = rng.choice(["yes", "no"])
    q = f"[{qid}] Is there a {obj} on the left?"
    right = [ans, f"{ans.capitalize()}.", f"{ans}, there is" if ans == "yes" else "no, there is not"]
    other = "no" if ans == "yes" else "yes"
    return q, ans, right, [other, f"{other.capitalize()}."], {normalize_answer(x) for x in right}


def make_rollouts(groups: int, seed: int = 0) -> tuple[list[JudgeItem], dict[str, set[str]]]:
    """``groups × 16`` items and the oracle table ``question → accepted answers``."""
    rng = random.Random(seed)
    items, accepted = [], {}
    for qid in range(groups):
        q, gt, right, wrong, ok = _make_question(rng, qid)
        accepted[q] = ok
        accuracy = rng.betavariate(1.2, 1.0)
        for _ in range(ROLLOUTS):
            if rng.random() < NO_ANSWER_SHARE:
                items.append(JudgeItem(q, gt, None))
            elif rng.random() < accuracy:
                items.append(JudgeItem(q, gt, rng.choices(right, weights=[8, 3, 2, 1][:len(right)])[0]))
            else:
                items.append(JudgeItem(q, gt, rng.choices(wrong, weights=[6, 2, 1][:len(wrong)])[0]))
    return items, accepted


def _oracle(accepted: dict[str, set[str]]):
    def handler(request: dict) -> str:
        data = parse_data_block(request["messages"][-1]["content"])[1]
        ok = normalize_answer(data["prediction"]) in accepted[data["question"]]
        return f"Score: {int(ok)}"
    return handler


def bench_calls(groups: int) -> Row:
    items, accepted = make_rollouts(groups)
    with FakeOpenAIServer(_oracle(accepted)) as server:
        base = dict(base_url=server.base_url, model="oracle", timeout_s=30, max_retries=0, concurrency=32)
        ours = Judge(JudgeConfig(**base))
        naive = Judge(JudgeConfig(**base, use_rules=False, dedupe=False))
        v_ours = ours.score_sync(items)
        v_naive = naive.score_sync(items)
    m_ours, m_naive = ours.metrics(), naive.metrics()
    same = [a.score for a in v_ours] == [b.score for b in v_naive]
    unscorable = m_ours["unscorable"] + m_naive["unscorable"]
    ratio = m_ours["calls"] / m_naive["calls"]
    dedupe_only = len({(i.question, i.ground_truth, normalize_answer(i.prediction)) for i in items
                       if i.prediction is not None})
    return Row(
        name=f"judge calls, {groups}x{ROLLOUTS} rollouts",
        value=m_ours["calls"], baseline=m_naive["calls"], unit="calls", goal="<= 0.35x, same verdicts",
        ok=ratio <= 0.35 and same and unscorable == 0,
        detail=(f"{len(items)} rollouts; rule decisions {m_ours['rule_decisions']:g}, dedupe saves "
                f"{m_ours['dedupe_saves']:g}, no-answer {m_ours['no_answer']:g}; dedupe alone (no rules) would "
                f"make {dedupe_only} calls ({dedupe_only / m_naive['calls']:.2f}x); baseline = one call per "
                f"answered rollout; verdicts identical: {same}; unscorable {unscorable:g}"),
    )


def _slow_server(latency_s: float, conn) -> None:
    """Child process: serve fixed-latency verdicts until the parent says stop."""
    def slow(request: dict) -> str:
        time.sleep(latency_s)
        return "Score: 1"

    with FakeOpenAIServer(slow) as server:
        conn.send(server.base_url)
        conn.recv()


def bench_throughput(items_n: int, concurrency: int, latency_s: float) -> Row:
    # The server runs in its own process, as a real judge does: in-process it would
    # compete with the client for the GIL and we would measure the fake, not the judge.
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_slow_server, args=(latency_s, child), daemon=True)
    proc.start()
    try:
        base_url = parent.recv()
        items = [JudgeItem(f"q{i}", "red", f"crimson {i}") for i in range(items_n)]
        judge = Judge(JudgeConfig(base_url=base_url, model="m", timeout_s=30, max_retries=0,
                                  concurrency=concurrency, use_rules=False))
        judge.score_sync([JudgeItem("warm", "red", f"up {i}") for i in range(concurrency)])
        judge.reset_metrics()
        t0 = time.perf_counter()
        verdicts = judge.score_sync(items)
        wall = time.perf_counter() - t0
    finally:
        parent.send("stop")
        proc.join(timeout=10)
    assert all(v.score == 1.0 for v in verdicts), "throughput run produced unscored items"
    measured, ideal = items_n / wall, concurrency / latency_s
    m = judge.metrics()
    return Row(
        name=f"judge throughput, C={concurrency}, latency {latency_s * 1000:.0f} ms",
        value=measured, baseline=ideal, unit="items/s", goal=">= 0.8x", ok=measured >= 0.8 * ideal,
        detail=(f"{items_n} items in {wall:.2f}s (ideal {items_n / ideal:.2f}s); request latency mean "
                f"{m['latency_mean_s'] * 1000:.0f} ms; server in a separate process"),
    )


def run(quick: bool) -> list[Row]:
    if quick:
        return [bench_calls(32), bench_throughput(64, 8, 0.25)]
    return [bench_calls(256), bench_throughput(768, 64, 0.5)]


if __name__ == "__main__":
    import sys

    from bench.__main__ import format_table

    print(format_table(run("--quick" in sys.argv)))
