"""``MaskedGRPOConfig``: TRL's ``GRPOConfig`` plus the Mini-o3 over-turn masking knobs."""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import GRPOConfig

from ..core.episode import OVERTURN_REASONS, TERMINATION_REASONS
from .compat import KNOWN_LOSSES, ROW_MEAN_LOSSES

__all__ = ["MaskedGRPOConfig"]


@dataclass
class MaskedGRPOConfig(GRPOConfig):
    """Configuration for :class:`~minio3_ext.trl.MaskedGRPOTrainer`.

    Every ``GRPOConfig`` field keeps its meaning, ``max_tool_calling_iterations`` included
    (tool rounds; ``None``, TRL's default: no limit). ``max_turns`` is the same limit counted
    in assistant turns (``max_turns - 1`` tool rounds: the last turn must answer); set either
    (both only if they agree). Neither set: no limit, as in ``GRPOConfig``. The recipe sets
    the paper's 6 turns. The fields below decide which trajectories leave the policy gradient.

    Every ``loss_type`` of TRL 1.16 is exact with masked rows: the token-normalised ones
    (``dapo``, ``bnpo``, ``cispo``, ``vespo``) count no masked tokens, and the row-normalised
    ones (``grpo``, ``sapo``, ``luspo``, ``dr_grpo``) are rescaled by rows / live rows of the
    generation batch, so a masked row no longer dilutes the live rows' gradient
    (``rescale_row_losses=False``: not rescaled, the released code's loss).
    """

    max_turns: int | None = field(
        default=None,
        metadata={"help": "Assistant turns per trajectory (paper: 6 at training); the same limit as "
                  "`max_tool_calling_iterations` + 1, set either. A trajectory still calling a tool at its last turn "
                  "ends in `turn_limit`. None (with max_tool_calling_iterations None): no limit, TRL's default."},
    )
    mask_overturn: bool = field(
        default=True,
        metadata={"help": "Leave trajectories whose termination reason is in `masked_reasons` out of the policy "
                  "gradient. False reproduces stock GRPOTrainer exactly."},
    )
    masked_reasons: list[str] = field(
        default_factory=lambda: sorted(OVERTURN_REASONS),
        metadata={"help": f"Termination reasons that are masked; any of {list(TERMINATION_REASONS)}."},
    )
    include_masked_in_stats: bool = field(
        default=False,
        metadata={"help": "Keep masked rows inside their group's reward mean/std (the released code's behaviour). "
                  "False leaves them out of the baseline too. Either way they get advantage 0 and no loss tokens."},
    )
    max_masked_share: float | None = field(
        default=None,
        metadata={"help": "Runaway guard: when the share of masked trajectories in a generation batch exceeds "
                  "this, masking is suspended for that batch and over-turn rows train as ordinary rows (reward as "
                  "scored, usually 0). None disables the guard."},
    )

    rescale_row_losses: bool = field(
        default=True,
        metadata={"help": "Rescale the row-normalised loss types (grpo, sapo, luspo, dr_grpo) by rows / live rows of "
                  "the generation batch, so masked rows do not dilute the live rows' gradient. False: masked rows "
                  "count as 0 in the per-row mean (the released code's loss)."},
    )

    mask_plain_truncation: bool = field(
        default=False,
        metadata={"help": "Also mask completions of a run without tools that hit max_completion_length without an "
                  "answer (context_limit). Off by default: without tools the trainer scores every completion as "
                  "GRPOTrainer does; with tools (or an environment) over-turn masking always applies."},
    )

    offload_buffered_pixels: bool = field(
        default=True,
        metadata={"help": "Keep a training generation batch's pixel_values in host memory, in the vision tower's "
                  "dtype, while it is buffered (steps_per_generation micro-steps); each micro-batch's share moves to "
                  "the GPU when it trains. The vision tower casts to its own dtype anyway, so the numbers do not "
                  "change. False keeps TRL's choice (the whole buffer on the GPU)."},
    )

    def __post_init__(self):
        if self.max_turns is not None and self.max_turns < 1:
            raise ValueError(f"MaskedGRPOConfig.max_turns must be >= 1 or None, got {self.max_turns}")
        if self.max_tool_calling_iterations is not None and self.max_tool_calling_iterations < 0:
            raise ValueError("MaskedGRPOConfig.max_tool_calling_iterations must be >= 0 or None, got "
                             f"{self.max_tool_calling_iterations}")
        unknown = sorted(set(self.masked_reasons) - set(TERMINATION_REASONS))
        if unknown:
            raise ValueError(f"MaskedGRPOConfig.masked_reasons: unknown reasons {unknown}; expected from {list(TERMINATION_REASONS)}")
        if self.max_masked_share is not None and not 0.0 <= self.max_masked_share <= 1.0:
            raise ValueError(f"MaskedGRPOConfig.max_masked_share must be in [0, 1] or None, got {self.max_masked_share}")
        if self.max_turns is None:
            if self.max_tool_calling_iterations is not None:
                self.max_turns = self.max_tool_calling_iterations + 1
        elif self.max_tool_calling_iterations is None:
            self.max_tool_calling_iterations = self.max_turns - 1
        elif self.max_tool_calling_iterations != self.max_turns - 1:
            raise ValueError(
                f"MaskedGRPOConfig: max_tool_calling_iterations={self.max_tool_calling_iterations} disagrees with "
                f"max_turns={self.max_turns} (expected {self.max_turns - 1}); set only one of them"
            )
        self.masked_reasons = sorted(set(self.masked_reasons))
        if self.loss_type not in KNOWN_LOSSES:
            raise ValueError(
                f"MaskedGRPOConfig.loss_type={self.loss_type!r}: masking is exact only for {sorted(KNOWN_LOSSES)}; "
                "use loss_type='dapo'"
            )
        if (self.mask_overturn and self.rescale_row_losses and self.loss_type in ROW_MEAN_LOSSES
                and (self.entropy_coef or self.use_adaptive_entropy)):
            raise ValueError(
                f"MaskedGRPOConfig: loss_type={self.loss_type!r} is rescaled to live rows, which would rescale the "
                "entropy bonus too; with entropy_coef/use_adaptive_entropy use loss_type='dapo' (or 'bnpo')"
            )
        super().__post_init__()
