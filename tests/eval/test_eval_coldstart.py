"""`minio3 coldstart`: shipped exemplars replay through the real environment; only
judge-correct trajectories are kept (real HTTP policy and judge servers)."""

import json
from importlib import resources
import subprocess
import sys

import pytest

from eval_vlm_script import ScriptedVLM, exact_judge
from minio3_ext.data.synthetic import make_scene
from minio3_ext.eval.coldstart import ExemplarError, load_exemplars
from minio3_ext.testing.fake_openai import FakeOpenAIServer

MAIN = "import sys; from minio3_ext.cli import main; sys.exit(main())"
INTRO = "Now solve this new question in the same way:"


def _shipped():
    return json.loads(resources.files("minio3_ext.data").joinpath("coldstart_exemplars.json").read_text())


def test_shipped_exemplars_zoom_onto_their_targets():
    exemplars = load_exemplars()
    assert len(exemplars) == 6
    doc = _shipped()
    gen = doc["generator"]
    for ex, entry in zip(exemplars, doc["exemplars"]):
        scene = make_scene(gen["seed"], entry["index"], gen["width"], gen["height"])
        assert ex.answer == scene.target.char
        images = [p["image"] for m in ex.messages for p in m["content"] if p["type"] == "image"]
        assert len(images) == 1 + sum("<grounding>" in t for t in entry["turns"])
        assert all(im.width * im.height <= 250_000 for im in images)
        last_zoom = [a for a in ex.actions if a["kind"] == "zoom"][-1]["box_in_original"]
        tx0, ty0, tx1, ty1 = scene.target.box
        assert last_zoom[0] <= tx0 and last_zoom[1] <= ty0 and last_zoom[2] >= tx1 and last_zoom[3] >= ty1, ex.name


def test_broken_exemplar_is_refused_with_its_name(tmp_path):
    doc = _shipped()
    doc["exemplars"][2]["turns"][-1] = "<answer>#</answer>"
    path = tmp_path / "ex.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ExemplarError, match="exemplar 2: answers '#'"):
        load_exemplars(path)
    doc["exemplars"][2]["turns"][0] = '<grounding>{"bbox_2d": [0.5, 0.5, 0.2, 0.9]}</grounding>'
    path.write_text(json.dumps(doc))
    with pytest.raises(ExemplarError, match="exemplar 2, turn 1: the action failed"):
        load_exemplars(path)


class FewShotVLM(ScriptedVLM):
    """The scripted VLM, reading the real question after the few-shot prefix."""

    def __call__(self, request):
        msgs = request["messages"]
        start = max(i for i, m in enumerate(msgs) if m["role"] == "user" and isinstance(m["content"], list)
                    and any(INTRO in p.get("text", "") for p in m["content"]))
        return super().__call__({**request, "messages": [msgs[0], *msgs[start:]]})


def test_coldstart_keeps_exactly_the_correct_trajectories(synth_items, tmp_path):
    rows, items_path = synth_items
    behaviours = dict(zip((r["doc_id"] for r in rows), ["solve", "wrong", "loop", "garbage", "solve", "slow"]))
    vlm = FewShotVLM({r["doc_id"]: r for r in rows}, behaviours)
    out = tmp_path / "cs"
    cmd = [sys.executable, "-c", MAIN, "coldstart", "--data", str(items_path), "--out", str(out),
           "--base-url", "URL", "--model", "vlm", "--judge-base-url", "JURL", "--judge-model", "judge",
           "--max-turns", "6", "--concurrency", "3", "--no-progress", "--image-format", "jpeg"]
    with FakeOpenAIServer(vlm, models=["vlm"]) as policy, FakeOpenAIServer(exact_judge) as judge:
        cmd = [policy.base_url if c == "URL" else judge.base_url if c == "JURL" else c for c in cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        first = policy.requests[0]
    assert proc.returncode == 0, proc.stderr
    # the exemplars (18 images) come before the real question's image
    images = [p for m in first["messages"] if isinstance(m["content"], list) for p in m["content"] if p["type"] == "image_url"]
    assert len(images) == 19
    kept = [json.loads(line) for line in open(out / "kept.jsonl")]
    solved = {r["doc_id"] for r in rows if behaviours[r["doc_id"]] in ("solve", "slow")}
    assert {k["id"] for k in kept} == solved and all(k["verdict"] == 1 for k in kept)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["by_outcome"] == {"kept": 3, "wrong": 1, "turn_limit": 1, "no_answer": 1}
    assert "kept 3 correct trajectories → 3 SFT rows" in proc.stdout
    # SFT rows: the few-shot prefix is not part of the training conversation; one image per slot
    import pyarrow.parquet as pq

    table = pq.read_table(out / "sft.verl.parquet").to_pylist()
    assert len(table) == 3
    for row in table:
        slots = sum(m["content"].count("<image>") for m in row["messages"])
        assert slots == len(row["images"]) >= 2
        assert not any("Worked example" in m["content"] for m in row["messages"])
        assert row["messages"][-1]["role"] == "assistant" and "<answer>" in row["messages"][-1]["content"]
    trl = [json.loads(line) for line in open(out / "sft.trl.jsonl")]
    assert all(sum(p["type"] == "image" for m in t["messages"] for p in m["content"]) == len(t["images"]) for t in trl)
