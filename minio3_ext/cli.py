"""The ``minio3`` command. Each subcommand lives in ``minio3_ext/commands/<name>.py``
and exposes ``add_parser(subparsers)``; the parser it adds sets ``func``.
Subcommand modules import their heavy dependencies inside ``func`` so that
``minio3 --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: Subcommand modules, in help order. Add a line to add a command.
COMMANDS = [
    "synth",
    "demo",
    "judge",
    "data",
    "coldstart",
    "eval",
    "show",
    "doctor",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minio3", description="Mini-o3 visual search for verl and TRL")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"minio3_ext.commands.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
