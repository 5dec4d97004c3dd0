"""Eval throughput against a fixed-latency server with image-heavy histories.

Each episode zooms 11 times, then answers: its 12 requests carry a growing history of
up to 12 images of ~2M px (a 4000×3000 original's first view and 11 crops, each
snapped into the view budget), every image sent as a data URL. The scripted server
runs in its own process (as a real one does) and answers each request after
``latency`` seconds. The ideal is server-bound: ``C`` episodes in flight, 12 sequential
requests each, so ``episodes / (ceil(episodes / C) * 12 * latency)`` episodes/s.
Rows: JPEG (the default) vs that ideal, and PNG vs JPEG (the encoding cost that used
to run on the event loop and stall every episode in flight).
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing as mp
import tempfile
import time

from bench.common import Row

TURNS = 12  # requests per episode: 11 zooms + the answer → 12 images in the last request
ZOOM = '<think>look closer</think><grounding>{"bbox_2d": [0.05, 0.05, 0.95, 0.95], "source": "original_image"}</grounding>'


def _server(latency_s: float, conn) -> None:
    from minio3_ext.testing.fake_openai import Completion, FakeOpenAIServer

    def handler(request: dict):
        time.sleep(latency_s)
        turn = sum(m["role"] == "assistant" for m in request["messages"])
        if turn < TURNS - 1:
            return Completion(ZOOM[: -len("</grounding>")], finish_reason="stop")
        return "<think>found it</think><answer>A</answer>"

    with FakeOpenAIServer(handler, models=["policy"]) as server:
        conn.send(server.base_url)
        conn.recv()


def _items(n: int, folder: str) -> list[dict]:
    from minio3_ext.data.synthetic import generate, load_rows
    from minio3_ext.eval.records import as_item

    (row,) = load_rows(generate(folder, n=1, seed=0, width=4000, height=3000))
    return [{**as_item(row), "id": f"e{i}"} for i in range(n)]


def _run(base_url: str, items: list[dict], concurrency: int, fmt: str) -> tuple[float, list[dict]]:
    from minio3_ext.core.episode import EpisodeConfig
    from minio3_ext.core.images import ImageBank
    from minio3_ext.eval.openai_policy import OpenAIPolicy
    from minio3_ext.eval.runner import run_episode

    bank = ImageBank()
    bank.first_view(items[0]["image"])  # decode once outside the timing, as a warm bank would
    config = EpisodeConfig(max_turns=TURNS + 2, max_images=TURNS + 4, max_context_tokens=None)
    policy = OpenAIPolicy(base_url, "policy", max_retries=0, image_format=fmt, timeout=120)

    async def go():
        sem = asyncio.Semaphore(concurrency)

        async def one(item):
            async with sem:
                return await run_episode(policy, item, config, bank, token_counter=None)

        t0 = time.perf_counter()
        out = await asyncio.gather(*(one(i) for i in items))
        return time.perf_counter() - t0, out

    return asyncio.run(go())


def bench(episodes: int, concurrency: int, latency_s: float) -> list[Row]:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_server, args=(latency_s, child), daemon=True)
    proc.start()
    try:
        base_url = parent.recv()
        with tempfile.TemporaryDirectory() as tmp:
            items = _items(episodes, tmp)
            walls = {}
            for fmt in ("jpeg", "png"):
                wall, trajs = _run(base_url, items, concurrency, fmt)
                assert all(t["termination_reason"] == "answered" and t["num_turns"] == TURNS for t in trajs), \
                    [(t["termination_reason"], t["num_turns"]) for t in trajs]
                walls[fmt] = wall
    finally:
        parent.send("stop")
        proc.join(timeout=10)
    ideal_wall = math.ceil(episodes / concurrency) * TURNS * latency_s
    ideal, jpeg, png = episodes / ideal_wall, episodes / walls["jpeg"], episodes / walls["png"]
    where = f"{episodes} episodes x {TURNS} requests, C={concurrency}, latency {latency_s * 1000:.0f} ms"
    return [
        Row(name=f"eval throughput, JPEG, 12 images of ~2M px, {where}", value=jpeg, baseline=ideal,
            unit="episodes/s", goal=">= 0.7x", ok=jpeg >= 0.7 * ideal,
            detail=f"JPEG run {walls['jpeg']:.1f}s vs server-bound ideal {ideal_wall:.1f}s; server in its own process"),
        Row(name="eval throughput, PNG vs JPEG (same run)", value=png, baseline=jpeg, unit="episodes/s",
            goal="reported", ok=True,
            detail=f"PNG run {walls['png']:.1f}s vs JPEG {walls['jpeg']:.1f}s (PNG data URLs ~4x larger, "
                   "encoding ~30x slower; encoding runs in worker threads either way)"),
    ]


def run(quick: bool) -> list[Row]:
    # latencies of a VLM turn that writes a few hundred tokens; the client's own work per
    # episode (11 crops + resizes of a 12M px original, 12 JSON bodies of up to ~5 MB) is ~2.5 s
    # of CPU on a 2-core box, so fewer cores than episodes in flight make the run CPU-bound
    if quick:
        return bench(episodes=2, concurrency=2, latency_s=0.5)
    return bench(episodes=16, concurrency=8, latency_s=2.0)


if __name__ == "__main__":
    import sys

    from bench.__main__ import format_table

    print(format_table(run("--quick" in sys.argv)))
