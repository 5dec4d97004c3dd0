"""Every TRL internal the TRL adapter relies on, in one place (checked by ``tests/trl/test_trl_compat.py``).

``MaskedGRPOTrainer`` overrides private ``GRPOTrainer`` methods and reads private
attributes. TRL may rename or reshape them in any release, so each one is listed
here with the signature and return shape the adapter was written against; the
contract test checks presence and signature, and the trainer unpacks return values
through :func:`unpack` so that a changed shape fails with one clear message instead
of a wrong number deep inside a run. ``pyproject.toml`` pins TRL to
:data:`TRL_SUPPORTED` — widen it only after the contract test passes on the new
release.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Sequence

__all__ = [
    "TRL_SUPPORTED", "Seam", "SEAMS", "GENERATE_FIELDS", "TOOL_LOOP_FIELDS", "SINGLE_TURN_FIELDS",
    "VLLM_GENERATE_FIELDS", "SCORED_KEYS", "ROW_MEAN_LOSSES", "TOKEN_SUM_LOSSES", "MICROBATCH_TOKEN_LOSSES",
    "KNOWN_LOSSES", "UpstreamChanged", "unpack", "check_seams", "calling_message",
]

TRL_SUPPORTED = ">=1.16,<1.17"
"""The TRL range the contract test covers (also the ``trl`` pin in ``pyproject.toml``)."""


class UpstreamChanged(RuntimeError):
    """A TRL internal the adapter relies on is missing or has another shape."""


@dataclass(frozen=True)
class Seam:
    owner: str          # dotted path of the class or module
    name: str           # attribute name
    kind: str           # "method" | "attribute" | "function"
    params: tuple[str, ...] | None = None  # positional/keyword parameter names, ``self`` excluded
    why: str = ""


_T = "trl.trainer.grpo_trainer.GRPOTrainer"
_V = "trl.generation.vllm_generation.VLLMGeneration"
_C = "trl.generation.vllm_client.VLLMClient"

SEAMS: tuple[Seam, ...] = (
    # overridden methods (called through super())
    Seam(_T, "__init__", "method", ("model", "reward_funcs", "args", "train_dataset", "eval_dataset",
                                    "processing_class", "reward_processing_classes", "callbacks", "optimizers",
                                    "quantization_config", "peft_config", "tools", "rollout_func",
                                    "environment_factory"),
         "MaskedGRPOTrainer passes every argument through; args=None builds a default config"),
    Seam(_T, "_generate", "method", ("prompts",), "returns the 8-tuple GENERATE_FIELDS; classified and masked"),
    Seam(_T, "_calculate_rewards", "method", ("inputs", "prompts", "completions", "completion_ids_list"),
         "returns (rows of all processes, reward funcs) float tensor; masked rows become NaN"),
    Seam(_T, "_generate_and_score_completions", "method", ("inputs",),
         "returns a dict with SCORED_KEYS; the released variant zeroes masked advantages"),
    Seam(_T, "_tool_call_loop", "method", ("prompts", "prompt_ids", "completion_ids", "completions", "logprobs",
                                           "images", "multimodal_fields"),
         "returns the 7-tuple TOOL_LOOP_FIELDS; wrapped to keep ranks in step and count tool errors"),
    Seam(_T, "_generate_single_turn", "method", ("prompt_ids", "images", "multimodal_fields", "num_generations",
                                                 "has_tool_images"),
         "returns (completion_ids, logprobs); called once per tool iteration, padded for rank alignment"),
    Seam(_T, "_compute_loss", "method", ("model", "inputs"), "returns the scalar loss; rescaled to live rows"),
    Seam(_T, "_prepare_inputs", "method", ("generation_batch",),
         "returns one micro-batch dict from the buffered generation batch; its pixel_values move to the GPU here"),
    # private attributes read (checked on a built trainer and in the source)
    Seam(_T, "_tokenizer", "attribute", why="pad/eos ids of the text tokenizer"),
    Seam(_T, "_metrics", "attribute", why="{'train'|'eval': defaultdict(list)}: minio3/* metrics"),
    Seam(_T, "_environment_pool", "attribute", why="{name: [env instances]}: budget check at __init__"),
    Seam(_T, "_sync_tool_dicts", "attribute", why="per-rollout {tool name: callable}: tool error counting"),
    Seam(_T, "_async_tool_dicts", "attribute", why="per-rollout {tool name: coroutine fn}: tool error counting"),
    Seam(_T, "environments", "attribute", why="per-rollout environment instances of the batch"),
    Seam(_T, "eos_token_ids", "attribute", why="end-of-turn ids: a completion not ending in one was truncated"),
    Seam(_T, "max_tool_calling_iterations", "attribute", why="tool-round cap (turn_limit)"),
    Seam(_T, "reward_func_names", "attribute", why="names in the rewards/<name>/std metrics (one-row std logged as 0)"),
    Seam(_T, "generation_config", "attribute", why="transformers generation settings: idle ranks' dummy turn"),
    Seam(_T, "use_vllm", "attribute"), Seam(_T, "vllm_mode", "attribute"),
    Seam(_T, "_is_vlm", "attribute", why="a VLM: an idle rank's transformers-backend turn carries an image"),
    Seam(_T, "vllm_tensor_parallel_size", "attribute"), Seam(_T, "vllm_generation", "attribute"),
    Seam(_T, "vllm_importance_sampling_correction", "attribute"),
    Seam(_T, "vllm_importance_sampling_mode", "attribute", why="sequence-level IS metrics recomputed on live rows"),
    Seam(_T, "loss_type", "attribute"), Seam(_T, "aux_loss_enabled", "attribute"),
    Seam(_T, "_entropy_bonus_enabled", "attribute", why="row-mean losses cannot be rescaled with an entropy bonus"),
    Seam(_T, "num_generations", "attribute"), Seam(_T, "tools", "attribute"),
    # vLLM backend: the server path gathers every rank's prompts and slices the broadcast result by
    # process_index * len(local prompts); the colocate path calls llm.generate(prompts, sampling_params=, use_tqdm=)
    Seam(_V, "generate", "method", ("prompts", "images", "num_generations", "profiler"),
         "returns the 4-tuple VLLM_GENERATE_FIELDS; server mode slices by process_index * len(prompts)"),
    Seam(_V, "sync_weights", "method", (), "a collective under ZeRO-3 / server mode: every rank must call it"),
    Seam(_C, "generate", "method", ("prompts", "features", "n", "repetition_penalty", "temperature", "top_p",
                                    "top_k", "min_p", "max_tokens", "logprobs", "structured_outputs_regex",
                                    "generation_kwargs"),
         "server request; wrapped on the main process to drop idle ranks' placeholder prompts"),
    Seam("trl.trainer.grpo_trainer", "get_config_model_id", "function", ("config",),
         "names the default output_dir when args=None, as GRPOTrainer does"),
)

GENERATE_FIELDS = ("prompt_ids", "completion_ids", "tool_mask", "completions", "logprobs", "extra_fields",
                   "images", "tool_images")
TOOL_LOOP_FIELDS = ("tool_mask", "completions", "completion_ids", "logprobs", "tool_call_count",
                    "tool_failure_count", "tool_images")
SINGLE_TURN_FIELDS = ("completion_ids", "logprobs")
VLLM_GENERATE_FIELDS = ("prompt_ids", "completion_ids", "logprobs", "logprob_token_ids")
SCORED_KEYS = ("prompt_ids", "completion_ids", "completion_mask", "advantages", "num_items_in_batch")

# How GRPOTrainer._compute_loss normalises each loss_type (TRL 1.16), which decides how masked rows
# (all-zero loss mask) are made exact:
ROW_MEAN_LOSSES = frozenset({"grpo", "sapo", "luspo", "dr_grpo"})
"""Divided by the number of rows (or rows x max_completion_length): masked rows dilute it; rescaled by rows/live rows."""
TOKEN_SUM_LOSSES = frozenset({"dapo", "cispo", "vespo"})
"""Divided by ``num_items_in_batch`` (loss-mask tokens of the generation batch): masked rows add none."""
MICROBATCH_TOKEN_LOSSES = frozenset({"bnpo"})
"""Divided by the loss-mask tokens of the micro-batch: masked rows add none."""
KNOWN_LOSSES = ROW_MEAN_LOSSES | TOKEN_SUM_LOSSES | MICROBATCH_TOKEN_LOSSES


def unpack(value: Any, fields: Sequence[str], where: str) -> tuple:
    """``value`` as a tuple of ``len(fields)``, or :class:`UpstreamChanged` naming the seam."""
    if not isinstance(value, tuple) or len(value) != len(fields):
        got = f"{len(value)}-tuple" if isinstance(value, tuple) else type(value).__name__
        raise UpstreamChanged(
            f"{where} returned a {got}, minio3_ext expects {len(fields)} values {list(fields)} "
            f"(TRL {TRL_SUPPORTED}); see minio3_ext/trl/compat.py"
        )
    return value


def calling_message(messages: Sequence[Any]) -> int:
    """The index, in one rollout's live message list (``completions[i]``, which
    ``GRPOTrainer._tool_call_loop`` receives and extends in place), of the assistant message
    whose tool calls TRL is running now. TRL 1.16 appends that message, runs each of its
    calls in order (``tool(**function["arguments"])``), and appends their tool messages only
    after the last one returned, so it is the last message of the list (checked on a real
    trainer by ``tests/trl/test_trl_compat.py``). ``-1`` when the list does not end with an
    assistant message (not a call of TRL's tool loop)."""
    last = messages[-1] if messages else None
    return len(messages) - 1 if isinstance(last, dict) and last.get("role") == "assistant" else -1


def _resolve(dotted: str) -> Any:
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(dotted)


def check_seams() -> list[str]:
    """Problems with the installed TRL, one line per seam (empty when everything matches)."""
    problems: list[str] = []
    for seam in SEAMS:
        try:
            owner = _resolve(seam.owner)
        except (ImportError, AttributeError) as exc:
            problems.append(f"{seam.owner}: cannot import ({exc})")
            continue
        if seam.kind == "attribute":
            source = inspect.getsource(owner)
            if f"self.{seam.name} =" not in source and f"self.{seam.name}: " not in source:
                problems.append(f"{seam.owner}.{seam.name}: no longer assigned in the class")
            continue
        target = getattr(owner, seam.name, None)
        if not callable(target):
            problems.append(f"{seam.owner}.{seam.name}: missing")
            continue
        params = tuple(p for p in inspect.signature(target).parameters if p != "self")
        if seam.params is not None and params != seam.params:
            problems.append(f"{seam.owner}.{seam.name}: parameters {params}, expected {seam.params}")
    return problems
