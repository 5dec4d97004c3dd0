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
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Optional

import torch
from verl.plugin.platform import PlatformBase, PlatformRegistry

__all__ = ["NAME", "PlatformCPU"]

#: ``VERL_PLATFORM`` value that selects it.
NAME = "cpu"


@PlatformRegistry.register(platform=NAME)
class PlatformCPU(PlatformBase):
    """Everything on the host: ``torch.cpu`` as the device module, gloo for collectives."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> ModuleType:
        return torch.cpu

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # never auto-detected: a GPU host keeps its platform; VERL_PLATFORM=cpu selects this one
        return False

    def current_device(self) -> int:
        return 0

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
