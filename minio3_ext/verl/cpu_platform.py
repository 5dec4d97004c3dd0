"""A CPU platform for verl 0.9.1 (device ``cpu``, collectives over ``gloo``), registered
through verl's own platform registry (:class:`verl.plugin.platform.PlatformRegistry`).

verl 0.9.1 ships the ``nvidia``, ``huawei`` and ``amd`` platforms; on a machine with none of
them it falls back to ``nvidia`` (device ``cuda``, backend ``nccl``) and nothing starts. Its
registry is the documented way to add one ("External plugins loaded by
``VERL_USE_EXTERNAL_MODULES`` or discovered via setuptools entry_points can register their
own platform classes"): this module is imported by the package's ``verl.plugins`` entry
point in every process that imports verl, and the platform is chosen with
``VERL_PLATFORM=cpu`` (verl's own override; nothing changes without it).

Ray has no CPU "accelerator": verl asks its placement groups for one ``GPU`` bundle per
worker and reads the worker's device index from Ray's accelerator ids. So this platform
keeps Ray's ``GPU`` resource name, and the CPU run starts Ray with that many logical
GPUs (``+ray_kwargs.ray_init.num_gpus=N``): slots for workers, no device behind them.

One thing the registry cannot express: verl's process-group helpers
(``verl.utils.distributed.initialize_global_process_group`` and ``..._ray``) always build the
backend string ``f"cpu:gloo,{device}:{backend}"``, which on this platform is
``"cpu:gloo,cpu:gloo"``, and torch refuses a device named twice. Under ``VERL_PLATFORM=cpu``
only, :func:`install_process_group_backend` (run when verl loads the plugin, before verl
imports its workers) makes both use ``"cpu:gloo"``, the string verl's own checkpoint engine
passes; the two functions are seams of :mod:`minio3_ext.verl.compat`.

verl's FSDP training engines are registered for the ``cuda`` and ``npu`` devices only; under
``VERL_PLATFORM=cpu`` :func:`register_fsdp_engines` registers the same classes for ``cpu``
through verl's public ``EngineRegistry.register`` (torch's FSDP2 runs on CPU over gloo).
"""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Optional

import torch
from verl.plugin.platform import PlatformBase, PlatformRegistry

__all__ = ["NAME", "PlatformCPU"]

#: ``VERL_PLATFORM`` value that selects it.
NAME = "cpu"
#: The process-group backend on this platform (verl's own CPU-only string, checkpoint_engine/base.py).
BACKEND = "cpu:gloo"


@PlatformRegistry.register(platform=NAME)
class PlatformCPU(PlatformBase):
    """Everything on the host: :mod:`~minio3_ext.verl.cpu_device` (``torch.cpu`` and more) as the device module, gloo for collectives."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> ModuleType:
        from . import cpu_device  # torch.cpu + the torch.cuda-style calls verl makes

        return cpu_device

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # never auto-detected: a GPU host keeps its platform; VERL_PLATFORM=cpu selects this one
        return False

    def current_device(self) -> str:
        # what torch.cpu.current_device() returns: verl passes it as a device to .to()/device=,
        # where an int would mean accelerator index 0 ("no accelerator device")
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: Optional[int] = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None  # the CPU allocator has no such settings

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[Optional[int], Optional[int]]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        # Ray sets it for the logical GPUs; nothing on CPU reads it
        return "CUDA_VISIBLE_DEVICES"

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        return "GPU"  # logical GPUs: see the module docstring

    def ray_resource_options(self, num_gpus: float) -> dict[str, Any]:
        return {"num_gpus": num_gpus}

    def ray_noset_envvars(self) -> list[str]:
        return ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"]

    def is_ipc_supported(self) -> bool:
        return False  # weights go to the rollout engine over its own path, not CUDA IPC

    def rollout_env_vars(self) -> dict[str, str]:
        return {}

    def cudart(self) -> Any:
        return None


def selected() -> bool:
    """Whether this process asked verl for the CPU platform."""
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == NAME


def install_process_group_backend() -> bool:
    """Under ``VERL_PLATFORM=cpu``: verl's process-group helpers use :data:`BACKEND` instead of
    ``"cpu:gloo,cpu:gloo"`` (see the module docstring). Returns whether it did anything."""
    if not selected():
        return False
    import verl.utils.distributed as dist

    ray_init = dist.initialize_global_process_group_ray
    if getattr(ray_init, "__minio3_cpu__", False):
        return True

    @functools.wraps(ray_init)
    def initialize_global_process_group_ray(timeout_second=None, backend=None):
        return ray_init(timeout_second=timeout_second, backend=backend or BACKEND)

    @functools.wraps(dist.initialize_global_process_group)
    def initialize_global_process_group(timeout_second=36000):
        # verl's body, with the one backend: torchrun's env gives the ranks (as verl reads them)
        ray_init(timeout_second=timeout_second, backend=BACKEND)
        return int(os.environ["LOCAL_RANK"]), int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])

    for fn in (initialize_global_process_group_ray, initialize_global_process_group):
        fn.__minio3_cpu__ = True
        setattr(dist, fn.__name__, fn)
    return True


#: verl's FSDP engine classes (verl/workers/engine/fsdp/transformer_impl.py), by model type.
FSDP_ENGINES = {"language_model": "FSDPEngineWithLMHead", "value_model": "FSDPEngineWithValueHead"}


def register_fsdp_engines() -> bool:
    """Under ``VERL_PLATFORM=cpu``: verl's FSDP engines serve the ``cpu`` device too (verl's
    public ``EngineRegistry``). Returns whether it did anything."""
    if not selected():
        return False
    from verl.workers.engine import EngineRegistry
    from verl.workers.engine.fsdp import transformer_impl

    for model_type, cls_name in FSDP_ENGINES.items():
        try:
            EngineRegistry.get_engine_cls(model_type, "fsdp2")  # already served (device cpu)
        except ValueError:
            EngineRegistry.register(model_type=model_type, backend=["fsdp", "fsdp2"], device=NAME)(
                getattr(transformer_impl, cls_name))
    return True


install_process_group_backend()
register_fsdp_engines()
