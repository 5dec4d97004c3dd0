"""``minio3 synth``: write a synthetic visual-search dataset (JSONL + JPEG images).

    minio3 synth --out data/synth --n 64 --seed 0 [--width 4000 --height 3000]

See :mod:`minio3_ext.data.synthetic` for what the images and rows contain.
"""

from __future__ import annotations

import argparse

from ._args import HelpFormatter, UserError, check_out_dir, int_range

#: Largest side and area ``synth`` draws (a 100000×100000 RGB canvas is 30 GB).
MAX_SIDE = 20_000
MAX_PIXELS = 100_000_000
MAX_ROWS = 1_000_000


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from minio3_ext.data.synthetic import MIN_SIDE

    parser = subparsers.add_parser(
        "synth",
        help="generate synthetic visual-search rows (one small target among distractors)",
        description="Write OUT/rows.jsonl and OUT/images/*.jpg, deterministic by --seed.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--n", type=int_range(1, MAX_ROWS), default=8, help="number of rows")
    parser.add_argument("--seed", type=int_range(0, 2**32 - 1), default=0, help="random seed")
    parser.add_argument("--width", type=int_range(MIN_SIDE, MAX_SIDE), default=4000, help="image width in pixels")
    parser.add_argument("--height", type=int_range(MIN_SIDE, MAX_SIDE), default=3000, help="image height in pixels")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from minio3_ext.data.synthetic import generate

    if args.width * args.height > MAX_PIXELS:
        raise UserError(f"--width {args.width} --height {args.height}: {args.width * args.height:,} pixels per image; "
                        f"at most {MAX_PIXELS:,}")
    out = check_out_dir(args.out, "--out")
    try:
        path = generate(out, args.n, seed=args.seed, width=args.width, height=args.height)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    print(f"wrote {args.n} rows to {path}")
    return 0
