"""``minio3 eval``: Avg@K × turn budgets against an OpenAI-compatible VLM endpoint.

::

    vllm serve Mini-o3/Mini-o3-7B-v1 --limit-mm-per-prompt '{"image": 33}' &
    minio3 eval --input vp_hard.jsonl --base-url http://localhost:8000/v1 \\
        --model Mini-o3/Mini-o3-7B-v1 --k 32 --budgets 4,8,16,32 --out runs/vp_hard.jsonl

    # transformers serve: no stop strings (it rejects vLLM's sampling fields; they then go in
    # its generation_config, so it samples as asked)
    minio3 eval ... --no-stop

Every request states its whole sampling (--temperature, --top-p, --top-k,
--repetition-penalty, --min-p; defaults: the released engine's), so the checkpoint's
generation_config.json never decides.

Each (item, sample) runs once under the largest budget; smaller budgets are its
prefixes. Records are appended to ``--out`` as they are judged; rerunning the same
command resumes (nothing is rerun or rescored). Resume is keyed on content and settings:
a rerun whose items changed (question, ground truth, image bytes) or whose settings did
(URL, model, sampling, dialect, images, context, any judge setting, flags or
``MINIO3_JUDGE_*`` alike) is refused, naming what differs. Writes
``<out>.summary.json``, ``<out>.summary.md`` and ``<out>.png`` (accuracy vs budget), and
names them on its last line.
The judge is read from ``--judge-*`` or ``MINIO3_JUDGE_*``; without a judge URL the
rule-only judge is used (normalised exact match: for smoke runs only; the paper table says
so beside its difference row).

Before the run, ``GET /v1/models`` checks that the server is up and serves ``--model``
and reads ``max_model_len`` (``--max-tokens`` is clamped to it); a 404 from a URL
without ``/v1`` names the fix. The run stops after
``--max-connection-errors`` requests in a row fail to reach the server.
"""

from __future__ import annotations

import argparse
import os
import hashlib
import re
import sys
from typing import Any

from ._args import (HelpFormatter, UserError, add_image_root_args, check_inputs, check_out_file, float_range,
                    int_range, json_object, positive_float, positive_int)


def budgets_arg(text: str) -> tuple[int, ...]:
    try:
        values = tuple(sorted({int(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"budgets must be comma-separated integers, got {text!r}") from None
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(f"budgets must be positive integers, got {text!r}")
    if values[-1] > 10_000:
        raise argparse.ArgumentTypeError(f"budgets must be at most 10000 turns, got {values[-1]}")
    return values


def add_policy_args(parser: argparse.ArgumentParser) -> None:
    """Endpoint, dialect, episode and judge options shared by eval and coldstart."""
    g = parser.add_argument_group("policy endpoint")
    g.add_argument("--base-url", required=True, help="OpenAI-compatible URL of the VLM, e.g. http://localhost:8000/v1")
    g.add_argument("--model", required=True, help="model name as the endpoint knows it (see GET /v1/models)")
    g.add_argument("--api-key", default="EMPTY", help="API key sent to the endpoint")
    g.add_argument("--dialect", choices=("minio3", "hermes"), default="minio3",
                   help="action format: released <grounding> JSON, or Hermes <tool_call>")
    g.add_argument("--coords", choices=("relative", "thousand", "pixel"), default="relative",
                   help="coordinate system the prompt describes and boxes are read in")
    g.add_argument("--preset", choices=("strict", "released"), default="strict",
                   help="edge-case semantics: 'released' = the released code's (clamp, observation_0, "
                        "grounding wins, released numbering); use it to evaluate the released checkpoint")
    g.add_argument("--tools", default="zoom",
                   help="comma-separated image tools the model may call (registered tools, e.g. zoom,rotate)")
    g.add_argument("--temperature", type=float_range(0.0, 2.0), default=1.0, help="sampling temperature (0-2)")
    g.add_argument("--top-p", type=float_range(0.0, 1.0), default=1.0,
                   help="nucleus sampling (0-1]; every request states it, so the checkpoint's generation_config "
                        "never decides (the released engine's 1)")
    g.add_argument("--top-k", type=int_range(-1, 1_000_000), default=-1,
                   help="top-k sampling, -1 = off (the released engine's -1; sent as vLLM's extra field)")
    g.add_argument("--repetition-penalty", type=positive_float, default=1.0,
                   help="repetition penalty, 1 = off (the released engine's 1.0; Qwen2.5-VL's generation_config "
                        "has 1.05)")
    g.add_argument("--min-p", type=float_range(0.0, 1.0), default=0.0, help="min-p sampling, 0 = off (released: 0)")
    g.add_argument("--max-tokens", type=int_range(1, 1_000_000), default=8192,
                   help="per-turn completion budget (clamped to the server's max_model_len)")
    g.add_argument("--timeout", type=positive_float, default=600.0, help="seconds per policy request")
    g.add_argument("--image-format", choices=("jpeg", "png"), default="jpeg",
                   help="encoding of images sent to the endpoint (PNG is ~4x larger and much slower to encode)")
    g.add_argument("--image-quality", type=int_range(1, 100), default=90, help="JPEG quality of images sent")
    g.add_argument("--no-stop", action="store_true",
                   help="send no stop strings (transformers serve fails on `stop`); the closing tag is then generated")
    g.add_argument("--extra-body", type=json_object, default=None, metavar="JSON",
                   help="JSON object merged into every request (sampling has its own flags), "
                        "e.g. '{\"seed\": 1}'")
    g.add_argument("--max-images", type=int_range(1, 10_000), default=33,
                   help="images per context, the original included")
    g.add_argument("--max-context-tokens", type=int_range(1, 100_000_000), default=32768,
                   help="context budget of an episode in tokens (the released rule: 30768 = 32768 - 2000)")
    g.add_argument("--concurrency", type=int_range(1, 4096), default=8, help="episodes in flight")
    g.add_argument("--max-connection-errors", type=int_range(1, 1_000_000), default=8,
                   help="stop the run after this many requests in a row fail to reach the server")
    j = parser.add_argument_group("judge")
    j.add_argument("--judge-base-url", default=None, help="judge URL (default: $MINIO3_JUDGE_BASE_URL; none = rule-only judge)")
    j.add_argument("--judge-model", default=None, help="judge model (default: $MINIO3_JUDGE_MODEL)")
    j.add_argument("--judge-preset", choices=("hardened", "released"), default=None,
                   help="hardened (default) or released: the Mini-o3 authors' judge prompts and schedule")
    j.add_argument("--judge-api-key", default=None, help="judge API key (default: $MINIO3_JUDGE_API_KEY)")
    j.add_argument("--judge-cache", default=None, help="sqlite verdict cache (default: next to the output)")


def missing_packages(*names: str) -> str | None:
    """A message naming the packages (from the extras) this command needs, or None."""
    import importlib.util

    missing = [n for n in names if importlib.util.find_spec(n) is None]
    if not missing:
        return None
    return f"needs {', '.join(missing)}: from a clone of the repository, pip install -e \".[trl]\""


def _tools(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(t.strip() for t in args.tools.split(",") if t.strip())


def dialect_of(args: argparse.Namespace):
    """The conversation's rule set for these flags (``--dialect``, ``--coords``, ``--preset``, ``--tools``)."""
    from minio3_ext.core.dialect import get_dialect

    try:
        return get_dialect(args.dialect, coords=args.coords, preset=args.preset, tools=_tools(args))
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"--tools {args.tools!r}: {e}") from None


#: Sampling flags (argparse destinations), each sent in every request.
SAMPLING_DESTS = ("temperature", "top_p", "top_k", "repetition_penalty", "min_p")


def make_policy(args: argparse.Namespace):
    from minio3_ext.eval.openai_policy import OpenAIPolicy

    clash = [d for d in SAMPLING_DESTS if d in (args.extra_body or {})]
    if clash:
        raise UserError(f"--extra-body sets {', '.join(clash)}: use "
                        + ", ".join("--" + d.replace("_", "-") for d in clash) + " instead")
    return OpenAIPolicy(args.base_url, args.model, api_key=args.api_key, dialect=dialect_of(args),
                        max_tokens=args.max_tokens, timeout=args.timeout,
                        image_format=args.image_format, image_quality=args.image_quality,
                        stop=False if args.no_stop else None, extra_body=args.extra_body,
                        max_connection_errors=args.max_connection_errors,
                        **{d: getattr(args, d) for d in SAMPLING_DESTS})


#: JudgeConfig field → the flag (or variable) a user sets it with.
_JUDGE_FLAGS = {"model": "--judge-model", "base_url": "--judge-base-url", "api_key": "--judge-api-key",
                "cache_path": "--judge-cache"}


def judge_error(message: str, flags: dict[str, str] = _JUDGE_FLAGS) -> str:
    """A judge configuration error worded with flags instead of ``JudgeConfig.<field>``."""
    def name(m: re.Match) -> str:
        key = m.group(1)
        return flags.get(key, f"MINIO3_JUDGE_{key.upper()}")

    return re.sub(r"JudgeConfig\.(\w+)", name, message)


def make_judge(args: argparse.Namespace, default_cache: str):
    from minio3_ext.judge import Judge, JudgeConfig
    from minio3_ext.judge.config import JudgeConfigError

    overrides = {k: v for k, v in {"base_url": args.judge_base_url, "model": args.judge_model,
                                   "api_key": args.judge_api_key}.items() if v is not None}
    overrides["cache_path"] = args.judge_cache or default_cache
    try:
        return Judge(JudgeConfig.from_env(preset=getattr(args, "judge_preset", None), **overrides))
    except JudgeConfigError as e:
        raise UserError(judge_error(str(e))) from None


def episode_config(args: argparse.Namespace, max_turns: int):
    from minio3_ext.core.episode import EpisodeConfig

    return EpisodeConfig.from_options(max_turns=max_turns, max_images=args.max_images, max_context_tokens=args.max_context_tokens,
                         dialect=args.dialect, coords=args.coords, preset=args.preset, tools=_tools(args))


#: The flags (argparse destinations of eval and coldstart) that shape a record: each is part of
#: the resume key, with the judge's settings (``judge.<field>``, :meth:`JudgeConfig.key_settings`)
#: and the system prompt. A flag in neither this set nor :data:`NOT_KEYED` makes :func:`run_settings`
#: raise, so every new flag is decided.
KEYED = frozenset({
    "base_url", "model", *SAMPLING_DESTS, "max_tokens", "no_stop", "extra_body", "dialect", "coords", "preset", "tools",
    "max_images", "max_context_tokens", "image_format", "image_quality", "protocol", "token_count", "tokenizer",
    "max_turns", "num_exemplars", "exemplar_max_pixels",  # coldstart's
})
#: The flags that do not change a record, each with the reason.
NOT_KEYED: dict[str, str] = {
    "command": "the subcommand itself", "func": "the subcommand itself",
    "data": "items are keyed by their content (question, ground truth, image bytes), not by the file holding them",
    "image_root": "images are keyed by their bytes, wherever they are found",
    "allow_outside_root": "decides which rows may be read, not what a record holds",
    "out": "where records go",
    "limit": "which items run, not how",
    "k": "how many samples run; each record is keyed by its sample index",
    "attempts": "how many attempts run (coldstart's --k); each record is keyed by its sample index",
    "budgets": "records run under the largest budget and smaller budgets are their prefixes; a larger budget "
               "than the records ran under is refused on its own",
    "save_crops": "where observation images are saved",
    "no_progress": "display only",
    "concurrency": "episodes in flight; each episode is independent",
    "timeout": "how long a request may take; a request that runs out makes no record",
    "max_connection_errors": "when a run stops; a failed request makes no record",
    "api_key": "a credential: it grants access to the server, it does not choose the model (never written down)",
    "judge_api_key": "a credential (never written down)",
    "judge_cache": "where verdicts are kept (the cache is keyed on every judge setting itself)",
    "judge_base_url": "keyed as judge.base_url, resolved with MINIO3_JUDGE_* and the preset",
    "judge_model": "keyed as judge.model, resolved with MINIO3_JUDGE_* and the preset",
    "judge_preset": "keyed as judge.preset, resolved with MINIO3_JUDGE_PRESET",
    "judge_failures": "how the summary counts unscorable records, not what a record holds",
    "exemplars": "keyed by the file's bytes (coldstart passes their sha256 as --exemplars)",
}


def _key_form(args: argparse.Namespace, dest: str) -> Any:
    """The value of ``dest`` as the resume key holds it (JSON-able, normalised)."""
    import json

    value = getattr(args, dest)
    if dest == "tools":
        return list(_tools(args))
    if dest == "extra_body":
        return value or {}
    if dest == "no_stop":
        return bool(value)
    if dest == "image_quality" and args.image_format != "jpeg":
        return None  # PNG is lossless: the quality does not apply
    return json.loads(json.dumps(value, default=str))


def run_settings(args: argparse.Namespace, judge: Any = None, **extra: Any) -> dict[str, Any]:
    """Every setting that changes a record, keyed by its flag: the resume key. Every flag of
    ``args`` is in :data:`KEYED` or :data:`NOT_KEYED` (else ``RuntimeError``); the judge's
    settings (``judge.<field>``) and the system prompt's hash join them. ``extra`` adds more."""
    from minio3_ext.eval.evaluate import judge_settings

    undecided = sorted(d for d in vars(args) if d not in KEYED and d not in NOT_KEYED)
    if undecided:
        raise RuntimeError("flag(s) " + ", ".join("--" + d.replace("_", "-") for d in undecided)
                           + " are neither in KEYED nor in NOT_KEYED (minio3_ext/commands/eval.py): "
                           "decide whether they change a record")
    settings: dict[str, Any] = {"--" + d.replace("_", "-"): _key_form(args, d) for d in sorted(vars(args))
                                if d in KEYED}
    settings["system prompt"] = hashlib.sha256(dialect_of(args).system_prompt().encode()).hexdigest()[:16]
    if judge is not None:
        settings.update(judge_settings(judge))
    settings.update(extra)
    return settings


def judge_label(judge: Any) -> str:
    """The judge's model, or ``rules`` for the rule-only judge (the summary's ``judge``)."""
    config = getattr(judge, "config", None)
    return getattr(config, "model", None) if getattr(config, "base_url", None) else "rules"


#: Flags a ``--protocol`` preset may fill (kept in step with minio3_ext.eval.protocol.PROTOCOL_DESTS).
PROTOCOL_DESTS = ("k", "budgets", "max_images", "judge_preset", "preset", "image_format", "max_context_tokens",
                  "token_count", "judge_failures") + SAMPLING_DESTS


class _Default:
    """A default the user did not give on the command line (a --protocol preset may replace it)."""

    def __init__(self, value):
        self.value = value

    def __str__(self) -> str:  # what --help shows as the default
        return str(self.value)


def _explicit_flags(args: argparse.Namespace) -> set[str]:
    """Unwrap the marked defaults; return the protocol-fillable flags the user gave."""
    given = set()
    for dest in PROTOCOL_DESTS:
        value = getattr(args, dest)
        if isinstance(value, _Default):
            setattr(args, dest, value.value)
        else:
            given.add(dest)
    return given


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate a VLM endpoint: Avg@K over turn budgets",
                                   description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--input", "--data", dest="data", action="append", required=True, metavar="FILE",
                        help="items file (JSONL/JSON/parquet from `minio3 data`, or any row with "
                             "id/question/answer/image); repeatable")
    add_image_root_args(parser, "the data file's folder")
    parser.add_argument("--out", required=True, help="results JSONL (appended; resumable)")
    parser.add_argument("--k", type=int_range(1, 100_000), default=1, help="samples per item (Avg@K)")
    parser.add_argument("--budgets", type=budgets_arg, default=(4, 8, 16, 32), help="turn budgets, e.g. 4,8,16,32")
    parser.add_argument("--limit", type=positive_int, default=None, help="first N items only (default: all)")
    parser.add_argument("--save-crops", default=None, help="folder to save each observation image (for `minio3 show`)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--token-count", choices=("estimate", "exact"), default="estimate",
                        help="how the context is counted: estimate (~3.5 characters a token) or exact (the server's "
                             "usage after each turn, observations by --tokenizer when it loads locally)")
    parser.add_argument("--tokenizer", default=None,
                        help="local tokenizer for --token-count exact (default: --model, if it loads without a download)")
    parser.add_argument("--judge-failures", choices=("excluded", "zero"), default="excluded",
                        help="headline accuracy: a failed judge call is unscorable and excluded, or counts as 0 "
                             "(the released code); both numbers are reported")
    add_policy_args(parser)
    parser.add_argument("--protocol", default=None, metavar="{released,paper-curve}",
                        help="preset: released = 12 turns, 12 images, Avg@32, the released engine's sampling (temperature 1, "
                        "top-p 1, top-k -1, repetition penalty 1, min-p 0), PNG images, --token-count exact against "
                        "30768 tokens, released judge with --judge-failures zero, released dialect preset; "
                        "paper-curve = budgets 4,8,16,32, Avg@32, temperature 1.0 (explicit flags override it)")
    parser.set_defaults(func=run, **{d: _Default(parser.get_default(d)) for d in PROTOCOL_DESTS})


def load_inputs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The items of ``--input``: every file exists and is readable, and they hold at least one item."""
    from minio3_ext.eval.evaluate import load_items

    check_inputs(args.data, "--input")
    try:
        items = load_items(args.data, args.image_root, args.limit, allow_outside_root=args.allow_outside_root)
    except (ValueError, FileNotFoundError, KeyError, TypeError) as e:
        raise UserError(f"--input: {e}") from None
    if not items:
        raise UserError(f"--input {' '.join(map(str, args.data))}: no items")
    return items


async def preflight_then(policy: Any, run: Any) -> Any:
    """Check the endpoint (``policy.preflight``), print its warnings, then await ``run()``.
    An endpoint that cannot work is a :class:`UserError` naming ``--base-url``."""
    from minio3_ext.eval.openai_policy import EndpointError

    try:
        warnings = await policy.preflight()
    except EndpointError as e:
        raise UserError(f"--base-url: {e}") from None
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    return await run()


def sample_warning(records: list[dict], k: int) -> str | None:
    from minio3_ext.eval.records import identical_sample_items

    same, multi = identical_sample_items(records)
    if k > 1 and multi and same == multi:
        return (f"warning: every sample of each of the {multi} items is identical: the server decodes greedily, "
                "so Avg@K is Avg@1. Ask it to sample (--temperature > 0; every request states the whole sampling, "
                "so a server that ignores it decodes its own way)")
    return None


def _complete_records(out: Any) -> int:
    """Records ending in a newline (a failed write may leave a partial last line)."""
    try:
        with open(out, "rb") as f:
            return sum(1 for line in f if line.endswith(b"\n") and line.strip())
    except OSError:
        return 0


def token_counter(args: argparse.Namespace):
    """(counter of a text's tokens, what counts the context) for ``--token-count``."""
    from minio3_ext.eval.runner import approx_tokens

    if args.token_count != "exact":
        return approx_tokens, "estimate"
    name = args.tokenizer or args.model
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
    except Exception:  # not installed, not a local path, not in the cache: the server's count alone
        if args.tokenizer:
            raise UserError(f"--tokenizer {args.tokenizer}: cannot load a tokenizer from it") from None
        return approx_tokens, "exact: the server's usage (observation text estimated until the next turn)"
    return (lambda text: len(tokenizer.encode(text, add_special_tokens=False))), \
        f"exact: the server's usage and the tokenizer of {name}"


def run(args: argparse.Namespace) -> int:
    import asyncio
    import json
    from pathlib import Path

    problem = missing_packages("openai", "matplotlib")
    if problem:
        raise UserError(problem)
    from minio3_ext.eval.evaluate import RecordWriteError, evaluate, read_records
    from minio3_ext.eval.metrics import summarize
    from minio3_ext.eval.openai_policy import EndpointUnreachable
    from minio3_ext.eval.protocol import apply_protocol, paper_table
    from minio3_ext.eval.report import format_summary_table, plot_accuracy_vs_budget

    out = check_out_file(args.out, "--out")
    if out.exists() and any(Path(d).exists() and os.path.samefile(d, out) for d in args.data):
        raise UserError(f"--out {args.out}: is the --input file; trajectories would be appended to the dataset. "
                        "Write them to another file")
    if args.save_crops and Path(args.save_crops).exists() and not Path(args.save_crops).is_dir():
        raise UserError(f"--save-crops {args.save_crops}: is a file; expected a folder")
    try:
        protocol = apply_protocol(args, _explicit_flags(args))
    except ValueError as e:
        raise UserError(f"--protocol: {e}") from None
    items = load_inputs(args)
    judge = make_judge(args, str(out.with_suffix(".judge.sqlite")))
    try:
        config = episode_config(args, max(args.budgets))
    except ValueError as e:
        raise UserError(str(e)) from None
    policy = make_policy(args)
    settings = run_settings(args, judge)
    counter, counted = token_counter(args)
    stopped = None
    try:
        stats = asyncio.run(preflight_then(policy, lambda: evaluate(
            policy, items, out, judge, k=args.k, budgets=args.budgets, episode=config, concurrency=args.concurrency,
            crops_dir=args.save_crops, progress=not args.no_progress, settings=settings,
            token_counter=counter, exact_context=args.token_count == "exact")))
    except ValueError as e:
        raise UserError(str(e)) from None
    except EndpointUnreachable as e:
        stopped, stats = str(e), None
    except RecordWriteError as e:
        n = _complete_records(out)
        raise UserError(f"--out {out}: cannot write a record ({e.strerror}); {n} complete records are saved. "
                        "Free space and rerun the same command to resume.", exit_code=1) from None
    except KeyboardInterrupt:
        n = len(read_records(out)) if out.exists() else 0
        print(f"\nminio3 eval: interrupted; {n} records are saved in {out}. Rerun the same command to resume.",
              file=sys.stderr)
        return 130
    wanted = {str(i["id"]) for i in items}
    records = [r for r in read_records(out) if str(r.get("id")) in wanted and int(r.get("sample", 0)) < args.k]
    expected = len(items) * args.k
    summary = summarize(records, args.budgets)
    summary["run"] = {"items": len(items), "k": args.k, "records": len(records), "expected": expected,
                      "partial": len(records) < expected,
                      "new": stats.ran if stats else None, "resumed": stats.done_before if stats else None,
                      "failed": stats.failed if stats else None, "stopped": stopped,
                      "protocol": protocol.name if protocol else None, "context_count": counted,
                      "judge_failures": args.judge_failures, "judge": judge_label(judge),
                      "sampling": {d: getattr(args, d) for d in SAMPLING_DESTS},
                      "sampling_in_generation_config": getattr(policy, "sampling_in_generation_config", False)}
    out.with_suffix(".summary.json").write_text(json.dumps(summary, indent=1))
    table = format_summary_table(summary)
    if len(records) < expected:
        table += (f"\n\n**Partial run**: {len(records)} of {expected} (item, sample) records "
                  f"({expected - len(records)} missing); rerun the same command to complete it.")
    out.with_suffix(".summary.md").write_text(table + "\n")
    if records:
        plot_accuracy_vs_budget(summary, out.with_suffix(".png"))
    print(table)
    written = [out, out.with_suffix(".summary.json"), out.with_suffix(".summary.md")]
    written += [out.with_suffix(".png")] if records else []
    paper = paper_table(summary, failures_as_0=args.judge_failures == "zero",
                        rule_judge=judge_label(judge) == "rules")
    if paper is not None:  # the paper's benchmarks, laid out like its table, beside its Mini-o3 row
        out.with_suffix(".paper.md").write_text(paper + "\n")
        written.append(out.with_suffix(".paper.md"))
        print("\n" + paper)
    unscored = sum(r.get("verdict") is None for r in records)
    if unscored:
        print(f"\n{unscored} sample(s) unscorable (the judge failed): "
              + ("counted as 0 in the paper table (--judge-failures zero, as the released code does); "
                 "'acc %' leaves them out" if args.judge_failures == "zero" else
                 "left out of 'acc %'; the released code counts them as 0 (column 'acc % fail=0')"))
    warning = sample_warning(records, args.k)
    if warning:
        print(warning, file=sys.stderr)
    cache = getattr(getattr(judge, "config", None), "cache_path", None)
    where = ("\noutputs: " + ", ".join(map(str, written)) + (f"; crops: {args.save_crops}" if args.save_crops else "")
             + (f"; judge cache: {cache}" if cache else ""))
    if stopped:
        print(f"minio3 eval: {stopped}. {len(records)} records are saved; rerun the same command to resume.",
              file=sys.stderr)
        print(where)
        return 1
    print(f"\n{len(records)} records ({stats.ran} new, {stats.done_before} from earlier runs), "
          f"{stats.failed} failed (rerun to retry)")
    for line in stats.errors[:10]:
        print(f"  failed: {line}", file=sys.stderr)
    limit = getattr(policy, "server_image_limit", None)
    if limit is not None:
        print(f"note: the server takes at most {limit} images per prompt; episodes that reached it ended as "
              f"image_limit (pass --max-images {limit}, or raise the server's limit, e.g. vLLM "
              f"--limit-mm-per-prompt '{{\"image\": {args.max_images}}}')", file=sys.stderr)
    print(where)
    return 1 if stats.failed else 0
