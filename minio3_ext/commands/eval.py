"""``minio3 eval``: Avg@K × turn budgets against an OpenAI-compatible VLM endpoint.

::

    vllm serve Mini-o3/Mini-o3-7B-v1 --limit-mm-per-prompt '{"image": 33}' &
    minio3 eval --data vp_hard.jsonl --base-url http://localhost:8000/v1 \\
        --model Mini-o3/Mini-o3-7B-v1 --k 32 --budgets 4,8,16,32 --out runs/vp_hard.jsonl

Each (item, sample) runs once under the largest budget; smaller budgets are its
prefixes. Records are appended to ``--out`` as they are judged; rerunning the same
command resumes (nothing is rerun or rescored). Writes ``<out>.summary.json``,
``<out>.summary.md`` and ``<out>.png`` (accuracy vs budget). The judge is read from
``--judge-*`` or ``MINIO3_JUDGE_*``; without a judge URL the rule-only judge is used
(normalised exact match: for smoke runs only).
"""

from __future__ import annotations

import argparse
import sys


def budgets_arg(text: str) -> tuple[int, ...]:
    try:
        values = tuple(sorted({int(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"budgets must be comma-separated integers, got {text!r}") from None
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(f"budgets must be positive integers, got {text!r}")
    return values


def add_policy_args(parser: argparse.ArgumentParser) -> None:
    """Endpoint, dialect, episode and judge options shared by eval and coldstart."""
    g = parser.add_argument_group("policy endpoint")
    g.add_argument("--base-url", required=True, help="OpenAI-compatible URL of the VLM, e.g. http://localhost:8000/v1")
    g.add_argument("--model", required=True, help="model name as the endpoint knows it")
    g.add_argument("--api-key", default="EMPTY")
    g.add_argument("--dialect", choices=("minio3", "hermes"), default="minio3")
    g.add_argument("--coords", choices=("relative", "thousand", "pixel"), default="relative",
                   help="coordinate system the prompt describes and boxes are read in")
    g.add_argument("--preset", choices=("strict", "released"), default="strict",
                   help="edge-case semantics: 'released' = the released code's (clamp, observation_0, "
                        "grounding wins, released numbering); use it to evaluate the released checkpoint")
    g.add_argument("--tools", default="zoom",
                   help="comma-separated image tools the model may call (registered tools, e.g. zoom,rotate)")
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--max-tokens", type=int, default=8192, help="per-turn completion budget")
    g.add_argument("--timeout", type=float, default=600.0, help="seconds per policy request")
    g.add_argument("--image-format", choices=("png", "jpeg"), default="png", help="encoding of images sent to the endpoint")
    g.add_argument("--max-images", type=int, default=33, help="images per context, the original included")
    g.add_argument("--max-context-tokens", type=int, default=32768)
    g.add_argument("--concurrency", type=int, default=8, help="episodes in flight")
    j = parser.add_argument_group("judge")
    j.add_argument("--judge-base-url", default=None, help="default: $MINIO3_JUDGE_BASE_URL; none = rule-only judge")
    j.add_argument("--judge-model", default=None)
    j.add_argument("--judge-api-key", default=None)
    j.add_argument("--judge-cache", default=None, help="sqlite verdict cache (default: next to the output)")


def missing_packages(*names: str) -> str | None:
    """A message naming the packages (from the extras) this command needs, or None."""
    import importlib.util

    missing = [n for n in names if importlib.util.find_spec(n) is None]
    if not missing:
        return None
    return f"needs {', '.join(missing)}: pip install 'minio3-ext[judge,trl]'"


def make_policy(args: argparse.Namespace):
    from minio3_ext.eval.openai_policy import OpenAIPolicy

    return OpenAIPolicy(args.base_url, args.model, api_key=args.api_key, dialect=args.dialect,
                        temperature=args.temperature, max_tokens=args.max_tokens, timeout=args.timeout,
                        image_format=args.image_format)


def make_judge(args: argparse.Namespace, default_cache: str):
    from minio3_ext.judge import Judge, JudgeConfig

    overrides = {k: v for k, v in {"base_url": args.judge_base_url, "model": args.judge_model,
                                   "api_key": args.judge_api_key}.items() if v is not None}
    overrides["cache_path"] = args.judge_cache or default_cache
    return Judge(JudgeConfig.from_env(**overrides))


def episode_config(args: argparse.Namespace, max_turns: int):
    from minio3_ext.core.episode import EpisodeConfig

    return EpisodeConfig(max_turns=max_turns, max_images=args.max_images, max_context_tokens=args.max_context_tokens,
                         dialect=args.dialect, coords=args.coords, preset=args.preset,
                         tools=tuple(t.strip() for t in args.tools.split(",") if t.strip()))


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate a VLM endpoint: Avg@K over turn budgets",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", required=True,
                        help="items file (JSONL/JSON/parquet from `minio3 data`, or any row with id/question/answer/image); repeatable")
    parser.add_argument("--image-root", default=None, help="folder relative image paths are under (default: the data file's)")
    parser.add_argument("--out", required=True, help="results JSONL (appended; resumable)")
    parser.add_argument("--k", type=int, default=1, help="samples per item (Avg@K)")
    parser.add_argument("--budgets", type=budgets_arg, default=(4, 8, 16, 32), help="turn budgets, e.g. 4,8,16,32")
    parser.add_argument("--limit", type=int, default=None, help="first N items only")
    parser.add_argument("--save-crops", default=None, help="folder to save each observation image (for `minio3 show`)")
    parser.add_argument("--no-progress", action="store_true")
    add_policy_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import json
    from pathlib import Path

    problem = missing_packages("openai", "matplotlib")
    if problem:
        print(f"minio3 eval: {problem}", file=sys.stderr)
        return 2
    from minio3_ext.eval.evaluate import evaluate, load_items, read_records
    from minio3_ext.eval.metrics import summarize
    from minio3_ext.eval.report import format_summary_table, plot_accuracy_vs_budget

    try:
        items = load_items(args.data, args.image_root, args.limit)
        judge = make_judge(args, str(Path(args.out).with_suffix(".judge.sqlite")))
        config = episode_config(args, max(args.budgets))
    except (ValueError, FileNotFoundError) as e:
        print(f"minio3 eval: {e}", file=sys.stderr)
        return 2
    policy = make_policy(args)
    try:
        stats = asyncio.run(evaluate(policy, items, args.out, judge, k=args.k, budgets=args.budgets, episode=config,
                                     concurrency=args.concurrency, crops_dir=args.save_crops,
                                     progress=not args.no_progress))
    except ValueError as e:
        print(f"minio3 eval: {e}", file=sys.stderr)
        return 2
    wanted = {str(i["id"]) for i in items}
    records = [r for r in read_records(args.out) if str(r.get("id")) in wanted and int(r.get("sample", 0)) < args.k]
    summary = summarize(records, args.budgets)
    summary["run"] = {"items": len(items), "k": args.k, "records": len(records), "new": stats.ran,
                      "resumed": stats.done_before, "failed": stats.failed}
    out = Path(args.out)
    out.with_suffix(".summary.json").write_text(json.dumps(summary, indent=1))
    table = format_summary_table(summary)
    out.with_suffix(".summary.md").write_text(table + "\n")
    plot_accuracy_vs_budget(summary, out.with_suffix(".png"))
    print(table)
    print(f"\n{len(records)} records ({stats.ran} new, {stats.done_before} from earlier runs), "
          f"{stats.failed} failed (rerun to retry)")
    for line in stats.errors[:10]:
        print(f"  failed: {line}", file=sys.stderr)
    return 1 if stats.failed else 0
