"""The ``minio3`` command. Each subcommand lives in ``minio3_ext/commands/<name>.py``
and exposes ``add_parser(subparsers)``; the parser it adds sets ``func``.
Subcommand modules import their heavy dependencies inside ``func`` so that
``minio3 --help`` stays fast.

User errors never print a traceback: a command raises
:class:`~minio3_ext.commands._args.UserError` (or an argparse type rejects a value)
and :func:`main` prints one line ``minio3 <command>: <message>`` and exits 2; Ctrl-C
exits 130 with one line. ``MINIO3_DEBUG=1`` re-raises instead, for bug reports.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from minio3_ext.commands._args import HelpFormatter, UserError

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
    "smoke",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minio3", description="Mini-o3 visual search for verl and TRL",
                                     formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"minio3_ext.commands.{name}").add_parser(sub)
    return parser


def _name(args: argparse.Namespace) -> str:
    parts = [getattr(args, "command", None) or ""]
    for key in ("data_command", "judge_command", "smoke_command"):
        if getattr(args, key, None):
            parts.append(getattr(args, key))
    return " ".join(p for p in parts if p)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    prefix = f"minio3 {_name(args)}"
    if os.environ.get("MINIO3_DEBUG"):
        return int(args.func(args) or 0)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"{prefix}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"\n{prefix}: interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError, FileExistsError) as e:
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"{prefix}: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"{prefix}: {where}{e.strerror}; free space and rerun the same command "
              "(an eval or coldstart run resumes from the records it saved)", file=sys.stderr)
        return 1
    except UnicodeDecodeError as e:
        print(f"{prefix}: input is not UTF-8 text ({e.reason} at byte {e.start})", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"{prefix}: out of memory (use smaller inputs or sizes)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
