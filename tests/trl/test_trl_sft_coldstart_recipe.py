"""``recipes/trl/sft_coldstart_qwen2_5_vl_7b.py`` as docs/reproduce.md runs it: the released
cold-start rows (built here in the HF parquet format) → `minio3 data import-coldstart`
→ TRL's SFTTrainer on the tiny offline Qwen2.5-VL, one optimizer step, loss on the
assistant turns only."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from minio3_ext.data.coldstart_import import import_coldstart

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "trl"


def _png(size, colour):
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def _released_parquet(path: Path) -> Path:
    conv = [{"from": "system", "value": "You are a helpful assistant."},
            {"from": "human", "value": "<image>\nWhat colour is the square?"},
            {"from": "gpt", "value": '<think>Zoom.</think> <grounding>{"bbox_2d": [0.1, 0.1, 0.6, 0.6], '
                                     '"source": "original_image"}</grounding>'},
            {"from": "human", "value": "After the above Action 0, here is the the zoom-in image (Observation 1):\n"
                                       "<image>.\nContinue your reasoning process inside <think> and </think>."},
            {"from": "gpt", "value": "<think>It is red.</think> <answer>red</answer>"}]
    rows = [{"conversations": repr(conv), "images": [{"bytes": _png((300, 200), "red"), "path": None},
                                                     {"bytes": _png((220, 220), "blue"), "path": None}],
             "image_names": ["original.png", "observation_1.png"], "data_source": "visual_probe_train",
             "sample_index": k, "rollout_index": 0} for k in range(2)]
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_sft_recipe_trains_on_the_imported_coldstart_data(tiny_qwen_dir, tmp_path, capsys):
    report = import_coldstart(_released_parquet(tmp_path / "data" / "train-00000-of-00001.parquet"),
                              tmp_path / "coldstart")
    assert report.kept == 2
    spec = importlib.util.spec_from_file_location("minio3_trl_sft_recipe", RECIPE / "sft_coldstart_qwen2_5_vl_7b.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    trainer = module.main([
        "--config", str(RECIPE / "sft_coldstart_qwen2_5_vl_7b.yaml"),
        # CPU / tiny-model overrides; everything else is the recipe's
        "--model_name_or_path", str(tiny_qwen_dir), "--dataset_path", report.outputs["trl"],
        "--output_dir", str(tmp_path / "out"), "--max_steps", "1", "--use_cpu", "true", "--bf16", "false",
        "--dtype", "float32", "--gradient_checkpointing", "false",
        "--report_to", "none", "--save_strategy", "no", "--gradient_accumulation_steps", "1", "--max_length", "8192",
    ])
    assert trainer.state.global_step == 1 and trainer.state.log_history[-1]["train_loss"] > 0
    # the YAML asks for flash_attention_2; on this machine (no flash-attn, no CUDA) sdpa, said in one line
    assert yaml.safe_load((RECIPE / "sft_coldstart_qwen2_5_vl_7b.yaml").read_text())["attn_implementation"] == "flash_attention_2"
    assert trainer.model.config._attn_implementation == "sdpa"
    assert "flash-attn is not usable here" in capsys.readouterr().err
    frozen = [p.requires_grad for p in trainer.model.model.visual.parameters()]
    assert frozen and not any(frozen)  # vision tower and projector frozen, as released
    assert (trainer.args.learning_rate, trainer.args.num_train_epochs, trainer.args.warmup_ratio) == (1e-5, 3, 0.1)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    text = trainer.processing_class.tokenizer.decode(batch["input_ids"][0][batch["labels"][0] != -100])
    assert "<answer>red</answer>" in text and "Observation 1" not in text  # loss on the gpt turns only
    assert (Path(tmp_path / "out") / "config.json").exists()


def test_every_yaml_setting_is_commented():
    for line in (RECIPE / "sft_coldstart_qwen2_5_vl_7b.yaml").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert " # " in line, line
    assert yaml.safe_load((RECIPE / "sft_coldstart_qwen2_5_vl_7b.yaml").read_text())["max_length"] == 32768


@pytest.mark.slow
def test_tool_schemas_flag_renders_the_rl_prompts_tools_block(tiny_qwen_dir, tmp_path):
    """``--tool_schemas true``: every SFT example carries the zoom environment's <tools> block,
    the one TRL renders into the hermes RL prompts (same bound methods, same chat template)."""
    from minio3_ext.core import EpisodeConfig
    from minio3_ext.trl import ZoomEnvironment
    from minio3_ext.testing import load_tiny_qwen

    report = import_coldstart(_released_parquet(tmp_path / "data" / "train-00000-of-00001.parquet"),
                              tmp_path / "coldstart")
    spec = importlib.util.spec_from_file_location("minio3_trl_sft_recipe_tools", RECIPE / "sft_coldstart_qwen2_5_vl_7b.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    common = ["--config", str(RECIPE / "sft_coldstart_qwen2_5_vl_7b.yaml"), "--model_name_or_path", str(tiny_qwen_dir),
              "--dataset_path", report.outputs["trl"], "--max_steps", "1", "--use_cpu", "true", "--bf16", "false",
              "--dtype", "float32", "--attn_implementation", "sdpa", "--gradient_checkpointing", "false",
              "--report_to", "none", "--save_strategy", "no", "--gradient_accumulation_steps", "1", "--max_length", "8192"]
    texts = {}
    for flag in ("true", "false"):
        trainer = module.main([*common, "--output_dir", str(tmp_path / flag), "--tool_schemas", flag])
        batch = trainer.data_collator([trainer.train_dataset[0]])
        texts[flag] = trainer.processing_class.tokenizer.decode(batch["input_ids"][0])
    env = ZoomEnvironment(EpisodeConfig(dialect="hermes", max_context_tokens=None))
    _, processor = load_tiny_qwen(tiny_qwen_dir)
    rl_system = processor.apply_chat_template([{"role": "user", "content": "x"}], tools=[env.zoom], tokenize=False)
    block = rl_system[rl_system.index("<tools>\n"):rl_system.rindex("</tools>") + len("</tools>")]
    assert '"name": "zoom"' in block and block in texts["true"]
    assert "<tools>" not in texts["false"]
