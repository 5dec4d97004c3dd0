"""``minio3 show``: render trajectories (eval, coldstart or training logs) to HTML.

::

    minio3 show runs/vp_hard.jsonl --out runs/vp_hard.html --only wrong --limit 50

The page shows the original with every zoom box drawn and numbered by turn, each
crop (recut from the original when it was not saved), the thoughts, the answer and
the verdict. Images go to ``<out stem>_files/`` next to the page, or inside it with
``--embed``.
"""

from __future__ import annotations

import argparse
import sys

from ._args import HelpFormatter, UserError, check_inputs, check_out_file, int_range, positive_int


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("show", help="render trajectories to an HTML page", description=__doc__,
                                   formatter_class=HelpFormatter)
    parser.add_argument("trajectories", nargs="*", metavar="FILE", help="trajectory JSONL file(s)")
    parser.add_argument("--input", dest="inputs", action="append", default=[], metavar="FILE",
                        help="trajectory JSONL file (repeatable; same as the positional FILE)")
    parser.add_argument("--out", required=True, help="HTML file to write")
    parser.add_argument("--embed", action="store_true", help="put images inside the page as data URIs")
    parser.add_argument("--budget", type=positive_int, default=None,
                        help="show each trajectory cut to this turn budget (default: as run)")
    parser.add_argument("--only", choices=("all", "correct", "wrong", "unscored", "overturn"), default="all",
                        help="which trajectories to show")
    parser.add_argument("--id", action="append", default=None, help="only these item ids (repeatable; default: all)")
    parser.add_argument("--limit", type=int_range(0), default=100, help="at most N trajectories (0 = all)")
    parser.set_defaults(func=run)


def _keep(t: dict, only: str) -> bool:
    if only == "correct":
        return t.get("verdict") == 1
    if only == "wrong":
        return t.get("verdict") == 0
    if only == "unscored":
        return t.get("verdict") is None
    if only == "overturn":
        return bool(t.get("is_overturn"))
    return True


def run(args: argparse.Namespace) -> int:
    from minio3_ext.eval.evaluate import read_records
    from minio3_ext.eval.report import record_problem, write_trajectory_html
    from minio3_ext.eval.runner import at_budget

    paths = list(args.trajectories) + list(args.inputs)
    if not paths:
        raise UserError("name at least one trajectory JSONL file (FILE or --input)")
    check_inputs(paths, "trajectory file", files_only=True, text=True)
    out = check_out_file(args.out, "--out")
    records = []
    for path in paths:
        got = [r for r in read_records(path) if isinstance(r, dict) and "turns" in r]
        if not got:
            raise UserError(f"{path}: no trajectory records (JSON lines with 'turns')")
        for n, record in enumerate(got, 1):
            problem = record_problem(record)
            if problem:  # one line per malformed record, the others are shown
                print(f"skipped {path} record {n} (id {record.get('id')!r}): {problem}", file=sys.stderr)
            else:
                records.append((f"{path} record {n}", record))
    if not records:
        raise UserError(f"{' '.join(map(str, paths))}: no record can be shown (see above)")
    if args.budget is not None:
        cut = []
        for where, r in records:
            try:
                cut.append((where, at_budget(r, args.budget) if "budget" in r else r))
            except ValueError as e:
                raise UserError(f"--budget {args.budget}: {e}") from None
            except (KeyError, TypeError) as e:
                print(f"skipped {where} (id {r.get('id')!r}): cannot cut to --budget {args.budget}: "
                      f"missing or malformed {e}", file=sys.stderr)
        records = cut
    records = [r for _, r in records]
    ids = set(args.id or [])
    records = [r for r in records if _keep(r, args.only) and (not ids or str(r.get("id")) in ids)]
    if args.limit:
        records = records[: args.limit]
    out = write_trajectory_html(records, out, embed=args.embed)
    print(f"wrote {out} ({len(records)} trajectories)")
    return 0
