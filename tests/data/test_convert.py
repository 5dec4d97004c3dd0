"""`minio3 data convert` on hand-written fixtures in each benchmark's published row format."""

import base64
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from minio3_ext.data.prepare import PrepareError, prepare
from minio3_ext.data.readers import read_rows


def _png(path=None, size=(64, 48), colour="red"):
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buf.getvalue())
    return buf.getvalue()


def _bad_ids(report):
    return {b.id: b.reason for b in report.bad}


def _jsonl(path):
    return [json.loads(line) for line in open(path)]


def test_visual_probe_json_with_image_folder(tmp_path):
    root = tmp_path / "VisualProbe_Hard"
    _png(root / "data" / "a.png")
    _png(root / "data" / "b.png")
    (root / "data" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    rows = [
        {"doc_id": "vp_h_0", "problem": "<image>\nWhat is written on the red sign?", "images": ["data/a.png"],
         "solution": "STOP", "data_source": "visual_probe_hard"},
        {"doc_id": "vp_h_1", "problem": "<image>\nWhat colour is the kite?", "images": ["data/missing.png"],
         "solution": "blue", "data_source": "visual_probe_hard"},
        {"doc_id": "vp_h_2", "problem": "<image>\n<image>\nCompare.", "images": ["data/b.png"], "solution": "x",
         "data_source": "visual_probe_hard"},
        {"doc_id": "vp_h_3", "problem": "<image>\nHow many birds?", "images": ["data/b.png"], "solution": " ",
         "data_source": "visual_probe_hard"},
        {"doc_id": "vp_h_4", "problem": "<image>\nWhat is it?", "images": ["data/corrupt.png"], "solution": "cat",
         "data_source": "visual_probe_hard"},
        {"doc_id": "vp_h_0", "problem": "<image>\nDuplicate?", "images": ["data/b.png"], "solution": "y",
         "data_source": "visual_probe_hard"},
        {"doc_id": "vp_h_5", "problem": "What is on the roof?", "images": ["data/b.png"], "solution": "a cat",
         "data_source": "visual_probe_hard"},
    ]
    (root / "val.json").write_text(json.dumps(rows))
    report = prepare("visual_probe", [root / "val.json"], tmp_path / "out", split="hard")
    bad = _bad_ids(report)
    assert report.kept == 2 and set(bad) == {"vp_h_1", "vp_h_2", "vp_h_3", "vp_h_4", "vp_h_0"}
    assert "image not found" in bad["vp_h_1"] and "exactly one <image> slot, found 2" in bad["vp_h_2"]
    assert "empty solution" in bad["vp_h_3"] and "not a readable image" in bad["vp_h_4"]
    assert "duplicate id" in bad["vp_h_0"]
    out = _jsonl(report.outputs["jsonl"])
    assert [r["doc_id"] for r in out] == ["vp_h_0", "vp_h_5"]
    assert out[0]["problem"] == "<image>\nWhat is written on the red sign?"
    assert out[0]["images"] == [str((root / "data" / "a.png").resolve())]
    assert out[1]["problem"].count("<image>") == 1  # a slot is added when the question had none
    assert (out[0]["benchmark"], out[0]["difficulty"]) == ("visual_probe", "hard")
    saved = json.loads(open(report.outputs["report"]).read())
    assert saved["bad_count"] == 5 and saved["kept"] == 2


def test_strict_fails_naming_every_bad_row_and_writes_nothing(tmp_path):
    _png(tmp_path / "a.png")
    rows = [{"doc_id": "ok", "problem": "<image>\nq", "images": ["a.png"], "solution": "s"},
            {"doc_id": "no_img", "problem": "<image>\nq", "images": ["nope.png"], "solution": "s"},
            {"doc_id": "no_ans", "problem": "<image>\nq", "images": ["a.png"], "solution": None}]
    (tmp_path / "train.json").write_text(json.dumps(rows))
    with pytest.raises(PrepareError) as err:
        prepare("visual_probe", [tmp_path / "train.json"], tmp_path / "out", strict=True)
    assert "no_img" in str(err.value) and "no_ans" in str(err.value) and "missing solution" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_deepeyes_parquet_with_embedded_image_bytes(tmp_path):
    def row(index, image_bytes, truth, user="<image>\nWhat is the man holding?"):
        return {"data_source": "vstar", "prompt": [{"role": "system", "content": "You are a helpful assistant."},
                                                   {"role": "user", "content": user}],
                "images": [{"bytes": image_bytes, "path": f"img_{index}.png"}], "ability": "vqa",
                "env_name": "visual_toolbox_v2", "reward_model": {"ground_truth": truth, "style": "model"},
                "extra_info": {"index": index, "answer": truth, "question": None, "split": "train"}}

    rows = [row(0, _png(colour="blue"), "umbrella"), row(1, b"not an image", "cup"), row(2, _png(), ""),
            row(3, _png(colour="green"), "dog", user="What animal?")]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "data_0.1.2_visual_toolbox_v2.parquet")
    report = prepare("deepeyes", [tmp_path / "data_0.1.2_visual_toolbox_v2.parquet"], tmp_path / "out")
    bad = _bad_ids(report)
    assert report.kept == 1 and set(bad) == {"1", "2", "3"}
    assert "not a readable image" in bad["1"] and "answer" in bad["2"] and "found 0" in bad["3"]
    (out,) = _jsonl(report.outputs["jsonl"])
    assert out["doc_id"] == "deepeyes_0" and out["solution"] == "umbrella"
    assert out["problem"] == "<image>\nWhat is the man holding?"
    assert Image.open(out["images"][0]).getpixel((0, 0)) == (0, 0, 255)  # the bytes were written out


def test_vstar_jsonl_and_viewer_variant(tmp_path):
    _png(tmp_path / "direct_attributes" / "sa_4690.jpg")
    _png(tmp_path / "relative_position" / "sa_10.jpg")
    rows = [
        {"image": "direct_attributes/sa_4690.jpg", "text": "What is the color of the woman's bag?\n(A) black\n(B) white"
         "\n(C) red\n(D) blue\nAnswer with the option's letter from the given choices directly.",
         "category": "direct_attributes", "question_id": 0, "label": "A"},
        {"image": "direct_attributes/sa_missing.jpg", "text": "What is the material of the glove?\n(A) rubber\n(B) cotton",
         "category": "direct_attributes", "question_id": 1, "label": "B"},
        {"image": "relative_position/sa_10.jpg", "question": "Is the dog on the left or right of the cat?",
         "choices": ["left", "right"], "answer": 1, "category": "relative_position", "question_id": 2},
    ]
    (tmp_path / "test_questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = prepare("vstar", [tmp_path / "test_questions.jsonl"], tmp_path / "out", formats=["jsonl"])
    assert report.kept == 2 and set(_bad_ids(report)) == {"1"}
    out = {r["doc_id"]: r for r in _jsonl(report.outputs["jsonl"])}
    assert out["vstar_0"]["solution"] == "A" and out["vstar_0"]["difficulty"] == "direct_attributes"
    assert out["vstar_2"]["solution"] == "B" and "(B) right" in out["vstar_2"]["problem"]


def test_hrbench_tsv_with_base64_images(tmp_path):
    good = base64.b64encode(_png(size=(80, 60))).decode()
    header = ["index", "question", "answer", "category", "A", "B", "C", "D", "cycle_category", "image"]
    rows = [
        [0, "What is the number on the bus?", "C", "single", "12", "21", "112", "7", "single_0", good],
        [1, "Which sign is closer to the tree?", "E", "cross", "left", "right", "top", "bottom", "cross_0", good],
        [2, "What colour is the door?", "A", "single", "red", "green", "", "", "single_1", "x" * 2000],
    ]
    (tmp_path / "hr_bench_4k.tsv").write_text("\n".join("\t".join(map(str, r)) for r in [header, *rows]) + "\n")
    report = prepare("hrbench", [tmp_path / "hr_bench_4k.tsv"], tmp_path / "out", split="4k", formats=["jsonl"])
    bad = _bad_ids(report)
    assert report.kept == 1 and "is not one of the options" in bad["1"] and "base64" in bad["2"]
    (out,) = _jsonl(report.outputs["jsonl"])
    assert out["doc_id"] == "hr_bench_4k_0" and out["data_source"] == "hr_bench_4k" and out["difficulty"] == "single"
    assert "(C) 112" in out["problem"] and out["solution"] == "C"
    assert Image.open(out["images"][0]).size == (80, 60)


def test_local_hf_datasets_folder(tmp_path):
    import datasets

    _png(tmp_path / "imgs" / "a.png")
    ds = datasets.Dataset.from_list([{"doc_id": "t0", "problem": "<image>\nWhat is it?", "images": ["imgs/a.png"],
                                      "solution": "a square", "data_source": "visual_probe_train"}])
    ds.save_to_disk(str(tmp_path / "VisualProbe_train"))
    assert next(read_rows(tmp_path / "VisualProbe_train"))["doc_id"] == "t0"
    report = prepare("visual_probe", [tmp_path / "VisualProbe_train"], tmp_path / "out", image_root=tmp_path,
                     formats=["jsonl"])
    assert report.kept == 1 and not report.bad


def test_unknown_split_and_benchmark_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown split 'huge'"):
        prepare("visual_probe", [], tmp_path, split="huge")
    with pytest.raises(ValueError, match="unknown benchmark"):
        prepare("mme", [], tmp_path)
