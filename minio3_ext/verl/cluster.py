"""Check, before a multi-node run, that every Ray node imports the same minio3_ext and
verl (version and absolute path) and that the plugin registers there::

    python -m minio3_ext.verl.cluster          # RAY_ADDRESS=auto: the running cluster

Ray workers import whatever ``minio3_ext`` their node's Python finds; verl swallows
plugin import errors, so a node without the package (or with another copy) would fail
deep inside a rollout or silently run other code. One task is pinned to each alive
node; the command prints one line per node and exits 1 naming the nodes that differ.
(Alternative to installing on every node: ship the package with Ray's runtime
environment, ``ray.init(runtime_env={"py_modules": [minio3_ext]})`` / ``ray job submit
--runtime-env-json``; the check then sees the shipped copy.)
"""

from __future__ import annotations

import os
import sys
from typing import Any, Mapping, Sequence

__all__ = ["node_report", "compare", "cluster_reports", "main"]


def node_report() -> dict[str, Any]:
    """What this process imports (runs on each node)."""
    import socket

    import verl

    import minio3_ext
    from minio3_ext import verl as mv

    try:
        from importlib.metadata import version

        pkg_version = version("minio3-ext")
    except Exception:  # noqa: BLE001 - not installed as a distribution (e.g. PYTHONPATH)
        pkg_version = "unknown"
    return {
        "host": socket.gethostname(),
        "minio3_ext": os.path.dirname(os.path.abspath(minio3_ext.__file__)),
        "minio3_ext_version": pkg_version,
        "verl": getattr(verl, "__version__", "unknown"),
        "verl_path": os.path.dirname(os.path.abspath(verl.__file__)),
        "problems": mv.registration_problems(),
    }


_KEYS = ("minio3_ext", "minio3_ext_version", "verl", "verl_path")


def compare(reports: Sequence[Mapping[str, Any]]) -> list[str]:
    """Problems: nodes whose imports differ from the first node's, or where the plugin
    did not register. Empty when the cluster is consistent."""
    if not reports:
        return ["no Ray node reported"]
    ref = reports[0]
    out = []
    for r in reports:
        diff = [f"{k}={r.get(k)!r} (node {ref['host']}: {ref.get(k)!r})" for k in _KEYS if r.get(k) != ref.get(k)]
        if diff:
            out.append(f"node {r['host']}: " + ", ".join(diff))
        if r.get("problems"):
            out.append(f"node {r['host']}: " + "; ".join(r["problems"]))
    return out


def cluster_reports(address: str | None = None) -> list[dict[str, Any]]:
    """One :func:`node_report` per alive Ray node (connects to ``address``, default ``auto``)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    started = not ray.is_initialized()
    if started:
        ray.init(address=address or os.environ.get("RAY_ADDRESS", "auto"), log_to_driver=False)
    try:
        task = ray.remote(num_cpus=0)(node_report)
        nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
        refs = [task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote() for n in nodes]
        return ray.get(refs)
    finally:
        if started:
            ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        reports = cluster_reports(argv[0] if argv else None)
    except Exception as e:  # noqa: BLE001 - one line, no traceback
        print(f"error: cannot query the Ray cluster: {e}", file=sys.stderr)
        return 1
    for r in reports:
        print(f"{r['host']}: minio3_ext {r['minio3_ext_version']} at {r['minio3_ext']}, verl {r['verl']} at {r['verl_path']}")
    problems = compare(reports)
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
