"""``minio3 coldstart``: synthesise cold-start SFT trajectories.

::

    vllm serve Qwen/Qwen2.5-VL-72B-Instruct --limit-mm-per-prompt '{"image": 40}' &
    minio3 coldstart --input data/visual_probe_train.jsonl --base-url http://localhost:8000/v1 \\
        --model Qwen/Qwen2.5-VL-72B-Instruct --attempts 4 --out runs/coldstart

A handful of exemplar trajectories (``--exemplars``, default: the six shipped ones built
on synthetic images; ``--num-exemplars`` picks how many) are replayed through the real
environment and put before each training question as worked examples. The VLM then
solves the question step by step with real crops (the server's per-prompt image
limit must cover the exemplars' images too: 18 for the shipped six); the judge scores the answer. Every
attempt is appended to ``<out>/attempts.jsonl`` (rerunning resumes: done attempts are
skipped); the correct ones become ``<out>/kept.jsonl`` and SFT data
(``sft.verl.parquet``, ``sft.trl/``, ``sft.trl.jsonl``). Prints kept/discarded by reason.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from ._args import HelpFormatter, UserError, add_image_root_args, check_inputs, check_out_dir, int_range, positive_int
from .eval import (add_policy_args, episode_config, load_inputs, make_judge, make_policy, missing_packages,
                   preflight_then, run_settings)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("coldstart", help="synthesise cold-start SFT data with a few-shot VLM",
                                   description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--input", "--data", dest="data", action="append", required=True, metavar="FILE",
                        help="training items (JSONL/JSON/parquet); repeatable")
    add_image_root_args(parser, "the data file's folder")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--exemplars", default=None, help="exemplar JSON (default: the shipped synthetic six)")
    parser.add_argument("--num-exemplars", type=int_range(0, 1000), default=6, help="exemplars put before each question")
    parser.add_argument("--exemplar-max-pixels", type=int_range(784, 50_000_000), default=250_000,
                        help="pixel budget of exemplar images (keeps the few-shot context small)")
    parser.add_argument("--attempts", type=int_range(1, 100_000), default=1, help="attempts per question")
    parser.add_argument("--max-turns", type=int_range(1, 10_000), default=16, help="turn budget of an attempt")
    parser.add_argument("--limit", type=positive_int, default=None, help="first N questions only (default: all)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_policy_args(parser)
    parser.set_defaults(func=run)


def outcome(record: dict) -> str:
    """Why an attempt was kept or discarded."""
    if record.get("termination_reason") != "answered":
        return str(record.get("termination_reason"))
    return {1: "kept", 0: "wrong"}.get(record.get("verdict"), "unscored")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import hashlib
    import json

    problem = missing_packages("openai", "pyarrow", "datasets")
    if problem:
        raise UserError(problem)
    from minio3_ext.eval.coldstart import ExemplarError, FewShotPolicy, load_exemplars
    from minio3_ext.eval.evaluate import evaluate, read_records
    from minio3_ext.eval.openai_policy import EndpointUnreachable
    from minio3_ext.eval.sft import write_sft_data

    out = check_out_dir(args.out, "--out")
    if args.exemplars is not None:
        check_inputs([args.exemplars], "--exemplars", files_only=True)
    items = load_inputs(args)
    try:
        config = episode_config(args, args.max_turns)
        exemplars = load_exemplars(args.exemplars, config=config, max_pixels=args.exemplar_max_pixels,
                                   limit=args.num_exemplars or None)[: args.num_exemplars]
    except (ValueError, FileNotFoundError, ExemplarError) as e:
        raise UserError(f"--exemplars: {e}" if isinstance(e, ExemplarError) else str(e)) from None
    judge = make_judge(args, str(out / "judge.sqlite"))
    base = make_policy(args)
    policy = FewShotPolicy(base, exemplars)
    exemplar_text = (open(args.exemplars, "rb").read() if args.exemplars else b"shipped")
    settings = run_settings(args, judge, **{
        "--max-turns": args.max_turns, "--num-exemplars": args.num_exemplars,
        "--exemplar-max-pixels": args.exemplar_max_pixels,
        "--exemplars": hashlib.sha256(exemplar_text).hexdigest()[:16]})
    attempts_path = out / "attempts.jsonl"
    stopped = None
    try:
        stats = asyncio.run(preflight_then(base, lambda: evaluate(
            policy, items, attempts_path, judge, k=args.attempts, budgets=(args.max_turns,), episode=config,
            concurrency=args.concurrency, crops_dir=str(out / "crops"), progress=not args.no_progress,
            settings=settings)))
    except ValueError as e:
        raise UserError(str(e)) from None
    except EndpointUnreachable as e:
        stopped, stats = str(e), None
    except KeyboardInterrupt:
        n = len(read_records(attempts_path)) if attempts_path.exists() else 0
        print(f"\nminio3 coldstart: interrupted; {n} attempts are saved in {attempts_path}. "
              "Rerun the same command to resume.", file=sys.stderr)
        return 130
    wanted = {str(i["id"]) for i in items}
    records = [r for r in read_records(attempts_path) if str(r.get("id")) in wanted]
    reasons = Counter(outcome(r) for r in records)
    kept = [r for r in records if outcome(r) == "kept"]
    if stopped:
        print(f"minio3 coldstart: {stopped}. {len(records)} attempts are saved in {attempts_path}; "
              "rerun the same command to resume.", file=sys.stderr)
        return 1
    if not kept:
        print(f"{len(records)} attempts: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())), file=sys.stderr)
        print(f"minio3 coldstart: no correct trajectory to keep; no SFT data written to {out}", file=sys.stderr)
        for line in stats.errors[:10]:
            print(f"  failed: {line}", file=sys.stderr)
        return 1
    with open(out / "kept.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in kept)
    report = write_sft_data(kept, out)
    summary = {"attempts": len(records), "by_outcome": dict(reasons), "sft_rows": report["kept"],
               "unusable": report["unusable"], "failed_requests": stats.failed, "exemplars": len(exemplars),
               "partial": len(records) < len(items) * args.attempts}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"{len(records)} attempts: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
    print(f"kept {len(kept)} correct trajectories → {report['kept']} SFT rows in {out}")
    if stats.failed:
        print(f"{stats.failed} attempts failed (endpoint or image errors); rerun to retry", file=sys.stderr)
        for line in stats.errors[:10]:
            print(f"  failed: {line}", file=sys.stderr)
    return 1 if stats.failed else 0
