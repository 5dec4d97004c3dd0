"""``minio3 doctor``: check that the framework plugins really registered.

verl loads ``verl.plugins`` entry points in every process that imports verl and
*swallows* their import errors, so a broken install shows up only as "Unknown
advantage estimator" deep inside a Ray worker. This command starts a fresh
interpreter that does nothing but ``import verl`` and checks verl's own registries
for ``masked_grpo``, the ``minio3_agent`` loop and the ``minio3`` tool parser; when
something is missing it imports the plugin directly to show the error verl hid.
When the TRL adapter is installed it checks that it imports too. Then it lists every
registered image tool (built in or from another package's ``minio3_ext.tools`` entry
point) and where it is exposed: the core episode, the system prompt, TRL's
``ZoomEnvironment`` and verl's tool config (``ImageToolAdapter``).

Each framework is reported on its own line; one that is not installed is skipped, so
a TRL-only or verl-only install is fine::

    minio3 doctor            # exit 0 when every installed framework is set up, 1 otherwise
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from ._args import HelpFormatter, positive_float

#: Runs in a fresh interpreter: only ``import verl``, then read verl's registries.
_VERL_PROBE = r"""
import json, traceback
import verl
from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, POLICY_LOSS_REGISTRY
from verl.experimental.agent_loop.agent_loop import _agent_loop_registry
from verl.experimental.agent_loop.tool_parser import ToolParser
found = {
    "advantage estimator 'masked_grpo'": "masked_grpo" in ADV_ESTIMATOR_REGISTRY,
    "policy loss 'masked_vanilla'": "masked_vanilla" in POLICY_LOSS_REGISTRY,
    "agent loop 'minio3_agent'": "minio3_agent" in _agent_loop_registry,
    "tool parser 'minio3'": "minio3" in ToolParser._registry,
}
error = None
if not all(found.values()):
    try:
        import minio3_ext.verl
    except Exception:
        error = traceback.format_exc()
print(json.dumps({"found": found, "error": error}))
"""

_TRL_PROBE = "import minio3_ext.trl"

#: Runs in a fresh interpreter: every registered image tool and where it is exposed.
_TOOLS_PROBE = r"""
import importlib.util, json, sys
from importlib.metadata import entry_points
from minio3_ext.core.tools import ENTRY_POINT_GROUP, available_tools, get_tool
from minio3_ext.core.dialect import get_dialect
names = available_tools()
origin = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
out = {}
for name in names:
    cls = type(get_tool(name))
    row = {"from": origin.get(name, f"{cls.__module__}:{cls.__qualname__}"),
           "prompt": name in get_dialect("minio3", tools=tuple(names)).system_prompt()}
    if "trl" in sys.argv[1:]:
        try:
            from minio3_ext.core.episode import EpisodeConfig
            from minio3_ext.trl.environment import ZoomEnvironment
            env = ZoomEnvironment(EpisodeConfig(dialect=get_dialect("hermes", tools=tuple(names))))
            row["trl"] = callable(getattr(env, name, None))
        except Exception as e:
            row["trl"] = f"{type(e).__name__}: {e}"
    if "verl" in sys.argv[1:]:
        try:
            from minio3_ext.verl.tool import ImageToolAdapter
            ImageToolAdapter({"type": "native", "tool": name})
            row["verl"] = True
        except Exception as e:
            row["verl"] = f"{type(e).__name__}: {e}"
    out[name] = row
print(json.dumps(out))
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check that the verl/TRL plugins are registered (fails loudly otherwise)",
        description="Start a fresh interpreter that only imports verl and check its registries; check that the "
                    "TRL adapter imports. Frameworks that are not installed are skipped.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--timeout", type=positive_float, default=300.0, help="seconds allowed per probe")
    parser.set_defaults(func=run)


class ProbeTimeout(Exception):
    pass


def _probe(code: str, timeout: float, *argv: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ProbeTimeout(f"the check did not finish within --timeout {timeout:g} s") from None


def installed(name: str) -> bool:
    """Whether ``name`` can be imported in this environment."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


#: framework → (module that must be importable, install command from a clone)
FRAMEWORKS = {"verl": ("verl", 'pip install -e ".[verl]"'), "trl": ("trl", 'pip install -e ".[trl]"')}


def check_verl(timeout: float = 300.0) -> list[str]:
    """Problems with the verl plugin, seen from a fresh interpreter (empty: all good)."""
    if not installed("verl"):
        return ["verl is not installed: " + FRAMEWORKS["verl"][1]]
    policy = os.environ.get("VERL_USE_EXTERNAL_PLUGINS", "auto").strip().lower()
    problems = []
    if policy == "none" or (policy != "auto" and "minio3" not in {p.strip() for p in policy.split(",")}):
        problems.append(f"VERL_USE_EXTERNAL_PLUGINS={policy!r} stops verl from loading the 'minio3' plugin")
    proc = _probe(_VERL_PROBE, timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return problems + [f"'import verl' failed in a fresh interpreter:\n{proc.stderr.strip()[-2000:]}"]
    report = json.loads(lines[-1])
    missing = [name for name, ok in report["found"].items() if not ok]
    if missing:
        problems.append("not registered after 'import verl': " + ", ".join(missing))
        if report["error"]:
            problems.append("importing the plugin fails with:\n" + report["error"].strip())
        elif policy == "auto":
            problems.append("the plugin imports fine by hand: is minio3-ext installed in this environment "
                            "(its 'verl.plugins' entry point missing)?")
    return problems


def check_trl(timeout: float = 300.0) -> list[str]:
    """Problems with the TRL adapter (empty when it imports or is not part of this install)."""
    if not installed("trl"):
        return ["trl is not installed: " + FRAMEWORKS["trl"][1]]
    proc = _probe(_TRL_PROBE, timeout)
    return [] if proc.returncode == 0 else [f"'import minio3_ext.trl' failed:\n{proc.stderr.strip()[-2000:]}"]


def check_tools(timeout: float = 300.0, frameworks: tuple[str, ...] | None = None) -> tuple[list[str], list[str]]:
    """``(lines, problems)``: every registered image tool, where it comes from, and whether
    the system prompt, TRL's ``ZoomEnvironment`` and verl's tool config (for the installed
    ``frameworks``; default: those importable here) expose it."""
    if frameworks is None:
        frameworks = tuple(name for name, (module, _) in FRAMEWORKS.items() if installed(module))
    proc = _probe(_TOOLS_PROBE, timeout, *frameworks)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return [], [f"listing the image tools failed:\n{proc.stderr.strip()[-2000:]}"]
    out, problems = [], []
    for name, row in json.loads(lines[-1]).items():
        where = ["core episode", "system prompt" if row["prompt"] else "NOT in the system prompt"]
        for fw, how in (("trl", f"TRL ZoomEnvironment.{name} with EpisodeConfig(dialect=get_dialect(..., tools=(..., {name!r})))"),
                        ("verl", f"verl tool YAML: class_name minio3_ext.verl.tool.ImageToolAdapter, config.tool {name}")):
            if fw in row:
                if row[fw] is True:
                    where.append(how)
                else:
                    problems.append(f"image tool {name!r} is not usable from {fw}: {row[fw]}")
        if not row["prompt"]:
            problems.append(f"image tool {name!r} is not described in the system prompt")
        out.append(f"       tool {name} ({row['from']}): " + "; ".join(where))
    return out, problems


def run(args: argparse.Namespace) -> int:
    present = [name for name, (module, _) in FRAMEWORKS.items() if installed(module)]
    if not present:
        print('minio3 doctor: neither verl nor TRL is installed; from a clone: pip install -e ".[verl]" '
              'or pip install -e ".[trl]"', file=sys.stderr)
        return 1
    failed = False
    # The probes are independent fresh interpreters: start them together, report in order.
    checks = {"verl": check_verl, "trl": check_trl}
    with ThreadPoolExecutor(max_workers=len(present) + 1) as pool:
        started = {name: pool.submit(checks[name], args.timeout) for name in present}
        tools_check = pool.submit(check_tools, args.timeout, tuple(present))
        for name, (_, install) in FRAMEWORKS.items():
            if name not in started:
                print(f"[skip] {name}: not installed (to use it: {install})")
                continue
            try:
                problems = started[name].result()
            except ProbeTimeout as e:
                problems = [str(e)]
            if problems:
                failed = True
                print(f"[FAIL] {name}:", file=sys.stderr)
                for p in problems:
                    print("  " + p.replace("\n", "\n  "), file=sys.stderr)
            else:
                print(f"[ok]   {name}")
        try:
            lines, problems = tools_check.result()
        except ProbeTimeout as e:
            lines, problems = [], [str(e)]
    print(f"[{'FAIL' if problems else 'ok'}]{'' if problems else '  '} image tools:")
    for line in lines:
        print(line)
    for p in problems:
        failed = True
        print("  " + p.replace("\n", "\n  "), file=sys.stderr)
    return 1 if failed else 0
