"""Mini-o3 for verl: loaded through the ``verl.plugins`` entry point in every process
that imports verl (driver and Ray workers).

Importing this package registers, with verl's own registries:

- the ``masked_grpo`` advantage estimator and the ``masked_vanilla`` policy loss (:mod:`.estimator`);
- the ``minio3``, ``minio3_released`` and ``minio3_hermes`` tool parsers, which read
  turns by the core dialect (:mod:`.tool_parser`);
- the ``minio3_agent`` agent loop (:mod:`.agent_loop`), whose every rule comes from
  the episode's dialect;
- the ``cpu`` platform (:mod:`.cpu_platform`: device ``cpu``, gloo), used only when
  ``VERL_PLATFORM=cpu`` (``minio3 smoke verl``).

Image tools (:mod:`.tool`: ``ZoomTool``, and ``ImageToolAdapter`` for any tool
registered with the core, e.g. by another package's ``minio3_ext.tools`` entry point)
and the reward function (:mod:`.reward`) are loaded by path from configs shipped in
``config/`` (:func:`config_path`); the v1 replay buffer (:mod:`.sampler`) through
``trainer.v1.sampler.custom_sampler``; the SFT vision freeze (:mod:`.freeze_vision`)
through ``model.external_lib``. verl swallows plugin import errors, so
:func:`registration_problems` (used by ``minio3 doctor``) says loudly what is missing,
including the private verl seams of :mod:`.compat` that no longer hold.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from . import agent_loop, cpu_platform, estimator, tool_parser

__all__ = ["config_path", "registration_problems", "ESTIMATOR", "AGENT_LOOP", "TOOL_PARSER"]

ESTIMATOR = estimator.NAME
AGENT_LOOP = agent_loop.NAME
TOOL_PARSER = tool_parser.NAME


def config_path(name: str) -> Path:
    """Absolute path of a YAML shipped in ``minio3_ext/verl/config`` (for Hydra overrides)."""
    path = Path(str(resources.files(__name__) / "config" / name))
    if not path.is_file():
        shipped = sorted(p.name for p in path.parent.glob("*.yaml"))
        raise FileNotFoundError(f"no shipped verl config {name!r}; available: {shipped}")
    return path


def registration_problems() -> list[str]:
    """What is *not* registered with verl in this process (empty when all is well)."""
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry
    from verl.experimental.agent_loop.tool_parser import ToolParser
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, POLICY_LOSS_REGISTRY

    problems = []
    if ADV_ESTIMATOR_REGISTRY.get(ESTIMATOR) is not estimator.compute_masked_grpo_advantage:
        problems.append(f"advantage estimator {ESTIMATOR!r} is not registered")
    if POLICY_LOSS_REGISTRY.get(estimator.POLICY_LOSS) is not estimator.compute_policy_loss_masked_vanilla:
        problems.append(f"policy loss {estimator.POLICY_LOSS!r} is not registered")
    if _agent_loop_registry.get(AGENT_LOOP, {}).get("_target_") != "minio3_ext.verl.agent_loop.MiniO3AgentLoop":
        problems.append(f"agent loop {AGENT_LOOP!r} is not registered")
    for name, cls in ((tool_parser.NAME, tool_parser.Minio3ToolParser),
                      (tool_parser.RELEASED_NAME, tool_parser.Minio3ReleasedToolParser),
                      (tool_parser.HERMES_NAME, tool_parser.Minio3HermesToolParser)):
        if ToolParser._registry.get(name) is not cls:
            problems.append(f"tool parser {name!r} is not registered")
    if cpu_platform.selected():
        from verl.plugin.platform import PlatformRegistry

        if PlatformRegistry.get(cpu_platform.NAME) is not cpu_platform.PlatformCPU:
            problems.append(f"VERL_PLATFORM={cpu_platform.NAME} but the CPU platform is not registered")
    from . import compat

    return problems + compat.problems()
