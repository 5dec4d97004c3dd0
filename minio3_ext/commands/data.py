"""``minio3 data``: prepare training and evaluation data from local files.

::

    # benchmark rows → <out>/<bench>_<split>.jsonl (eval items: problem, images, solution, data_source rows),
    #   .verl.parquet (verl RL), .trl/ (TRL GRPO dataset), .report.json (bad rows)
    minio3 data convert visual_probe --input VisualProbe_Hard/val.json --split hard \\
        --image-root VisualProbe_Hard --out data/
    minio3 data convert hrbench --input hr_bench_4k.tsv --split 4k --out data/ --strict

    # trajectories (coldstart output, eval records) → SFT data for verl and TRL
    minio3 data sft --input coldstart.jsonl --out data/sft

    # the released Mini-o3-Coldstart-Dataset (parquet or its ShareGPT JSON) → verl + TRL SFT
    minio3 data import-coldstart --input Mini-o3-Coldstart-Dataset/data --out data/coldstart

Bad rows (image missing or not decodable, not exactly one image slot, empty answer,
duplicate id) are reported by id and skipped; ``--strict`` fails instead.
"""

from __future__ import annotations

import argparse
import sys

from ._args import HelpFormatter, UserError, add_image_root_args, check_inputs, check_out_dir, positive_int


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from minio3_ext.data.benchmarks import SPLITS

    parser = subparsers.add_parser("data", help="convert benchmarks / trajectories into training and eval data",
                                   description=__doc__, formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="data_command", required=True)
    conv = sub.add_parser("convert", help="benchmark rows → jsonl, verl parquet, TRL dataset",
                          description="Convert benchmark rows into eval items (JSONL), verl RL parquet and a TRL "
                                      "dataset; bad rows are reported by id and skipped (--strict: fail).",
                          formatter_class=HelpFormatter)
    conv.add_argument("benchmark", choices=sorted(SPLITS), help="benchmark the rows come from")
    conv.add_argument("--input", action="append", required=True,
                      help="JSONL/JSON/parquet/TSV file or local HF datasets folder (repeatable)")
    conv.add_argument("--split", default=None, help="; ".join(f"{b}: {'/'.join(s)}" for b, s in SPLITS.items())
                      + " (default: the first; hrbench: the one its file name states, e.g. hr_bench_8k.tsv)")
    add_image_root_args(conv, "the input's folder")
    conv.add_argument("--out", required=True, help="output folder")
    conv.add_argument("--name", default=None, help="output file stem (default: <benchmark>_<split>)")
    conv.add_argument("--formats", default="jsonl,verl,trl", help="comma-separated subset of jsonl,verl,trl")
    conv.add_argument("--dialect", choices=("minio3", "hermes"), default="minio3", help="action format of the prompts")
    conv.add_argument("--agent-name", default="minio3_agent", help="verl agent loop per row ('' to leave it out)")
    conv.add_argument("--no-decode", action="store_true", help="check images exist without decoding them")
    conv.add_argument("--limit", type=positive_int, default=None, help="first N rows only (default: all)")
    conv.add_argument("--strict", action="store_true", help="fail on any bad row instead of skipping it")
    conv.set_defaults(func=run_convert)
    sft = sub.add_parser("sft", help="trajectories → SFT data (verl parquet, TRL dataset, JSONL)",
                         description="Turn judged trajectories (coldstart or eval records) into SFT data.",
                         formatter_class=HelpFormatter)
    sft.add_argument("--input", "--trajectories", dest="trajectories", action="append", required=True, metavar="FILE",
                     help="trajectory JSONL (repeatable)")
    sft.add_argument("--out", required=True, help="output folder")
    sft.add_argument("--all", action="store_true", help="keep trajectories the judge did not mark correct")
    sft.add_argument("--strict", action="store_true", help="fail on any unusable trajectory")
    sft.set_defaults(func=run_sft)
    cold = sub.add_parser("import-coldstart", help="released Mini-o3-Coldstart-Dataset (parquet or ShareGPT JSON) "
                          "→ verl + TRL SFT data")
    cold.add_argument("--input", action="append", required=True, help="parquet / JSON file or folder (repeatable)")
    cold.add_argument("--out", required=True, help="output folder")
    add_image_root_args(cold, "the input's folder")
    cold.add_argument("--limit", type=positive_int, default=None, help="first N rows only (default: all)")
    cold.add_argument("--strict", action="store_true", help="fail on any bad row instead of skipping it")
    cold.set_defaults(func=run_import_coldstart)


def run_convert(args: argparse.Namespace) -> int:
    from pathlib import Path

    from minio3_ext.data.prepare import PrepareError, prepare

    check_inputs(args.input, "--input")
    out = check_out_dir(args.out, "--out")
    formats = [f for f in args.formats.split(",") if f.strip()]
    if not formats:
        raise UserError(f"--formats {args.formats!r}: name at least one of jsonl,verl,trl")
    if args.image_root is not None and not Path(args.image_root).is_dir():
        raise UserError(f"--image-root {args.image_root}: no such folder")
    if "trl" in formats:
        try:  # the command prints its own summary; datasets' save bar would only add noise
            from datasets.utils.logging import disable_progress_bar

            disable_progress_bar()
        except ImportError:
            pass
    try:
        report = prepare(args.benchmark, args.input, out, split=args.split, image_root=args.image_root,
                         strict=args.strict, formats=formats,
                         dialect=args.dialect, agent_name=args.agent_name or None, decode=not args.no_decode,
                         limit=args.limit, name=args.name, allow_outside_root=args.allow_outside_root)
    except PrepareError as e:
        print(f"minio3 data convert: {e}", file=sys.stderr)
        return 1
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"--input: {e}") from None
    for bad in report.bad:
        print(f"skipped {bad.id} ({bad.where}): {bad.reason}", file=sys.stderr)
    if report.kept == 0:
        _remove_outputs(report.outputs)
        why = (f"all {len(report.bad)} rows are bad (see above)" if report.bad else "no rows")
        raise UserError(f"--input {' '.join(map(str, args.input))}: {why}; nothing written", exit_code=1)
    print(f"{report.kept} rows kept, {len(report.bad)} bad rows skipped")
    for kind, path in report.outputs.items():
        print(f"  {kind}: {path}")
    return 0


def _remove_outputs(outputs: dict) -> None:
    """Remove the empty files a conversion with no usable row wrote."""
    import shutil
    from pathlib import Path

    for path in outputs.values():
        p = Path(path)
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists():
            p.unlink()


def run_sft(args: argparse.Namespace) -> int:
    from minio3_ext.eval.evaluate import read_records
    from minio3_ext.eval.sft import write_sft_data

    check_inputs(args.trajectories, "--input", files_only=True)
    out = check_out_dir(args.out, "--out")
    records = []
    for path in args.trajectories:
        got = [r for r in read_records(path) if isinstance(r, dict)]
        if not any(isinstance(r.get("turns"), list) for r in got):
            raise UserError(f"--input {path}: no trajectory records (JSON lines with 'turns')")
        records.extend(got)
    if args.strict:
        from minio3_ext.eval.sft import SFTError, trajectory_to_conversation
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            for t in records:
                if args.all or t.get("verdict") == 1:
                    try:
                        trajectory_to_conversation(t, tmp)
                    except (SFTError, KeyError, ValueError) as e:
                        print(f"minio3 data sft: {t.get('id')} sample {t.get('sample', 0)}: {e} "
                              "(nothing written: --strict)", file=sys.stderr)
                        return 1
    report = write_sft_data(records, out, only_correct=not args.all)
    for line in report["unusable"]:
        print(f"skipped {line}", file=sys.stderr)
    print(f"{report['kept']} conversations written to {out} "
          f"({report['not_correct']} not judged correct, {len(report['unusable'])} unusable)")
    if report["kept"] == 0:
        print("minio3 data sft: no usable trajectory" + ("" if args.all else " judged correct (--all keeps the others)"),
              file=sys.stderr)
        return 1
    return 0


def run_import_coldstart(args: argparse.Namespace) -> int:
    from minio3_ext.data.coldstart_import import ColdstartError, StrictFailure, import_coldstart

    try:
        report = import_coldstart(args.input, args.out, image_root=args.image_root, strict=args.strict,
                                  limit=args.limit, allow_outside_root=args.allow_outside_root)
    except (ColdstartError, ValueError, FileNotFoundError) as e:
        print(f"minio3 data import-coldstart: {e}", file=sys.stderr)
        return 1 if isinstance(e, StrictFailure) else 2
    for bad in report.bad:
        print(f"skipped row {bad.index}: {bad.reason}", file=sys.stderr)
    print(f"{report.kept} of {report.rows} rows kept, {len(report.bad)} bad; images: {report.images_referenced} "
          f"referenced, {report.images_written} written")
    for kind, path in report.outputs.items():
        print(f"  {kind}: {path}")
    return 0
