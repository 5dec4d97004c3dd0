"""The core must stay framework-free (issue 2): importing it pulls in no ML stack."""

import subprocess
import sys

FRAMEWORKS = {"torch", "verl", "trl", "transformers", "ray", "vllm"}


def test_core_import_pulls_in_no_framework():
    code = (
        "import minio3_ext.core, sys\n"
        f"leaked = {sorted(FRAMEWORKS)!r}\n"
        "leaked = sorted(set(leaked) & set(sys.modules))\n"
        "assert not leaked, leaked\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_core_modules_import_only_stdlib_pillow_numpy():
    """Every module of the core, imported alone, adds no third-party top-level package
    other than PIL and numpy (catches a heavy import hidden in a rarely used module)."""
    code = (
        "import sys, pkgutil, importlib\n"
        "before = set(sys.modules)\n"
        "import minio3_ext.core as core\n"
        "for m in pkgutil.iter_modules(core.__path__):\n"
        "    importlib.import_module('minio3_ext.core.' + m.name)\n"
        "tops = {n.split('.')[0] for n in set(sys.modules) - before}\n"
        "extra = sorted(t for t in tops if t not in sys.stdlib_module_names and t not in {'PIL', 'numpy', 'minio3_ext'} and not t.startswith('_'))\n"
        "assert not extra, extra\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_core_modules_import_each_other_without_a_cycle():
    """Every import between core modules (deferred ones inside functions included) points
    one way: the dialect builds on the actions, never the reverse."""
    import ast
    from graphlib import CycleError, TopologicalSorter
    from pathlib import Path

    import minio3_ext.core as core

    folder = Path(core.__file__).parent
    names = {p.stem for p in folder.glob("*.py")} - {"__init__"}
    graph = {}
    for name in names:
        tree = ast.parse((folder / f"{name}.py").read_text())
        graph[name] = {n.module.split(".")[0] for n in ast.walk(tree)
                       if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module} & names
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as e:
        raise AssertionError(f"import cycle in minio3_ext.core: {e.args[1]}") from None
