#!/usr/bin/env bash
# Released-code variant of the TRL recipe: grpo_qwen2_5_vl_7b.yaml plus the flags below,
# the parts of the authors' released training math TRL 1.16 can express.
#
#   MINIO3_JUDGE_BASE_URL=... MINIO3_JUDGE_API_KEY=... bash recipes/trl/grpo_qwen2_5_vl_7b_released.sh [more flags]
#
# Not expressible in TRL (kept as in the clean recipe, and said here):
# - the released context rule counts the whole context (prompt + responses + images)
#   against 32768 - 2000; TRL caps the completion only (max_completion_length, 24576 here);
# - the released dynamic sampling (drop groups whose reward std over all rows is < 1e-4,
#   refill the batch): TRL keeps those groups (advantage 0);
# - the released 8192-token per-turn cap: TRL caps the whole completion only.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# the released judge: its prompts, "score:" parsing, 0.2*attempt temperature (needs MINIO3_JUDGE_BASE_URL)
export MINIO3_JUDGE_PRESET="${MINIO3_JUDGE_PRESET:-released}"
RELEASED=(
  # masked rows stay inside the group mean/std (released code; clean recipe: false)
  --include_masked_in_stats true
  # released loss: each sequence's token-mean, averaged over the batch (masked rows count as 0);
  # TRL's "grpo" loss computes ((loss * mask).sum(-1) / mask.sum(-1)).mean() (clean recipe: dapo, token-mean)
  --loss_type grpo
  # ...not rescaled to the live rows: masked rows dilute the mean, as released (clean recipe: rescaled)
  --rescale_row_losses false
  # released: no runaway guard; a share above 1.0 never happens, so masking is never suspended (clean recipe: 0.5)
  --max_masked_share 1.0
  # released edge cases: out-of-range boxes clamped, observation_0 = the original, any <grounding> makes a
  # zoom, Observation number = action index + 1 (clean recipe: strict)
  --preset released
  # released: 12 images per context (clean recipe: 32)
  --max_images 12
  # released: the <grounding> dialect of the released checkpoint and cold-start data
  --dialect minio3
  # run folder of this variant
  --output_dir checkpoints/minio3-grpo-trl-released
)
exec accelerate launch --config_file "$HERE/accelerate_zero3.yaml" "$HERE/grpo_qwen2_5_vl_7b.py" \
    --config "$HERE/grpo_qwen2_5_vl_7b.yaml" "${RELEASED[@]}" "$@"
