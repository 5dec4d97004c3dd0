"""``MaskedGRPOTrainer``: TRL's ``GRPOTrainer`` with Mini-o3 over-turn masking.

Swap the estimator by changing the import and the two class names where they are used::

    from minio3_ext.trl import MaskedGRPOConfig, MaskedGRPOTrainer   # was: from trl import GRPOConfig, GRPOTrainer
    args = MaskedGRPOConfig(...)                                     # was: GRPOConfig(...), same fields
    trainer = MaskedGRPOTrainer(model, reward_funcs, args=args, ...)  # was: GRPOTrainer(...), same arguments

(or alias them: ``from minio3_ext.trl import MaskedGRPOConfig as GRPOConfig, MaskedGRPOTrainer as
GRPOTrainer``, one changed line). Every ``GRPOConfig`` default is kept, the tool-round limit
included (none); set ``max_turns`` for the paper's 6.

Each override calls TRL first; every TRL internal it touches is listed in
:mod:`minio3_ext.trl.compat`.

- ``_generate``: after TRL's rollout (and tool loop), classify every trajectory
  (:func:`~minio3_ext.trl.termination.rollout_record`), log ``minio3/...`` metrics, and
  zero the ``tool_mask`` row of each masked trajectory. TRL multiplies that mask into
  the loss mask *and* derives ``num_items_in_batch`` (the ``dapo`` normaliser) from it,
  so masked rows contribute no loss tokens and no normaliser tokens. Training only:
  evaluation scores every rollout as GRPOTrainer does.
- ``_calculate_rewards``: mark masked rows' rewards NaN. TRL already treats an all-NaN
  row as unscorable: it is left out of the group mean/std and its advantage is 0,
  which is exactly :func:`minio3_ext.core.masking.masked_group_advantages`.
- ``_generate_and_score_completions``: only with ``include_masked_in_stats`` (the
  released code's choice), zero masked rows' advantages after TRL normalised them
  with the masked rows inside the group statistics; sequence-level importance-sampling
  metrics recomputed over live rows.
- ``_compute_loss``: row-normalised loss types (``grpo``, ``sapo``, ``luspo``,
  ``dr_grpo``) rescaled by rows / live rows of the generation batch (unless
  ``rescale_row_losses=False``).
- TRL logs the sample std of a single scorable reward as NaN (``None`` in the logs);
  masking often leaves one live row, whose spread ``reward_std`` / ``rewards/*/std`` log as 0.
- ``_generate_and_score_completions`` / ``_prepare_inputs`` (``offload_buffered_pixels``):
  the buffered generation batch keeps its ``pixel_values`` in host memory in the vision
  tower's dtype; each micro-batch's share moves to the GPU when it trains.
- ``_tool_call_loop`` / ``_generate_single_turn``: ranks stay in step. TRL runs one
  generation per tool iteration only on a rank that still has rollouts calling tools;
  every such generation may hold a collective (weight sync under ZeRO-3 with colocated
  vLLM in sleep mode, the server-mode gather/broadcast, ZeRO-3 parameter gathering).
  Here every rank takes part in every iteration: an all-gather of "rollouts still
  calling tools" precedes each one, and a rank with none makes a one-token placeholder
  generation through the same backend. Under vLLM server mode and colocate TP>1 the
  per-rank prompt lists are padded to the same length, so TRL's slice
  ``process_index * len(prompts)`` hands every rank its own continuations.

With ``mask_overturn=False`` nothing is changed: the numbers are stock GRPOTrainer's.
TRL's ``reward``/``rewards/*`` metrics then cover the live rows only; the masked share
is logged as ``minio3/masked_share``.
"""

from __future__ import annotations

import copy
import functools
import math
from typing import Any

import torch
from trl import GRPOTrainer

from ..core.episode import TERMINATION_REASONS
from . import compat
from .config import MaskedGRPOConfig
from .environment import bind_conversations
from .rewards import propagate_unscorable
from .termination import rollout_record

__all__ = ["MaskedGRPOTrainer"]

ROW_SCALE_KEY = "minio3_row_scale"
"""0-d tensor carried with a training generation batch: rows / live rows (row-normalised loss types)."""


class MaskedGRPOTrainer(GRPOTrainer):
    """GRPO whose over-turn trajectories leave the policy gradient. Use with :class:`MaskedGRPOConfig`."""

    _tag_names = ["trl", "grpo", "minio3", "masked-grpo"]

    def __init__(self, model, reward_funcs=None, args: MaskedGRPOConfig | None = None, *more, **kwargs):
        if args is None:  # as GRPOTrainer does, with this trainer's config class
            from trl.trainer.grpo_trainer import get_config_model_id

            name = model if isinstance(model, str) else get_config_model_id(model.config)
            args = MaskedGRPOConfig(f"{name.split('/')[-1]}-GRPO")
        if not isinstance(args, MaskedGRPOConfig):
            raise TypeError(f"MaskedGRPOTrainer needs args=MaskedGRPOConfig(...) (or None), got {type(args).__name__}")
        # set before TRL's __init__: it may call overridden methods
        self._masked_reasons = frozenset(args.masked_reasons)
        self._live_local: torch.Tensor | None = None
        self._live_global: torch.Tensor | None = None
        self._masking_active = False
        self._row_scale = 1.0
        self._in_tool_loop = False
        self._tool_errors: list[int] | None = None
        super().__init__(model, reward_funcs, args, *more, **kwargs)
        if (self.args.mask_overturn and self.args.rescale_row_losses and self.loss_type in compat.ROW_MEAN_LOSSES
                and self.aux_loss_enabled):
            raise ValueError(
                f"MaskedGRPOTrainer: loss_type={self.loss_type!r} is rescaled to live rows, which would rescale the "
                "MoE router auxiliary loss too; use loss_type='dapo' (or router_aux_loss_coef=0)"
            )
        self._check_environment_budgets()
        self._placeholder = [self._tokenizer.eos_token_id]  # a prompt no chat template ever produces
        if self.use_vllm:
            self._install_placeholder_filters()

    def _check_environment_budgets(self) -> None:
        """An environment episode config must agree with the trainer's turn budget (TRL's tool
        loop is capped by it). The image budget has one source: ``EpisodeConfig.max_images``."""
        for pool in (getattr(self, "_environment_pool", None) or {}).values():
            config = getattr(pool[0], "config", None)
            if config is None or not hasattr(config, "max_turns"):
                continue
            if self.args.max_turns is None:
                raise ValueError(
                    f"MaskedGRPOTrainer: the environment's EpisodeConfig.max_turns={config.max_turns} needs the same "
                    f"turn limit on the trainer, which has none (TRL's default); set MaskedGRPOConfig.max_turns="
                    f"{config.max_turns}"
                )
            if config.max_turns != self.args.max_turns:
                raise ValueError(
                    f"MaskedGRPOTrainer: environment EpisodeConfig.max_turns={config.max_turns} differs from "
                    f"MaskedGRPOConfig.max_turns={self.args.max_turns}; set both to the same budget"
                )

    # -- ranks in step through TRL's tool loop ---------------------------------------------
    def _lockstep(self) -> bool:
        return self._in_tool_loop and self.accelerator.num_processes > 1

    def _aligned_backend(self) -> bool:
        """Backends that slice a rank's results out of every rank's prompts by ``process_index * len``."""
        return bool(self.use_vllm and (self.vllm_mode == "server" or self.vllm_tensor_parallel_size > 1))

    def _tool_call_loop(self, prompts, prompt_ids, completion_ids, completions, logprobs, images, multimodal_fields):
        # one turn per assistant message: each zoom environment gets its rollout's live messages (TRL's `completions`)
        bind_conversations(self.environments, completions)
        errors = [0] * len(prompts)
        originals = self._count_tool_errors(errors)
        self._in_tool_loop = True
        try:
            result = compat.unpack(
                super()._tool_call_loop(prompts, prompt_ids, completion_ids, completions, logprobs, images,
                                        multimodal_fields),
                compat.TOOL_LOOP_FIELDS, "GRPOTrainer._tool_call_loop")
            if self._lockstep():  # this rank is done: take part in the other ranks' iterations until all are
                while self._lockstep_turn([], None, {}, False) is not None:
                    pass
        finally:
            self._in_tool_loop = False
            self._sync_tool_dicts, self._async_tool_dicts = originals
        for i, messages in enumerate(result[1]):
            errors[i] += self._unrunnable_calls(messages, originals[0][i], originals[1][i])
        self._tool_errors = errors
        return result

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        if not self._lockstep():
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                 has_tool_images)
        return self._lockstep_turn(prompt_ids, images, multimodal_fields, has_tool_images)

    def _lockstep_turn(self, prompt_ids, images, multimodal_fields, has_tool_images):
        """One tool-loop generation every rank joins; ``None`` once no rank has rollouts calling tools."""
        n = len(prompt_ids)
        counts = self.accelerator.gather(torch.tensor([n], device=self.accelerator.device))
        width = int(counts.max().item())
        if width == 0:
            return None
        pad = width - n if self._aligned_backend() else (0 if n else 1)
        generation_config = getattr(self, "generation_config", None)
        if pad:
            prompt_ids = list(prompt_ids) + [list(self._placeholder) for _ in range(pad)]
            if images is not None:
                images = list(images) + [None] * pad
            if n == 0:
                multimodal_fields, has_tool_images = {}, False
                if not self.use_vllm and self._is_vlm:  # transformers backend: the idle rank runs the vision tower too
                    prompt_ids, multimodal_fields = self._vision_placeholder()
                    images, has_tool_images = None, True
                if generation_config is not None:  # transformers backend: one new token is enough
                    self.generation_config = copy.copy(generation_config)
                    self.generation_config.max_new_tokens = 1
        try:
            ids, logprobs = compat.unpack(
                super()._generate_single_turn(prompt_ids, images, multimodal_fields, 1, has_tool_images),
                compat.SINGLE_TURN_FIELDS, "GRPOTrainer._generate_single_turn")
        finally:
            if generation_config is not None:
                self.generation_config = generation_config
        return list(ids[:n]), (list(logprobs[:n]) if logprobs is not None else None)

    def _vision_placeholder(self) -> tuple[list[list[int]], dict[str, Any]]:
        """An idle rank's turn for the transformers backend: one blank image at the smallest
        grid. Under FSDP (vision blocks wrapped as their own units) or ZeRO-3 without
        ``ds3_gather_for_generation``, every module's forward is a parameter all-gather:
        a rank whose prompt has no image would skip the vision tower's and pair its
        language-model gathers with the others' vision gathers (a collective mismatch,
        a hang on NCCL). With an image every rank runs the same modules in the prefill;
        ``synced_gpus`` (set by transformers under FSDP/ZeRO-3) aligns the decode steps."""
        if getattr(self, "_vision_turn", None) is None:
            from PIL import Image

            processor = self.processing_class
            text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}]}],
                                                 add_generation_prompt=True, tokenize=False)
            side = 2 * getattr(getattr(processor, "image_processor", None), "patch_size", 14)
            encoded = processor(text=[text], images=[Image.new("RGB", (side, side))], return_tensors="pt")
            fields = {k: v for k, v in encoded.items()
                      if k not in ("input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids")}
            self._vision_turn = ([encoded["input_ids"][0].tolist()], fields)  # TRL rebuilds the token type ids
        ids, fields = self._vision_turn
        return [list(ids[0])], dict(fields)

    def _is_placeholder(self, ids) -> bool:
        return list(ids) == self._placeholder

    def _install_placeholder_filters(self) -> None:
        """Keep placeholder prompts from costing a real generation in the vLLM backend."""
        backend = self.vllm_generation
        if self.vllm_mode == "server" and self.accelerator.is_main_process:
            client = backend.vllm_client
            client.generate = functools.partial(self._server_generate_without_placeholders, client.generate)
        elif self.vllm_mode == "colocate":
            llm = backend.llm
            llm.generate = functools.partial(self._colocate_generate_short_placeholders, llm.generate)

    def _server_generate_without_placeholders(self, generate, prompts, features=None, n=1, **kwargs):
        keep = [i for i, p in enumerate(prompts) if not self._is_placeholder(p)]
        if len(keep) == len(prompts):
            return generate(prompts=prompts, features=features, n=n, **kwargs)
        out = generate(prompts=[prompts[i] for i in keep], features=[features[i] for i in keep] if features else None,
                       n=n, **kwargs) if keep else {}
        where = {i: k for k, i in enumerate(keep)}
        merged: dict[str, Any] = {"prompt_ids": [], "completion_ids": [], "logprobs": [], "logprob_token_ids": []}
        for key in merged:
            values = out.get(key)
            if key != "prompt_ids" and keep and values is None:
                merged[key] = None
                continue
            for i, prompt in enumerate(prompts):
                if key == "prompt_ids":
                    merged[key].append(values[where[i]] if i in where else list(prompt))
                elif merged[key] is not None:
                    merged[key].extend(values[where[i] * n:(where[i] + 1) * n] if i in where else [[] for _ in range(n)])
        return merged

    def _colocate_generate_short_placeholders(self, generate, prompts, sampling_params=None, **kwargs):
        if sampling_params is None or not any(self._is_placeholder(p["prompt_token_ids"]) for p in prompts):
            return generate(prompts, sampling_params=sampling_params, **kwargs)
        short = sampling_params.clone() if hasattr(sampling_params, "clone") else copy.copy(sampling_params)
        short.max_tokens = 1  # vLLM takes one SamplingParams per prompt
        per_prompt = [short if self._is_placeholder(p["prompt_token_ids"]) else sampling_params for p in prompts]
        return generate(prompts, sampling_params=per_prompt, **kwargs)

    # -- tool errors, counted where they happen (not by reading the error text) -----------
    def _count_tool_errors(self, errors: list[int]):
        originals = (self._sync_tool_dicts, self._async_tool_dicts)

        def sync_counted(i, fn):
            @functools.wraps(fn)
            def call(*a, **kw):
                try:
                    return fn(*a, **kw)
                except Exception:
                    errors[i] += 1
                    raise
            return call

        def async_counted(i, fn):
            @functools.wraps(fn)
            async def call(*a, **kw):
                try:
                    return await fn(*a, **kw)
                except Exception:
                    errors[i] += 1
                    raise
            return call

        self._sync_tool_dicts = [{k: sync_counted(i, f) for k, f in d.items()} for i, d in enumerate(originals[0])]
        self._async_tool_dicts = [{k: async_counted(i, f) for k, f in d.items()} for i, d in enumerate(originals[1])]
        return originals

    @staticmethod
    def _unrunnable_calls(messages, sync_tools: dict, async_tools: dict) -> int:
        """Executed tool calls TRL could not even start (unknown name, unsupported type)."""
        if isinstance(messages, str):
            return 0
        bad = 0
        for m, nxt in zip(messages, messages[1:]):
            if m.get("role") == "assistant" and m.get("tool_calls") and nxt.get("role") == "tool":
                for call in m["tool_calls"]:
                    name = (call.get("function") or {}).get("name")
                    if call.get("type") != "function" or (name not in sync_tools and name not in async_tools):
                        bad += 1
        return bad

    # -- rollout: classify, log, cut masked rows out of the loss mask ----------------
    def _generate(self, prompts: list):
        self._tool_errors = None
        (prompt_ids, completion_ids, tool_mask, completions, logprobs,
         extra_fields, images, tool_images) = compat.unpack(super()._generate(prompts), compat.GENERATE_FIELDS,
                                                            "GRPOTrainer._generate")
        device = self.accelerator.device
        mode = "train" if self.model.training else "eval"
        stop_ids = {*self.eos_token_ids, self._tokenizer.pad_token_id}
        environments = self.environments or [None] * len(completion_ids)
        errors = self._tool_errors or [0] * len(completion_ids)
        records = [
            rollout_record(messages, truncated=not ids or ids[-1] not in stop_ids,
                           max_tool_rounds=self.max_tool_calling_iterations, environment=env, tool_errors=err)
            for messages, ids, env, err in zip(completions, completion_ids, environments, errors, strict=True)
        ]
        local = torch.tensor(
            [[TERMINATION_REASONS.index(r["reason"]), r["turns"], r["zooms"], r["invalid_actions"]] for r in records],
            dtype=torch.float32, device=device,
        )
        stats = self.accelerator.gather(local)
        reason_idx = stats[:, 0].long()
        masked_reasons = set(self._masked_reasons)
        if not self.tools and not self.args.mask_plain_truncation:
            masked_reasons.clear()  # no tool loop: score every completion as GRPOTrainer does
        masked_idx = [TERMINATION_REASONS.index(r) for r in sorted(masked_reasons)]
        masked_global = torch.isin(reason_idx, torch.tensor(masked_idx, dtype=torch.long, device=device))
        masked_share = masked_global.float().mean().item()
        guard = self.args.max_masked_share is not None and masked_share > self.args.max_masked_share
        self._masking_active = bool(self.args.mask_overturn and not guard and mode == "train")
        self._live_global = ~masked_global
        start = self.accelerator.process_index * len(completion_ids)
        self._live_local = self._live_global[start:start + len(completion_ids)]
        live_rows = int(self._live_global.sum().item())
        self._row_scale = len(masked_global) / live_rows if self._masking_active and live_rows else 1.0

        metrics = self._metrics[mode]
        for i, reason in enumerate(TERMINATION_REASONS):
            metrics[f"minio3/termination/{reason}"].append((reason_idx == i).float().mean().item())
        metrics["minio3/masked_share"].append(masked_share)
        metrics["minio3/turns_mean"].append(stats[:, 1].mean().item())
        metrics["minio3/zooms_mean"].append(stats[:, 2].mean().item())
        metrics["minio3/invalid_actions_mean"].append(stats[:, 3].mean().item())
        if self.args.max_masked_share is not None:
            metrics["minio3/guard_active"].append(float(guard))

        if self._masking_active and not bool(self._live_local.all()):
            if tool_mask is None:
                tool_mask = [[1] * len(ids) for ids in completion_ids]
            tool_mask = [
                row if live else [0] * len(row) for row, live in zip(tool_mask, self._live_local.tolist(), strict=True)
            ]
        return prompt_ids, completion_ids, tool_mask, completions, logprobs, extra_fields, images, tool_images

    # -- baseline: masked rows become "unscorable" for TRL's nan-aware statistics -------
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        # a required reward (the judge) that could not score a row makes the whole row unscorable
        rewards_per_func = propagate_unscorable(rewards_per_func, self.reward_funcs)
        if self._masking_active and not self.args.include_masked_in_stats:
            rewards_per_func[~self._live_global.to(rewards_per_func.device)] = torch.nan
        return rewards_per_func

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        self._single_reward_stds()
        missing = [k for k in compat.SCORED_KEYS if k not in output]
        if missing:
            raise compat.UpstreamChanged(f"GRPOTrainer._generate_and_score_completions: no {missing} in its output; "
                                         "see minio3_ext/trl/compat.py")
        if self._masking_active:
            live = self._live_local.to(output["advantages"].device)
            if self.args.include_masked_in_stats:
                # released-code variant: the whole group was the baseline, so every live row keeps its advantage
                # (a lone live row too, as in the core reference)
                output["advantages"] = output["advantages"] * live.to(output["advantages"].dtype)
            output[ROW_SCALE_KEY] = torch.tensor(self._row_scale, dtype=torch.float32, device=live.device)
            if "importance_sampling_ratio" in output:
                self._live_is_metrics(output["importance_sampling_ratio"], live)
        if self.args.offload_buffered_pixels and self.model.training and "pixel_values" in output:
            output["pixel_values"] = self._host_pixels(output["pixel_values"])
        return output

    def _single_reward_stds(self) -> None:
        """The std TRL just logged is NaN exactly when its mean is finite from one scorable reward
        (Bessel's correction of one value): that one value's spread is 0."""
        metrics = self._metrics["train" if self.model.training else "eval"]
        pairs = [("reward", "reward_std")] + [(f"rewards/{n}/mean", f"rewards/{n}/std") for n in self.reward_func_names]
        for mean_key, std_key in pairs:
            means, stds = metrics.get(mean_key), metrics.get(std_key)
            if means and stds and math.isnan(stds[-1]) and not math.isnan(means[-1]):
                stds[-1] = 0.0

    # -- the buffered generation batch keeps its pixels in host memory ---------------------
    def _vision_dtype(self) -> torch.dtype | None:
        if not hasattr(self, "_vision_dtype_cache"):
            model = self.accelerator.unwrap_model(self.model)
            dtypes = {p.dtype for n, p in model.named_parameters() if "visual" in n or "vision" in n}
            self._vision_dtype_cache = dtypes.pop() if len(dtypes) == 1 else None
        return self._vision_dtype_cache

    def _host_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        dtype = self._vision_dtype()
        if dtype is None or not pixels.is_floating_point() or dtype.itemsize > pixels.dtype.itemsize:
            dtype = pixels.dtype  # only ever narrow to what the vision tower computes in
        host = pixels.to("cpu", dtype=dtype)
        return host.pin_memory() if torch.cuda.is_available() else host

    def _prepare_inputs(self, generation_batch):
        inputs = super()._prepare_inputs(generation_batch)
        pixels = inputs.get("pixel_values") if isinstance(inputs, dict) else None
        if isinstance(pixels, torch.Tensor) and pixels.device != self.accelerator.device:
            inputs = {**inputs, "pixel_values": pixels.to(self.accelerator.device, non_blocking=True)}
        return inputs

    def _live_is_metrics(self, ratio: torch.Tensor, live: torch.Tensor) -> None:
        """Sequence-level IS metrics over live rows (TRL's flatten() counts masked rows' ratio 1)."""
        if self.vllm_importance_sampling_mode not in ("sequence_mask", "sequence_truncate"):
            return  # token-level metrics already select loss-mask tokens, which masked rows have none of
        flat = ratio[live.bool()].flatten()
        device = ratio.device
        empty = torch.tensor(float("nan"), device=device)
        lo = self.accelerator.gather(flat.min() if flat.numel() else empty)
        mean = self.accelerator.gather(flat.mean() if flat.numel() else empty)
        hi = self.accelerator.gather(flat.max() if flat.numel() else empty)
        metrics = self._metrics["train"]
        for key, value in (("min", torch.nan_to_num(lo, nan=float("inf")).min()), ("mean", mean.nanmean()),
                           ("max", torch.nan_to_num(hi, nan=float("-inf")).max())):
            name = f"sampling/importance_sampling_ratio/{key}"
            if metrics.get(name):
                metrics[name][-1] = value.item() if torch.isfinite(value) else 0.0

    # -- loss: row-normalised loss types rescaled to the live rows ----------------------
    def _compute_loss(self, model, inputs):
        loss = super()._compute_loss(model, inputs)
        scale = inputs.get(ROW_SCALE_KEY)
        if (scale is not None and self.model.training and self.args.rescale_row_losses
                and self.loss_type in compat.ROW_MEAN_LOSSES):
            loss = loss * scale.to(loss.dtype)
        return loss

