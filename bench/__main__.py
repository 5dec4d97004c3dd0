"""``python -m bench [--quick] [--only NAME]``: run the benchmarks, print one table.

Every module in :data:`BENCHMARKS` exposes ``run(quick: bool) -> list[Row]``; each
row carries its own baseline measured in the same run. Exit status 1 when a goal is
missed or a benchmark fails, so CI notices.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
import traceback

from bench.common import Row

#: Benchmark modules, in table order.
BENCHMARKS = [
    "bench.image_bank",
    "bench.masked_grpo",
    "bench.judge",
    "bench.trl_memory",
    "bench.verl_memory",
    "bench.eval_throughput",
    "bench.dialect_cost",
]

_HEADER = ("what", "value", "baseline", "ratio", "goal", "ok")


def _fmt(value: float, unit: str) -> str:
    if unit == "calls":
        return f"{value:g} {unit}"
    return f"{value:.3g} {unit}" if abs(value) < 100 else f"{value:.0f} {unit}"


def format_table(rows: list[Row]) -> str:
    """Render rows as an aligned plain-text table (markdown-compatible)."""
    cells = [_HEADER] + [
        (r.name, _fmt(r.value, r.unit), _fmt(r.baseline, r.unit), f"{r.ratio:.3f}x", r.goal, "yes" if r.ok else "NO")
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(_HEADER))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    notes = [f"- {r.name}: {r.detail}" for r in rows if r.detail]
    return "\n".join(lines + ([""] + notes if notes else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (CI)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only this benchmark module (e.g. image_bank); repeatable")
    args = parser.parse_args(argv)
    names = [m.rsplit(".", 1)[-1] for m in BENCHMARKS]
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {names}")
    selected = [m for m, n in zip(BENCHMARKS, names) if not args.only or n in args.only]

    rows: list[Row] = []
    failed: list[str] = []
    t_start = time.perf_counter()
    for module_name in selected:
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(module_name)
            rows += module.run(args.quick)
        except Exception:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(module_name)
        print(f"[bench] {module_name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    mode = "quick" if args.quick else "full"
    print(f"minio3_ext benchmarks ({mode}) on {machine_description()}; {time.perf_counter() - t_start:.0f} s\n")
    print(format_table(rows))
    if failed:
        print(f"\nFAILED to run: {', '.join(failed)}")
    missed = [r.name for r in rows if not r.ok]
    if missed:
        print(f"\nGoals missed: {len(missed)} of {len(rows)}")
    return 1 if failed or missed else 0


def machine_description() -> str:
    """CPU model, usable CPUs, memory, OS and Python: what a reader needs to compare figures."""
    cpu, mem = platform.processor() or platform.machine(), ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
        with open("/proc/meminfo") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return f"{cpu}, {cpus} CPUs{mem}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


if __name__ == "__main__":
    sys.exit(main())
