"""Masked GRPO with the zoom environment in TRL — the TRL snippet of docs/trl.md as a whole script.

    python examples/trl_quickstart.py            # CPU, offline, about a minute

It trains one step of a tiny random-weight Qwen2.5-VL (``minio3_ext.testing``) on two
synthetic visual-search rows. For a real run swap in ``Qwen2ForConditionalGeneration``
/ ``AutoProcessor`` from ``Qwen/Qwen2.5-VL-7B-Instruct``, your own rows, and the
recipe's settings (``recipes/trl/``); ``num_generations`` must divide the global batch
(``per_device_train_batch_size`` × processes).
"""

import tempfile

from datasets import Dataset

from minio3_ext.data.synthetic import generate, load_rows
from minio3_ext.testing import load_tiny_qwen, save_tiny_qwen
from minio3_ext.trl import (AccuracyReward, MaskedGRPOConfig, MaskedGRPOTrainer, ZoomEnvironment, grpo_rows,
                            use_tool_chat_template)

work = tempfile.mkdtemp(prefix="minio3-trl-")
rows = load_rows(generate(f"{work}/data", n=2, width=640, height=480))
model, processor = load_tiny_qwen(save_tiny_qwen(f"{work}/model"))

use_tool_chat_template(processor)        # Qwen2.5-VL's stock template cannot render tool calls
args = MaskedGRPOConfig(output_dir=f"{work}/out", max_turns=6, num_generations=2, per_device_train_batch_size=2,
                        max_steps=1, max_completion_length=96, use_cpu=True, report_to=[])  # any GRPOConfig field too
trainer = MaskedGRPOTrainer(model=model, processing_class=processor, args=args,
                            train_dataset=Dataset.from_list(grpo_rows(rows)),
                            reward_funcs=[AccuracyReward()], environment_factory=ZoomEnvironment)
trainer.train()
print("trained", trainer.state.global_step, "step(s); logs:", trainer.state.log_history[-1])
