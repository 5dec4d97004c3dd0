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


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("show", help="render trajectories to an HTML page", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trajectories", nargs="+", help="trajectory JSONL file(s)")
    parser.add_argument("--out", required=True, help="HTML file to write")
    parser.add_argument("--embed", action="store_true", help="put images inside the page as data URIs")
    parser.add_argument("--budget", type=int, default=None, help="show each trajectory cut to this turn budget")
    parser.add_argument("--only", choices=("all", "correct", "wrong", "unscored", "overturn"), default="all")
    parser.add_argument("--id", action="append", default=None, help="only these item ids (repeatable)")
    parser.add_argument("--limit", type=int, default=100, help="at most N trajectories (0 = all)")
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
    from minio3_ext.eval.report import write_trajectory_html
    from minio3_ext.eval.runner import at_budget

    records = []
    for path in args.trajectories:
        try:
            records.extend(r for r in read_records(path) if isinstance(r, dict) and isinstance(r.get("turns"), list))
        except OSError as e:
            print(f"minio3 show: {e}", file=sys.stderr)
            return 2
    if args.budget is not None:
        try:
            records = [at_budget(r, args.budget) if "budget" in r else r for r in records]
        except ValueError as e:
            print(f"minio3 show: {e}", file=sys.stderr)
            return 2
    ids = set(args.id or [])
    records = [r for r in records if _keep(r, args.only) and (not ids or str(r.get("id")) in ids)]
    if args.limit:
        records = records[: args.limit]
    out = write_trajectory_html(records, args.out, embed=args.embed)
    print(f"wrote {out} ({len(records)} trajectories)")
    return 0
