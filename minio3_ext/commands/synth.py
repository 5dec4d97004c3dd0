"""``minio3 synth``: write a synthetic visual-search dataset (JSONL + JPEG images).

    minio3 synth --out data/synth --n 64 --seed 0 [--width 4000 --height 3000]

See :mod:`minio3_ext.data.synthetic` for what the images and rows contain.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="generate synthetic visual-search rows (one small target among distractors)",
        description="Write OUT/rows.jsonl and OUT/images/*.jpg, deterministic by --seed.",
    )
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--n", type=int, default=8, help="number of rows (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--width", type=int, default=4000, help="image width in pixels (default 4000)")
    parser.add_argument("--height", type=int, default=3000, help="image height in pixels (default 3000)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from minio3_ext.data.synthetic import generate

    try:
        path = generate(args.out, args.n, seed=args.seed, width=args.width, height=args.height)
    except ValueError as exc:
        raise SystemExit(f"minio3 synth: {exc}") from exc
    print(f"wrote {args.n} rows to {path}")
    return 0
