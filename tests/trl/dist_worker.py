"""One rank of a two-process (gloo, CPU) GRPO run through TRL's vLLM paths; see test_multiprocess.py.

    python tests/trl/dist_worker.py MODEL_DIR OUT_DIR {masked|stock} {server|colocate|colocate_tp2|transformers}

Only the vLLM engine is scripted (``VLLMGeneration._init_vllm`` installs a scripted
server client or colocated ``LLM``); TRL's ``VLLMGeneration.generate``/``sync_weights``,
tool loop, scoring and loss run unchanged. The script answers by prompt content:

- "alpha" rollouts (both on one rank) call ``lookup`` at every turn up to three times;
- "beta" rollouts (the other rank): the first calls ``lookup`` once then answers, the
  second answers at once.

So in tool iteration 1 the ranks send 2 and 1 prompts (server mode: TRL's
``process_index * len(prompts)`` slice hands the "beta" rank an "alpha" continuation),
and in iteration 2 the "beta" rank has nothing left to generate while the "alpha" rank
enters a generation holding a collective (server: gather/broadcast; colocate + sleep
mode: the weight sync, whose ``wake_up`` does an all-reduce standing in for ZeRO-3's
parameter gather; transformers: no vLLM, the model's ``generate`` does an all-reduce standing in
for ZeRO-3's parameter gathering) — stock TRL deadlocks there. ``colocate_tp2``: one vLLM
engine shared by both ranks (TP 2), results sliced by ``rank_in_group * len(prompts)``.
"""

from __future__ import annotations

import faulthandler
import json
import os
import re
import signal
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.distributed as dist

ANSWER = re.compile(r"<answer>(\w+)</answer>")


def lookup(key: str) -> str:
    """Look a word up in the dictionary.

    Args:
        key: The word to look up.

    Returns:
        Its definition.
    """
    return f"{key}: a word"


class Script:
    """Decides each continuation from the prompt text (shared by the server and colocate fakes)."""

    def __init__(self, tokenizer, im_end: int):
        self.tok, self.im_end, self.calls = tokenizer, im_end, []

    def continuation(self, prompt_ids: list[int], variant: int) -> list[int]:
        text = self.tok.decode(prompt_ids)
        rounds = text.count("<tool_response>")
        keys = re.findall(r'"key": "(\w+)"', text.split("<|im_start|>assistant", 1)[-1])
        who = "alpha" if "Define alpha" in text else "beta"
        me = keys[0] if keys else f"{who}{variant}"
        if rounds == 0 and not (who == "beta" and variant == 1):
            out = f'<tool_call>\n{{"name": "lookup", "arguments": {{"key": "{me}"}}}}\n</tool_call>'
        elif who == "alpha" and rounds < 3:
            out = f'<tool_call>\n{{"name": "lookup", "arguments": {{"key": "{me}"}}}}\n</tool_call>'
        else:
            out = f"<answer>{me}</answer>"
        return self.tok(out, add_special_tokens=False)["input_ids"] + [self.im_end]


class ScriptedServer:
    """Stands in for ``VLLMClient`` (main process only)."""

    def __init__(self, script: Script):
        self.script, self.requests = script, []

    def generate(self, prompts, features=None, n=1, **kwargs):
        self.requests.append([list(p) for p in prompts])
        completions = [self.script.continuation(p, j) for p in prompts for j in range(n)]
        return {"prompt_ids": [list(p) for p in prompts], "completion_ids": completions,
                "logprobs": [[[-1.0] for _ in c] for c in completions],
                "logprob_token_ids": [[[t] for t in c] for c in completions]}

    def get_server_info(self):
        return {"model_config": {"logprobs_mode": "processed_logprobs"}}

    def image_features(self, images):  # text-only run
        return [None for _ in images]

    def update_named_params(self, metadata, params):
        for _ in params:
            pass

    def reset_prefix_cache(self):
        pass


class SamplingParams(SimpleNamespace):
    """vLLM's ``SamplingParams`` as TRL builds it (keyword arguments only)."""


class ScriptedLLM:
    """Stands in for a colocated ``vllm.LLM`` with sleep mode."""

    def __init__(self, script: Script, progress: Path):
        self.script, self.generations, self.syncs, self.progress = script, [], 0, progress
        runner = SimpleNamespace(model=SimpleNamespace(load_weights=lambda weights: None))
        self.llm_engine = SimpleNamespace(model_config=SimpleNamespace(max_model_len=4096),
                                          model_executor=SimpleNamespace(driver_worker=SimpleNamespace(model_runner=runner)))

    def sleep(self, level=1):
        pass

    def wake_up(self, tags=None):
        if tags == ["weights"]:  # the weight sync under ZeRO-3 gathers every shard: a collective
            self.syncs += 1
            with self.progress.open("a") as f:
                f.write("sync\n")
            dist.all_reduce(torch.ones(1))

    def reset_prefix_cache(self):
        pass

    def generate(self, prompts, sampling_params=None, use_tqdm=False):
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(prompts)
        self.generations.append([(list(p["prompt_token_ids"]), sp.max_tokens) for p, sp in zip(prompts, params)])
        with self.progress.open("a") as f:  # how far this rank got, readable after a deadlock
            f.write(f"generate {len(prompts)}\n")
        seen: dict[tuple, int] = {}
        outs = []
        for p, sp in zip(prompts, params):
            key = tuple(p["prompt_token_ids"])
            variant = seen.get(key, 0)
            seen[key] = variant + 1
            ids = self.script.continuation(p["prompt_token_ids"], variant)[: sp.max_tokens]
            lps = [{t: SimpleNamespace(rank=1, logprob=-1.0)} for t in ids]
            outs.append(SimpleNamespace(prompt_token_ids=list(p["prompt_token_ids"]),
                                        outputs=[SimpleNamespace(token_ids=ids, logprobs=lps)]))
        return outs


class ScriptedGenerate:
    """Stands in for ``model.generate`` (TRL's transformers backend): left-padded ids in, prompt + continuation out."""

    def __init__(self, script: Script, pad: int, progress: Path):
        self.script, self.pad, self.progress, self.max_new_tokens = script, pad, progress, []

    def __call__(self, input_ids, attention_mask, generation_config=None, **kwargs):
        with self.progress.open("a") as f:
            f.write("sync\n")
        dist.all_reduce(torch.ones(1))  # ZeRO-3 gathers parameters around every generation: a collective
        limit = generation_config.max_new_tokens
        self.max_new_tokens.append(limit)
        seen: dict[tuple, int] = {}
        rows = []
        for ids, mask in zip(input_ids.tolist(), attention_mask.tolist()):
            prompt = [t for t, m in zip(ids, mask) if m]
            variant = seen.get(tuple(prompt), 0)
            seen[tuple(prompt)] = variant + 1
            rows.append(self.script.continuation(prompt, variant)[:limit])
        width = max(len(r) for r in rows)
        new = torch.tensor([r + [self.pad] * (width - len(r)) for r in rows], dtype=input_ids.dtype)
        with self.progress.open("a") as f:
            f.write(f"generate {len(rows)}\n")
        return torch.cat([input_ids, new], dim=1)


def main() -> None:
    model_dir, out_dir, kind, mode = sys.argv[1:5]
    # SIGUSR1 appends every thread's stack to stack<RANK>.txt: the parent reads where a rank is
    # blocked (test_multiprocess.py detects the stock trainer's deadlock so, without a timeout)
    stacks = Path(out_dir, f"stack{os.environ['RANK']}.txt").open("w")
    faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=True)
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer
    from trl.generation import vllm_generation

    from minio3_ext.testing import load_tiny_qwen
    from minio3_ext.trl import MaskedGRPOConfig, MaskedGRPOTrainer

    model, processor = load_tiny_qwen(model_dir)
    tok = processor.tokenizer
    script = Script(tok, tok.convert_tokens_to_ids("<|im_end|>"))
    fakes = {}

    def scripted_init(self):
        if self.tensor_parallel_size > 1:
            self.tp_group, _ = dist.new_subgroups_by_enumeration([[0, 1]])
        if self.mode == "server":
            if self.accelerator.is_main_process:
                self.vllm_client = fakes["engine"] = ScriptedServer(script)
        else:
            progress = Path(out_dir, f"progress{self.accelerator.process_index}.txt")
            self.llm = fakes["engine"] = ScriptedLLM(script, progress)
            if self.enable_sleep_mode:
                self.llm.sleep(level=2)
            self._llm_weights_sleeping = self.enable_sleep_mode
        self.accelerator.wait_for_everyone()

    vllm_generation.VLLMGeneration._init_vllm = scripted_init
    vllm_generation.SamplingParams = SamplingParams
    vllm = dict(use_vllm=True, vllm_mode=mode, vllm_enable_sleep_mode=mode == "colocate")
    if mode == "colocate_tp2":
        vllm = dict(use_vllm=True, vllm_mode="colocate", vllm_tensor_parallel_size=2)
    elif mode == "transformers":
        vllm = dict(use_vllm=False)
        rank = int(os.environ["RANK"])
        model.generate = fakes["engine"] = ScriptedGenerate(script, tok.pad_token_id,
                                                            Path(out_dir, f"progress{rank}.txt"))
    common = dict(output_dir=str(Path(out_dir) / "run"), num_generations=2, per_device_train_batch_size=2,
                  max_steps=1, max_completion_length=256, report_to=[], use_cpu=True, save_strategy="no",
                  logging_steps=1, learning_rate=1e-2, seed=0, shuffle_dataset=False, **vllm)
    if kind == "masked":
        trainer_cls, args = MaskedGRPOTrainer, MaskedGRPOConfig(max_turns=4, **common)
    else:
        trainer_cls, args = GRPOTrainer, GRPOConfig(max_tool_calling_iterations=3, **common)

    def reward(completions, **kwargs):
        return [float(bool(ANSWER.search(str(c)))) for c in completions]

    data = Dataset.from_list([{"prompt": [{"role": "user", "content": f"Define {w}."}]} for w in ("alpha", "beta")])
    trainer = trainer_cls(model, reward_funcs=[reward], args=args, processing_class=processor, tools=[lookup],
                          train_dataset=data)
    rollouts = []
    generate = trainer._generate

    def recording_generate(prompts):
        result = generate(prompts)
        rollouts.extend({"prompt": p[-1]["content"], "messages": c} for p, c in zip(prompts, result[3]))
        return result

    trainer._generate = recording_generate
    trainer.train()
    rank = trainer.accelerator.process_index
    engine = fakes.get("engine")
    report = {
        "rank": rank,
        "rollouts": [{"prompt": r["prompt"], "answers": ANSWER.findall(json.dumps(r["messages"])),
                      "keys": [call["function"]["arguments"].get("key") for m in r["messages"]
                               for call in (m.get("tool_calls") or [])]} for r in rollouts],
        "log": trainer.state.log_history[0],
        "requests": getattr(engine, "requests", None),
        "generations": getattr(engine, "generations", None),
        "syncs": getattr(engine, "syncs", None),
        "max_new_tokens": getattr(engine, "max_new_tokens", None),
        "placeholder": [tok.eos_token_id],
    }
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(report, default=str))


if __name__ == "__main__":
    main()
