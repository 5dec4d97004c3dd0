"""``minio3 demo``: the method on CPU in a few minutes, offline.

    minio3 demo                      # default run into runs/demo-<time>/ (≤ 5 min on 2 cores)
    minio3 demo --full               # 6 stage-B seeds, longer RL (≤ 20 min)
    minio3 demo --out runs/mine --quick

Stage A: a tiny Qwen2.5-VL learns to zoom on the nested-zoom task (reading
pretraining → cold-start SFT with TRL → a guarded masked-GRPO plumbing check →
evaluation by depth × turn budget and a forced no-zoom probe). Stage B: a proxy
policy (a small CNN, not a language model) on the real core, masked vs. plain GRPO,
evaluated at budgets 1–16. Writes ``metrics.json``, ``accuracy_vs_budget.png`` and
``trajectories.html`` in the run folder. See :mod:`minio3_ext.demo`.
"""

from __future__ import annotations

import argparse
import time

from ._args import HelpFormatter, UserError, check_out_dir, int_range


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="a tiny VLM learns to zoom (TRL SFT, masked GRPO check), and a proxy policy shows masked vs plain GRPO; CPU, offline",
        description="Stage A: reading pretraining, cold-start SFT and a guarded masked-GRPO check of a tiny offline "
                    "Qwen2.5-VL on the nested-zoom task, evaluated by depth and turn budget. Stage B: a small CNN proxy "
                    "policy on the real core, masked vs. plain GRPO, evaluated at budgets 1-16. Writes metrics.json, "
                    "accuracy_vs_budget.png and trajectories.html.",
        formatter_class=HelpFormatter,
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="every stage at a fraction of the steps, for CI (~1 minute)")
    size.add_argument("--full", action="store_true", help="6 stage-B seeds and 200 GRPO steps each (<= 20 minutes on 2 cores)")
    parser.add_argument("--out", default=None, help="run folder (default runs/demo-<timestamp>)")
    parser.add_argument("--seed", type=int_range(0, 2**32 - 1), default=None,
                        help="random seed (default 0); stage B uses seed, seed+1, ...")
    parser.add_argument("--seeds", type=int_range(1, 100), default=None, help="stage-B seeds (default 2; --full 6)")
    parser.add_argument("--grpo-steps", type=int_range(0, 100_000), default=None,
                        help="stage A's masked-GRPO plumbing-check steps (default 2; quick 1)")
    parser.add_argument("--threads", type=int_range(1, 1024), default=None, help="torch CPU threads per process (default 1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from minio3_ext.demo import FULL, QUICK, DemoConfig, run_demo

    cfg = QUICK if args.quick else FULL if args.full else DemoConfig()
    overrides = {k: v for k, v in (("seed", args.seed), ("stage_b_seeds", args.seeds), ("threads", args.threads),
                                   ("grpo_steps", args.grpo_steps)) if v is not None}
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
