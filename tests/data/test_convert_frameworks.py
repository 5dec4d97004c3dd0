"""Converted data through the real verl and TRL dataset code (tiny offline Qwen2.5-VL processor)."""

import asyncio
import json

import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from minio3_ext.core.episode import EpisodeConfig
from minio3_ext.data.prepare import prepare
from minio3_ext.data.synthetic import generate, load_rows
from minio3_ext.eval.runner import run_episode
from minio3_ext.eval.sft import write_sft_data
from minio3_ext.testing import build_processor


@pytest.fixture(scope="module")
def processor():
    return build_processor()


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Synthetic rows in VisualProbe format, converted to every format."""
    tmp = tmp_path_factory.mktemp("conv")
    src = generate(tmp / "synth", n=2, seed=1, width=640, height=480)
    rows = load_rows(src)
    (tmp / "train.json").write_text(json.dumps([{**r, "data_source": "visual_probe_train"} for r in rows]))
    report = prepare("visual_probe", [tmp / "train.json"], tmp / "out", split="train")
    assert report.kept == 2 and not report.bad
    return rows, report


def test_verl_rlhf_dataset_reads_our_parquet(converted, processor):
    from verl.utils.dataset.rl_dataset import RLHFDataset

    rows, report = converted
    # no worker pool (workers=None): datasets' fork after torch threads can deadlock
    config = OmegaConf.create({"max_prompt_length": 4096, "filter_overlong_prompts": True,
                               "filter_overlong_prompts_workers": None, "return_raw_chat": True})
    ds = RLHFDataset(data_files=[report.outputs["verl"]], tokenizer=processor.tokenizer, config=config,
                     processor=processor)
    assert len(ds) == 2  # nothing filtered: the prompt with its image fits
    item = ds[0]
    roles = [m["role"] for m in item["raw_prompt"]]
    assert roles == ["system", "user"]
    parts = item["raw_prompt"][1]["content"]
    assert parts[0]["type"] == "image" and parts[1]["type"] == "text"
    assert rows[0]["problem"].split("\n", 1)[1] in parts[1]["text"]
    assert item["tools_kwargs"]["zoom"]["create_kwargs"]["image"] == rows[0]["images"][0]
    assert item["reward_model"]["ground_truth"] == rows[0]["solution"]
    assert item["data_source"] == "visual_probe_train" and item["agent_name"] == "minio3_agent"
    # verl's first view follows our pixel budget, not qwen_vl_utils' default
    assert (parts[0]["max_pixels"], parts[0]["min_pixels"]) == (2_000_000, 40_000)


def test_verl_rows_match_the_verl_adapter_rows(converted):
    import pyarrow.parquet as pq

    from minio3_ext.verl.dataset import to_verl_row

    _, report = converted
    ours = pq.read_table(report.outputs["verl"]).to_pylist()
    canonical = [json.loads(line) for line in open(report.outputs["jsonl"])]
    for i, (got, row) in enumerate(zip(ours, canonical)):
        want = to_verl_row(row, i, split="train")
        extra, want_extra = got.pop("extra_info"), want.pop("extra_info")
        assert got == want
        assert {k: extra[k] for k in want_extra} == want_extra


def test_trl_rl_dataset_matches_the_trl_adapter_rows(converted):
    import datasets

    from minio3_ext.trl.data import grpo_rows

    rows, report = converted
    ds = datasets.load_from_disk(report.outputs["trl"])
    canonical = [json.loads(line) for line in open(report.outputs["jsonl"])]
    expected = grpo_rows(canonical)
    assert len(ds) == len(expected) == 2
    for got, want in zip(ds, expected):
        assert {k: got[k] for k in want} == want
    assert ds[0]["image_path"] == rows[0]["images"][0] and ds[0]["solution"] == rows[0]["solution"]


def _solved_trajectory(row):
    x0, y0, x1, y1 = row["target_bbox"]
    box = [max(0, (x0 - 20) / row["width"]), max(0, (y0 - 20) / row["height"]),
           min(1, (x1 + 20) / row["width"]), min(1, (y1 + 20) / row["height"])]
    replies = iter([f'<think>there</think><grounding>{{"bbox_2d": {box}}}</grounding>',
                    f"<think>read it</think><answer>{row['solution']}</answer>"])

    async def policy(messages):
        return next(replies)

    traj = asyncio.run(run_episode(policy, row, EpisodeConfig(max_turns=4)))
    traj.update(verdict=1, scored=True)
    return traj


def test_sft_data_through_verl_multiturn_sft_and_trl(converted, processor, tmp_path):
    from trl.data_utils import prepare_multimodal_messages
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    rows, _ = converted
    traj = _solved_trajectory(rows[0])
    report = write_sft_data([traj, {**traj, "verdict": 0, "sample": 1}], tmp_path)
    assert report == {"kept": 1, "not_correct": 1, "unusable": []}
    config = OmegaConf.create({"max_length": 8192, "truncation": "error", "messages_key": "messages",
                               "image_key": "images"})
    ds = MultiTurnSFTDataset(str(tmp_path / "sft.verl.parquet"), processor.tokenizer, config, processor=processor)
    item = ds[0]
    ids, mask = item["input_ids"], item["loss_mask"]
    image_token = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((ids == image_token).sum()) > 0
    assert item["multi_modal_inputs"]["image_grid_thw"].shape[0] == 2  # original + one crop
    trained = processor.tokenizer.decode(ids[mask.bool()])
    assert "<answer>" in trained and "grounding" in trained and "zoomed-in image" not in trained

    import datasets

    trl = datasets.load_from_disk(str(tmp_path / "sft.trl"))
    example = trl[0]
    assert len(example["images"]) == 2 and all(isinstance(im, Image.Image) for im in example["images"])
    messages = prepare_multimodal_messages(example["messages"], images=example["images"])
    text = processor.apply_chat_template(messages, tokenize=False)
    assert text.count("<|image_pad|>") == 2
    batch = processor(text=[text], images=example["images"], return_tensors="pt")
    assert batch["image_grid_thw"].shape[0] == 2 and torch.is_tensor(batch["input_ids"])


def test_sft_data_carries_the_given_pixel_budget_to_verls_sft_dataset(converted, tmp_path):
    """``write_sft_data(view=...)``: verl's SFT rows carry the RL rows' pixel budget (verl's
    ``process_image`` reads it per image), not the recipe default's."""
    import pandas as pd

    from minio3_ext.core import ViewRules

    rows, _ = converted
    traj = _solved_trajectory(rows[0])
    write_sft_data([traj], tmp_path / "default")
    write_sft_data([traj], tmp_path / "small", view=ViewRules(max_pixels=28 * 28 * 32, min_pixels=28 * 28 * 8))
    default = pd.read_parquet(tmp_path / "default" / "sft.verl.parquet").iloc[0]["images"]
    small = pd.read_parquet(tmp_path / "small" / "sft.verl.parquet").iloc[0]["images"]
    assert [(i["max_pixels"], i["min_pixels"]) for i in default] == [(ViewRules().max_pixels, ViewRules().min_pixels)] * 2
    assert [(i["max_pixels"], i["min_pixels"]) for i in small] == [(25088, 6272)] * 2
