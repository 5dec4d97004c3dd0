"""Converters against the public row formats the paper's benchmarks are downloaded in
(a handful of rows each, built here): the released Mini-o3 data layout, MME-RealWorld
(original JSON and lmms-eval rows), HR-Bench 8K. V*, HR-Bench 4K and the DeepEyes
parquet are in ``test_convert.py``."""

from __future__ import annotations

import base64
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from minio3_ext.data.prepare import prepare


def _png(path=None, size=(64, 48), colour="red"):
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buf.getvalue())
    return buf.getvalue()


def _jsonl(path):
    return [json.loads(line) for line in open(path)]


# The released README's RL command: ${BASE_IMAGE_DIR}/<folder>/<file>, rows problem / images / solution / data_source.
RELEASED = {
    ("VisualProbe_train", "train.json"): ("visual_probe", "visual_probe_train"),
    ("VisualProbe_Easy", "val.json"): ("visual_probe", "visual_probe_easy"),
    ("VisualProbe_Medium", "val.json"): ("visual_probe", "visual_probe_medium"),
    ("VisualProbe_Hard", "val.json"): ("visual_probe", "visual_probe_hard"),
    ("Vstar_Bench", "val.json"): ("vstar", "vstar_bench"),
    ("DeepEyes_train_4K", "train.json"): ("deepeyes", "deepeyes_train"),
}


def test_released_data_layout_every_file(tmp_path):
    base = tmp_path / "BASE_IMAGE_DIR"
    for (folder, name), (benchmark, source) in RELEASED.items():
        rows = []
        for k in range(3):
            _png(base / folder / "images" / f"{source}_{k}.jpg", colour=("red", "green", "blue")[k])
            rows.append({"problem": f"<image>\nWhat is the colour of item {k}?", "images": [f"images/{source}_{k}.jpg"],
                         "solution": ("red", "green", "blue")[k], "data_source": source, "doc_id": f"{source}_{k}"})
        rows.append({"problem": "<image>\nBroken row", "images": ["images/absent.jpg"], "solution": "x",
                     "data_source": source, "doc_id": f"{source}_bad"})
        (base / folder / name).write_text(json.dumps(rows, indent=2))
        # default --split and --image-root: the file's folder, as a user runs it after download
        report = prepare(benchmark, [base / folder / name], tmp_path / "out" / folder, formats=["jsonl", "verl"])
        assert report.kept == 3, (folder, report.bad)
        assert [b.id for b in report.bad] == [f"{source}_bad"] and "image not found" in report.bad[0].reason
        out = _jsonl(report.outputs["jsonl"])
        assert [r["data_source"] for r in out] == [source] * 3
        assert [r["solution"] for r in out] == ["red", "green", "blue"]
        assert out[0]["images"] == [str((base / folder / "images" / f"{source}_0.jpg").resolve())]
        assert out[0]["problem"] == "<image>\nWhat is the colour of item 0?"
        if benchmark == "visual_probe":  # difficulty from the row's data_source, not the default --split
            assert {r["difficulty"] for r in out} == {source.rsplit("_", 1)[1]}
        expected_bench = {"visual_probe": "visual_probe", "vstar": "vstar_bench", "deepeyes": "deepeyes"}[benchmark]
        assert {r["benchmark"] for r in out} == {expected_bench}
        verl = pq.read_table(report.outputs["verl"]).to_pylist()
        assert verl[0]["reward_model"]["ground_truth"] == "red" and verl[0]["data_source"] == source


MME_CHOICES = ["(A) There are many cars and one truck.", "(B) There are many pedestrians.",
               "(C) There is one bicycle.", "(D) There are two trucks.", "(E) All the above answers are wrong."]


def test_mme_realworld_original_json(tmp_path):
    root = tmp_path / "MME-RealWorld"
    _png(root / "AutonomousDriving" / "nuScenes" / "cam_front.jpg", size=(160, 90))
    _png(root / "diagram_and_table" / "cons9.jpg")
    rows = [
        {"Question_id": "Perception/Autonomous_Driving/Objects_Identify/0000", "Question Type": "Multiple Choice",
         "Image": "AutonomousDriving/nuScenes/cam_front.jpg",
         "Text": "This image shows the front view of the ego car. What are objects to the front of the ego car?",
         "Answer choices": MME_CHOICES, "Ground truth": "A", "Task": "Perception", "Subtask": "Autonomous_Driving",
         "Category": "Objects_Identify", "Dataset": "nuScenes"},
        {"Question_id": "reasoning/diagram_and_table/diagram/0020", "Image": "diagram_and_table/cons9.jpg",
         "Text": "Which category has the highest value?", "Question Type": "Multiple Choice",
         "Answer choices": ["(A) 458", "(B) 457", "(C) 456", "(D) 455", "(E) This image doesn't feature the data."],
         "Ground truth": "B", "Category": "diagram", "Subtask": "Diagram and Table", "Task": "Reasoning"},
        {"Question_id": "perception/monitoring/0310", "Image": "diagram_and_table/cons9.jpg", "Text": "How many buses?",
         "Answer choices": ["(A) 13", "(B) 90"], "Ground truth": "F", "Task": "Perception",
         "Subtask": "Monitoring", "Category": "Vehicle/counting"},
        {"Question_id": "perception/monitoring/0311", "Image": "monitoring_images/absent.jpg", "Text": "How many cars?",
         "Answer choices": ["(A) 1", "(B) 2"], "Ground truth": "A", "Task": "Perception", "Subtask": "Monitoring",
         "Category": "Vehicle/counting"},
    ]
    (root / "MME_RealWorld.json").write_text(json.dumps(rows, indent=4))
    report = prepare("mme_realworld", [root / "MME_RealWorld.json"], tmp_path / "out", formats=["jsonl", "verl"])
    assert report.kept == 2
    bad = {b.id: b.reason for b in report.bad}
    assert "is not one of the options" in bad["#2"] and "image not found" in bad["#3"]
    first, second = _jsonl(report.outputs["jsonl"])
    assert first["doc_id"] == "mme_realworld_Perception_Autonomous_Driving_Objects_Identify_0000"
    assert first["benchmark"] == "mme_realworld" and first["difficulty"] == "perception"
    assert first["solution"] == "A" and second["solution"] == "B" and second["difficulty"] == "reasoning"
    assert "\n(A) There are many cars and one truck.\n" in first["problem"]
    assert "(E) All the above answers are wrong." in first["problem"]
    assert first["problem"].endswith("Answer with the option's letter from the given choices directly.")
    assert first["extra"]["subtask"] == "Autonomous_Driving"
    assert first["images"] == [str((root / "AutonomousDriving" / "nuScenes" / "cam_front.jpg").resolve())]


def test_mme_realworld_lmms_eval_parquet_with_base64(tmp_path):
    good = base64.b64encode(_png(size=(120, 80), colour="blue")).decode()
    rows = [
        {"index": 0, "question": "What are objects to the front of the ego car?", "multi-choice options": MME_CHOICES,
         "answer": "A", "category": "perception/Autonomous_Driving", "l2-category": "Objects_Identify", "bytes": good},
        {"index": 1, "question": "What is the data of Interest in Feb-23?",
         "multi-choice options": ["(A) 458", "(B) 457", "(C) 456"], "answer": "(C)",
         "category": "reasoning/Diagram and Table", "l2-category": "diagram", "bytes": good},
        {"index": 2, "question": "Broken image", "multi-choice options": ["(A) 1", "(B) 2"], "answer": "A",
         "category": "perception/Monitoring", "l2-category": "counting", "bytes": "x" * 3000},
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "MME-RealWorld-lmms-eval.parquet")
    report = prepare("mme_realworld", [tmp_path / "MME-RealWorld-lmms-eval.parquet"], tmp_path / "out",
                     formats=["jsonl"])
    assert report.kept == 2 and [b.id for b in report.bad] == ["2"] and "base64" in report.bad[0].reason
    a, b = _jsonl(report.outputs["jsonl"])
    assert (a["doc_id"], a["solution"], a["difficulty"]) == ("mme_realworld_0", "A", "perception")
    assert (b["solution"], b["difficulty"], b["extra"]["subtask"]) == ("C", "reasoning", "Diagram and Table")
    with Image.open(a["images"][0]) as im:  # the base64 payload was written out once
        assert im.size == (120, 80)


def test_hrbench_8k_tsv(tmp_path):
    img = base64.b64encode(_png(size=(96, 64))).decode()
    header = ["index", "question", "answer", "category", "A", "B", "C", "D", "cycle_category", "image"]
    rows = [[10, "What is written on the flag?", "B", "single", "GO", "STOP", "EXIT", "OPEN", "single_10", img],
            [11, "Which car is closer to the gate?", "D", "cross", "red", "blue", "white", "black", "cross_11", img],
            [12, "Missing options", "A", "single", "only", "", "", "", "single_12", img]]
    (tmp_path / "hr_bench_8k.tsv").write_text("\n".join("\t".join(map(str, r)) for r in [header, *rows]) + "\n")
    report = prepare("hrbench", [tmp_path / "hr_bench_8k.tsv"], tmp_path / "out", split="8k", formats=["jsonl"])
    assert report.kept == 2 and [b.id for b in report.bad] == ["12"]
    first, second = _jsonl(report.outputs["jsonl"])
    assert (first["benchmark"], first["doc_id"], first["solution"]) == ("hr_bench_8k", "hr_bench_8k_10", "B")
    assert second["difficulty"] == "cross" and "(D) black" in second["problem"]
