"""The eval path reads model text exactly as the core does (parser fuzz corpus).

Each fuzzed turn goes through what ``minio3 eval`` does with a server reply — the
dialect's stop restoring (as when the server reports the stop string matched) and the
runner's episode — and the recorded action is the one the core episode records.
"""

from __future__ import annotations

import asyncio
import random

from PIL import Image

from minio3_ext.core import Episode, EpisodeConfig
from minio3_ext.core.images import ImageBank
from minio3_ext.eval.runner import run_episode
from reliability.generators import fuzz_text


def test_fuzz_corpus_through_the_eval_runner_gives_the_cores_action(tmp_path):
    path = tmp_path / "img.png"
    Image.new("RGB", (640, 480), (90, 100, 110)).save(path)
    bank = ImageBank()
    rng = random.Random(5)
    compared = 0
    for dialect in ("minio3", "hermes"):
        for coords in ("relative", "thousand", "pixel"):
            for preset in ("strict", "released"):
                config = EpisodeConfig.from_options(max_turns=2, dialect=dialect, coords=coords, preset=preset)
                d = config.dialect
                for i in range(40):
                    text = fuzz_text(rng, num_observations=0)
                    # what the policy hands back when the server stopped at a stop string it dropped
                    for stop in d.stop:
                        if text.endswith(stop):
                            text = d.restore_stop(text[: -len(stop)], stop)
                    replies = iter([text, "<answer>x</answer>"])

                    async def policy(messages, replies=replies):
                        return next(replies)

                    row = {"id": f"{dialect}-{coords}-{preset}-{i}", "question": "Q?", "image": str(path), "answer": "x"}
                    traj = asyncio.run(run_episode(policy, row, config, bank, token_counter=None))
                    core = Episode(bank.get(path), config, first_view=bank.first_view(path))
                    core.step(text)
                    rec = core.records[0]
                    got = traj["turns"][0]["action"]
                    assert (got["kind"], got["source"], got["box"], got["error"]) == (
                        rec.kind, rec.source, list(rec.box) if rec.box else None, rec.error), text
                    compared += 1
    assert compared == 2 * 3 * 2 * 40
