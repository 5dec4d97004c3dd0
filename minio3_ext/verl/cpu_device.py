"""The device module of verl's CPU platform (:class:`~minio3_ext.verl.cpu_platform.PlatformCPU`):
``torch.cpu`` plus the ``torch.cuda``-style functions verl 0.9.1 calls on
``verl.utils.device.get_torch_device()``, with their host meanings.

verl treats the device module as ``torch.cuda`` (``empty_cache()`` after every step,
``memory_reserved()`` in its logs, ``get_rng_state()`` in checkpoints, ...); ``torch.cpu`` has
only part of that API. Here the cache and IPC calls do nothing (the CPU allocator has no
cache to free), the allocator counters are 0 (it keeps none), ``mem_get_info`` is the host's
available and total memory, and the RNG calls are torch's default (CPU) generator.
``tests/verl/test_cpu_platform.py`` checks that every ``get_torch_device().NAME`` in the
installed verl resolves here.
"""

from __future__ import annotations

import os
import platform as _platform

import torch


def __getattr__(name: str):
    return getattr(torch.cpu, name)  # current_device, synchronize, Stream, stream, device_count, ...


def is_available() -> bool:
    return True


def empty_cache() -> None:
    return None


def ipc_collect() -> None:
    return None


def set_per_process_memory_fraction(fraction: float, device=None) -> None:
    return None


def reset_peak_memory_stats(device=None) -> None:
    return None


def memory_allocated(device=None) -> int:
    return 0


def memory_reserved(device=None) -> int:
    return 0


def max_memory_allocated(device=None) -> int:
    return 0


def max_memory_reserved(device=None) -> int:
    return 0


def memory_stats(device=None) -> dict:
    return {}


def mem_get_info(device=None) -> tuple[int, int]:
    """``(free, total)`` bytes of host memory, like ``torch.cuda.mem_get_info``."""
    page = os.sysconf("SC_PAGE_SIZE")
    return os.sysconf("SC_AVPHYS_PAGES") * page, os.sysconf("SC_PHYS_PAGES") * page


def get_device_name(device=None) -> str:
    return _platform.processor() or "cpu"


def get_rng_state(device=None) -> torch.Tensor:
    return torch.get_rng_state()


def set_rng_state(new_state: torch.Tensor, device=None) -> None:
    torch.set_rng_state(new_state)


def manual_seed(seed: int) -> None:
    torch.manual_seed(seed)


def manual_seed_all(seed: int) -> None:
    torch.manual_seed(seed)
