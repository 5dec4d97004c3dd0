"""Mini-o3 for verl: loaded through the ``verl.plugins`` entry point in every process
that imports verl (driver and Ray workers).

Importing this package registers, with verl's own registries:

- the ``masked_grpo`` advantage estimator (:mod:`.estimator`);
- the ``minio3`` tool parser for the ``<grounding>`` dialect (:mod:`.tool_parser`);
- the ``minio3_agent`` agent loop (:mod:`.agent_loop`).

The zoom tool (:mod:`.tool`) and the reward function (:mod:`.reward`) are loaded
by path from configs. verl swallows plugin import errors, so :func:`check_registration`
(used by ``minio3 doctor``) says loudly what is missing.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from . import estimator

__all__ = ["estimator", "config_path", "check_registration", "ESTIMATOR", "AGENT_LOOP", "TOOL_PARSER"]

ESTIMATOR = estimator.NAME


def config_path(name: str) -> Path:
    """Absolute path of a YAML shipped in ``minio3_ext/verl/config`` (for Hydra overrides)."""
    path = Path(str(resources.files(__name__) / "config" / name))
    if not path.is_file():
        shipped = sorted(p.name for p in path.parent.glob("*.yaml"))
        raise FileNotFoundError(f"no shipped verl config {name!r}; available: {shipped}")
    return path
