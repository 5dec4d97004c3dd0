"""``minio3 smoke``: real training steps of the shipped recipes on this CPU machine.

    minio3 smoke trl --out runs/smoke-trl      # recipes/trl: SFT, then masked GRPO (TRL generation)
    minio3 smoke verl --out runs/smoke-verl    # recipes/verl: SFT, then main_ppo (see docs/smoke.md)

Each runs the recipe's own entry points as subprocesses on the tiny offline Qwen2.5-VL
and synthetic rows, with size and CPU overrides only, and writes ``OUT/metrics.json``
from the libraries' own logs (steps, the last RL step's metrics, whether the weights
changed). Needs a source checkout (the recipes are not part of the wheel). See
docs/smoke.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pathlib

from ._args import HelpFormatter, UserError, check_out_dir


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("smoke", help="run the shipped verl / TRL recipes for a step or two on CPU",
                                   description=__doc__, formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="smoke_command", required=True, metavar="{verl,trl}")
    verl = sub.add_parser("verl", help="coldstart_sft + masked_grpo through verl's entry points (local Ray, gloo)",
                          formatter_class=HelpFormatter)
    verl.add_argument("--out", required=True, help="run folder (metrics.json, logs, checkpoints)")
    verl.add_argument("--python", default=None,
                      help="interpreter of the venv with verl and the vLLM CPU build (default: .venv-vllm/bin/python)")
    verl.set_defaults(func=run, smoke_options=("python",))
    trl = sub.add_parser("trl", help="sft_coldstart + grpo recipe scripts (TRL generation, rule judge)",
                         formatter_class=HelpFormatter)
    trl.add_argument("--out", required=True, help="run folder (metrics.json, logs, checkpoints)")
    trl.set_defaults(func=run, smoke_options=())


def run(args: argparse.Namespace) -> int:
    out = check_out_dir(args.out, "--out")
    try:
        module = importlib.import_module(f"minio3_ext.smoke.{args.smoke_command}")
    except ModuleNotFoundError as e:
        raise UserError(f"cannot import the {args.smoke_command} smoke: {e}") from None
    options = {name: getattr(args, name) for name in args.smoke_options}
    try:
        metrics = module.run(pathlib.Path(out), **options)
    except RuntimeError as e:  # a stage failed: its message names the stage and its log file
        if os.environ.get("MINIO3_DEBUG"):
            raise
        raise UserError(str(e), exit_code=1) from None
    summary = {k: v for k, v in metrics.items() if k.endswith((".steps", ".weights_changed"))}
    print(json.dumps(summary))
    print(f"wrote {pathlib.Path(out) / 'metrics.json'}")
    unchanged = [k for k, v in summary.items() if k.endswith(".weights_changed") and not v]
    if unchanged:
        raise UserError(f"{', '.join(unchanged)} is false: the RL step did not change the weights "
                        f"(see {pathlib.Path(out) / 'metrics.json'})", exit_code=1)
    return 0
