"""Mini-o3 for TRL: masked GRPO, the zoom environment, rewards.

::

    from minio3_ext.trl import MaskedGRPOConfig, MaskedGRPOTrainer, ZoomEnvironment, AccuracyReward

``MaskedGRPOTrainer`` is a drop-in ``GRPOTrainer``: over-turn trajectories (turn,
image or context budget exhausted while still acting) get advantage 0, stay out of
their group's baseline, and contribute neither loss nor normaliser tokens.
Importing this package imports TRL.
"""

from .config import MaskedGRPOConfig
from .data import grpo_rows, oracle_box, oracle_conversation
from .environment import ZoomEnvironment
from .rewards import AccuracyReward, format_reward, propagate_unscorable, required
from .templates import use_minio3_dialect, use_tool_chat_template
from .termination import rollout_record, termination_reason
from .trainer import MaskedGRPOTrainer

__all__ = [
    "MaskedGRPOConfig", "MaskedGRPOTrainer", "ZoomEnvironment", "AccuracyReward", "format_reward",
    "grpo_rows", "oracle_box", "oracle_conversation", "use_tool_chat_template", "use_minio3_dialect", "rollout_record",
    "termination_reason", "required", "propagate_unscorable",
]
