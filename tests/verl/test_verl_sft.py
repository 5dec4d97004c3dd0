"""Cold-start SFT rows and the frozen vision tower, through verl's own SFT code paths:
``process_image`` / ``MultiTurnSFTDataset`` read the rows, ``HFModelConfig`` imports
``model.external_lib``, ``get_hf_auto_model_class`` picks the model class and
``build_optimizer`` builds the optimizer, as verl's FSDP engine does."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image
from verl.utils.dataset.vision_utils import process_image

from minio3_ext.core.images import ViewRules
from minio3_ext.data.convert import Problem
from minio3_ext.data.export import verl_rl_row, verl_sft_row

ROOT = Path(__file__).resolve().parents[2]


def test_sft_images_get_the_rl_pixel_budget_in_verls_process_image(tmp_path):
    big = tmp_path / "big.png"
    Image.new("RGB", (5200, 3467), (120, 30, 200)).save(big)
    view = ViewRules()
    sft = verl_sft_row([{"role": "user", "content": "<image>\nwhere?"}, {"role": "assistant", "content": "x"}], [str(big)])
    rl = verl_rl_row(Problem(doc_id="d", question="where?", answer="x", image=str(big), data_source="s",
                             benchmark="s", difficulty="train"), 0)
    first_sft, first_rl = process_image(dict(sft["images"][0])), process_image(dict(rl["images"][0]))
    assert first_sft.size == first_rl.size  # SFT sees what RL and evaluation see
    w, h = first_sft.size
    assert w * h <= view.max_pixels and w % 28 == 0 and h % 28 == 0
    assert sft["images"][0]["max_pixels"] == view.max_pixels and sft["images"][0]["min_pixels"] == view.min_pixels


_STEP = textwrap.dedent("""
    import json, sys
    import torch
    from omegaconf import OmegaConf
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset
    from verl.utils.model import get_hf_auto_model_class
    from verl.workers.config import HFModelConfig
    from verl.workers.config.optimizer import FSDPOptimizerConfig, build_optimizer

    model_dir, parquet, external_lib = sys.argv[1], sys.argv[2], sys.argv[3] or None
    cfg = HFModelConfig(path=model_dir, external_lib=external_lib,  # verl imports external_lib here
                        override_config={"attn_implementation": "sdpa"})  # no flash-attn on CPU
    module = get_hf_auto_model_class(cfg.hf_config).from_pretrained(
        cfg.local_path, torch_dtype=torch.float32, config=cfg.hf_config)
    ds = MultiTurnSFTDataset(parquet, cfg.tokenizer, OmegaConf.create({"max_length": 4096}), processor=cfg.processor)
    item = ds[0]
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    optim = build_optimizer(module.parameters(), FSDPOptimizerConfig(lr=1e-2))
    ids = item["input_ids"][None]
    mm = item["multi_modal_inputs"]
    logits = module(input_ids=ids, attention_mask=item["attention_mask"][None], position_ids=item["position_ids"][None]
                    if item["position_ids"].dim() == 1 else item["position_ids"][:, None],
                    pixel_values=mm["pixel_values"], image_grid_thw=mm["image_grid_thw"]).logits
    mask = item["loss_mask"][1:].bool()
    loss = torch.nn.functional.cross_entropy(logits[0, :-1][mask], ids[0, 1:][mask])
    loss.backward()
    optim.step()
    changed = sorted(n for n, p in module.named_parameters() if not torch.equal(p.detach(), before[n]))
    print(json.dumps({"class": type(module).__module__, "changed": changed, "n": len(before),
                      "architectures": module.config.architectures}))
""")


def _sft_step(tiny_qwen_dir, synthetic_rows, tmp_path, external_lib: str) -> dict:
    from minio3_ext.data.export import write_parquet

    row = synthetic_rows[0]
    messages = [{"role": "user", "content": "<image>\n" + row["problem"].replace("<image>", "").strip()},
                {"role": "assistant", "content": f"<think>seen</think><answer>{row['solution']}</answer>"}]
    parquet = write_parquet([verl_sft_row(messages, row["images"])], tmp_path / "sft.parquet")
    out = subprocess.run([sys.executable, "-c", _STEP, str(tiny_qwen_dir), str(parquet), external_lib],
                         capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_external_lib_freezes_vision_tower_and_merger_in_an_sft_step(tiny_qwen_dir, synthetic_rows, tmp_path):
    got = _sft_step(tiny_qwen_dir, synthetic_rows, tmp_path, "minio3_ext.verl.freeze_vision")
    assert got["class"] == "minio3_ext.verl.freeze_vision"
    assert got["changed"], "the language model must train"
    assert not [n for n in got["changed"] if n.startswith("model.visual.")]  # ViT blocks + merger untouched
    assert any(n.startswith("model.language_model.") for n in got["changed"])
    # the exported checkpoint names the stock architecture
    assert got["architectures"] == ["Qwen2_5_VLForConditionalGeneration"]


@pytest.mark.slow
def test_without_the_hook_verl_trains_the_vision_tower(tiny_qwen_dir, synthetic_rows, tmp_path):
    # the baseline the hook changes: verl's stock path updates vision weights too
    got = _sft_step(tiny_qwen_dir, synthetic_rows, tmp_path, "")
    assert any(n.startswith("model.visual.merger.") for n in got["changed"])
    assert any(n.startswith("model.visual.blocks.") for n in got["changed"])
