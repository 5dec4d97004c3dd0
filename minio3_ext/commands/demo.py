"""``minio3 demo``: the whole Mini-o3 recipe on CPU in a few minutes, offline.

    minio3 demo                      # full run into runs/demo-<time>/ (≤ 5 min on 2 cores)
    minio3 demo --out runs/mine --quick

Synthetic data → tiny Qwen2.5-VL → cold-start SFT (TRL) → masked GRPO with the zoom
environment (TRL) → evaluation at turn budgets 1, 2, 4, 8 → ``metrics.json``,
``accuracy_vs_budget.png`` and ``trajectories.html`` in the run folder. See
:mod:`minio3_ext.demo`.
"""

from __future__ import annotations

import argparse
import time

from ._args import HelpFormatter, UserError, check_out_dir, int_range


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the full pipeline (SFT → masked GRPO → eval → report) on a tiny model, CPU, offline",
        description="Synthesise data, cold-start SFT and masked-GRPO a tiny offline Qwen2.5-VL, evaluate at "
                    "turn budgets 1/2/4/8, and write metrics.json, accuracy_vs_budget.png, trajectories.html.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--out", default=None, help="run folder (default runs/demo-<timestamp>)")
    parser.add_argument("--quick", action="store_true", help="shortened setting for CI (~1 minute)")
    parser.add_argument("--seed", type=int_range(0, 2**32 - 1), default=None, help="random seed (default 0)")
    parser.add_argument("--grpo-steps", type=int_range(0, 100_000), default=None,
                        help="masked-GRPO steps (default 8; quick 1)")
    parser.add_argument("--threads", type=int_range(1, 1024), default=None, help="torch CPU threads (default 2)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from minio3_ext.demo import QUICK, DemoConfig, run_demo

    cfg = QUICK if args.quick else DemoConfig()
    overrides = {k: v for k, v in (("seed", args.seed), ("grpo_steps", args.grpo_steps), ("threads", args.threads)) if v is not None}
    try:
        cfg = replace(cfg, **overrides)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    out = check_out_dir(args.out or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}", "--out")
    try:
        paths = run_demo(out, cfg)
    except KeyboardInterrupt:
        raise UserError(f"interrupted; the partial run is in {out} (rerun to start again)", exit_code=130) from None
    print(f"metrics: {paths['metrics']}\nplot:    {paths['png']}\nhtml:    {paths['html']}")
    return 0
