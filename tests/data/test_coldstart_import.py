"""`minio3 data import-coldstart` on rows built here in the released formats: the HF
``Mini-o3-Coldstart-Dataset`` parquet (columns read by the released
``scripts/preprocess_coldstart.py``) and the ShareGPT JSON that script writes."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from minio3_ext.cli import main
from minio3_ext.data.coldstart_import import ColdstartError, import_coldstart
from minio3_ext.testing import build_processor

SYSTEM = ("You are a helpful assistant. Answer the user's question based on the image provided. Output your "
          "thinking process within the <think> and </think> tags. ...")


def _obs(action, obs):
    return (f"After the above Action {action}, here is the the zoom-in image (Observation {obs}):\n<image>.\n"
            "Continue your reasoning process inside <think> and </think>. If needed, you can continue to zoom in on "
            "the original image or any of the observations, by outputting <grounding> and </grounding> as before. "
            "If the final answer is confirmed, put your final answer inside <answer> and </answer>.")


ERROR = ("ERROR occurs during grounding. Error Information: The bounding box is not valid in width: "
         "[3120, 1040, 2080, 1733].\nPlease analyze the error information obtained from the function tool and "
         "adjust your response. Countinue your reasoning process inside <think> and </think>.")


def _zoom(box, source="original_image", key_order=("bbox_2d", "source")):
    args = {"bbox_2d": box, "source": source}
    return f"<think>Look closer.</think> <grounding>{json.dumps({k: args[k] for k in key_order})}</grounding>"


def good_conversation():
    """system, question, zoom, observation, failed zoom, error turn, zoom on observation_1, observation, answer."""
    return [
        {"from": "system", "value": SYSTEM},
        {"from": "human", "value": "<image>\nWhat is the color of the umbrella held by the man near the fountain?"},
        {"from": "gpt", "value": _zoom([0.4, 0.3, 0.6, 0.5])},
        {"from": "human", "value": _obs(0, 1)},
        {"from": "gpt", "value": _zoom([0.6, 0.3, 0.4, 0.5], "observation_1")},
        {"from": "human", "value": ERROR},
        {"from": "gpt", "value": _zoom([0.1, 0.1, 0.9, 0.9], "observation_1", ("source", "bbox_2d"))},
        {"from": "human", "value": _obs(2, 3)},
        {"from": "gpt", "value": "<think>It is red.</think> <answer>red</answer>"},
    ]


def short_conversation():
    return [{"from": "human", "value": "<image>\nWhat is written on the sign?"},
            {"from": "gpt", "value": "<think>Readable.</think> <answer>BAKERY</answer>"}]


def _png(size, color="red"):
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


BAD_ROWS = {  # conversation, number of images → the reason reported
    "roles": ([{"from": "human", "value": "<image>\nq"}, {"from": "human", "value": "again"},
               {"from": "gpt", "value": "<answer>x</answer>"}], 1, "roles must alternate"),
    "slots": (short_conversation(), 2, "1 <image> slots but 2 images"),
    "no action": ([{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "<think>hmm</think>"},
                   {"from": "human", "value": _obs(0, 1)}, {"from": "gpt", "value": "<answer>x</answer>"}], 2,
                  "no action in the minio3 dialect"),
    "ends without answer": (good_conversation()[:3], 1, "must answer"),
    "bad source": ([{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": _zoom([0, 0, 1, 1], "observation_4")},
                    {"from": "human", "value": _obs(0, 1)}, {"from": "gpt", "value": "<answer>x</answer>"}], 2,
                   "shows an observation"),
    "role name": ([{"from": "user", "value": "<image>\nq"}, {"from": "gpt", "value": "<answer>x</answer>"}], 1,
                  "unknown role 'user'"),
}


@pytest.fixture
def released_parquet(tmp_path):
    """Two good rows and the bad ones, as the HF parquet stores them (conversations as a literal string)."""
    rows = [
        {"conversations": repr(good_conversation()), "images": [
            {"bytes": _png((1200, 900)), "path": None}, {"bytes": _png((240, 180), "blue"), "path": None},
            {"bytes": _png((20, 20), "green"), "path": None}],  # 400 px: below 40k, enlarged into the limits
         "image_names": ["original.png", "obs_1.png", "obs_3.png"], "data_source": "visual_probe_train",
         "sample_index": 0, "rollout_index": 0},
        {"conversations": repr(short_conversation()), "images": [{"bytes": _png((2000, 1500)), "path": None}],
         "image_names": ["original.png"], "data_source": "deepeyes_train", "sample_index": 1, "rollout_index": 3},
    ]
    for conv, n, _ in BAD_ROWS.values():
        rows.append({"conversations": repr(conv), "images": [{"bytes": _png((300, 300)), "path": None}] * n,
                     "image_names": [f"{k}.png" for k in range(n)], "data_source": "x", "sample_index": 0,
                     "rollout_index": 0})
    rows.append({"conversations": "__import__('os').system('echo pwned')", "images": [], "image_names": [],
                 "data_source": "x", "sample_index": 0, "rollout_index": 0})
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([("conversations", pa.string()), ("images", pa.list_(image)),
                        ("image_names", pa.list_(pa.string())), ("data_source", pa.string()),
                        ("sample_index", pa.int64()), ("rollout_index", pa.int64())])
    path = tmp_path / "data" / "train-00000-of-00001.parquet"
    path.parent.mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def test_parquet_rows_validated_and_bad_rows_reported_by_index(released_parquet, tmp_path):
    report = import_coldstart(released_parquet.parent, tmp_path / "out")
    assert (report.rows, report.kept) == (2 + len(BAD_ROWS) + 1, 2)
    bad = {b.index: b.reason for b in report.bad}
    assert sorted(bad) == list(range(2, 2 + len(BAD_ROWS) + 1))
    for (name, (_, _, reason)), index in zip(BAD_ROWS.items(), range(2, 100)):
        assert reason in bad[index], (name, bad[index])
    assert "readable literal" in bad[2 + len(BAD_ROWS)]  # never eval()-ed
    rows = pq.read_table(report.outputs["verl"]).to_pylist()
    first = rows[0]
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant", "user", "assistant", "user",
                                                      "assistant", "user", "assistant"]
    assert first["messages"][8]["content"] == good_conversation()[8]["value"]
    assert len(first["images"]) == 3 and all((i["min_pixels"], i["max_pixels"]) == (40_000, 2_000_000)
                                             for i in first["images"])
    for row in rows:  # every written image lies within the paper's pixel limits
        for img in row["images"]:
            with Image.open(img["image"]) as im:
                assert 40_000 <= im.width * im.height <= 2_000_000, im.size
    assert rows[1]["data_source"] == "deepeyes_train"
    assert json.loads((tmp_path / "out" / "coldstart.report.json").read_text())["kept"] == 2


def test_sharegpt_json_images_referenced_not_copied(tmp_path):
    folder = tmp_path / "Mini-o3-Coldstart"
    (folder / "images" / "minio3_coldstart_0").mkdir(parents=True)
    names = ["original.jpg", "obs_1.jpg", "obs_3.jpg"]
    sizes = [(1200, 900), (400, 300), (3000, 2000)]  # the last is 6M px: written resized to 2M
    for name, size in zip(names, sizes):
        Image.new("RGB", size, "white").save(folder / "images" / "minio3_coldstart_0" / name)
    data = [{"conversations": good_conversation(), "images": [f"images/minio3_coldstart_0/{n}" for n in names]},
            {"conversations": short_conversation(), "images": ["images/minio3_coldstart_0/missing.jpg"]}]
    (folder / "Mini-o3-Coldstart.json").write_text(json.dumps(data, indent=4))
    report = import_coldstart(folder / "Mini-o3-Coldstart.json", tmp_path / "out")
    assert report.kept == 1 and [(b.index, "image not found" in b.reason) for b in report.bad] == [(1, True)]
    assert (report.images_referenced, report.images_written) == (2, 1)
    (row,) = pq.read_table(report.outputs["verl"]).to_pylist()
    paths = [i["image"] for i in row["images"]]
    assert paths[:2] == [str((folder / "images" / "minio3_coldstart_0" / n).resolve()) for n in names[:2]]
    assert paths[2].startswith(str(tmp_path / "out" / "images"))
    with Image.open(paths[2]) as im:
        assert 1_900_000 <= im.width * im.height <= 2_000_000


def test_verl_multiturn_sft_and_trl_collator_read_the_import(released_parquet, tmp_path):
    import datasets
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    processor = build_processor()
    report = import_coldstart(released_parquet, tmp_path / "out")
    config = OmegaConf.create({"max_length": 16384, "truncation": "error", "messages_key": "messages",
                               "image_key": "images"})
    ds = MultiTurnSFTDataset(report.outputs["verl"], processor.tokenizer, config, processor=processor)
    item = ds[0]
    grid = item["multi_modal_inputs"]["image_grid_thw"]
    assert grid.shape[0] == 3  # original + two observations
    assert all(40_000 <= int(t * h * w) * 14 * 14 <= 2_000_000 * 1.05 for t, h, w in grid.tolist())
    trained = processor.tokenizer.decode(item["input_ids"][item["loss_mask"].bool()])
    assert "<answer>red</answer>" in trained and "Countinue" not in trained  # loss on the gpt turns only

    trl = datasets.load_from_disk(report.outputs["trl"])
    assert trl.features["images"].feature.dtype == "string"  # paths, no image bytes in the dataset folder
    collator = DataCollatorForVisionLanguageModeling(processor)
    batch = collator([{k: trl[0][k] for k in ("messages", "images")}])
    assert batch["image_grid_thw"].shape[0] == 3 and torch.is_tensor(batch["input_ids"])


def _run(argv):
    return main(argv)  # as the console script runs it


def test_cli_reports_bad_rows_and_strict_fails(released_parquet, tmp_path, capsys):
    base = ["data", "import-coldstart", "--input", str(released_parquet), "--out", str(tmp_path / "out")]
    assert _run(base + ["--strict"]) == 1
    err = capsys.readouterr().err
    assert "row 2" in err and "roles must alternate" in err and "no dataset written" in err
    assert not (tmp_path / "out" / "coldstart.verl.parquet").exists()
    assert _run(base) == 0
    out = capsys.readouterr()
    assert f"2 of {2 + len(BAD_ROWS) + 1} rows kept" in out.out and "skipped row 3: 1 <image> slots" in out.err
    assert _run(["data", "import-coldstart", "--input", str(tmp_path / "nope.parquet"), "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_empty_input_is_an_error(tmp_path):
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(ColdstartError, match="no rows"):
        import_coldstart(tmp_path / "empty.json", tmp_path / "out")
