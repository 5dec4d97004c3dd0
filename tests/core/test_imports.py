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
