"""The CPU platform registered with verl's own platform registry: selected only by
``VERL_PLATFORM=cpu``, and then verl's device helpers say ``cpu`` / ``gloo``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import json, verl  # verl loads the package's verl.plugins entry point (minio3_ext.verl)
from verl.plugin.platform import PlatformRegistry
from verl.utils.device import get_device_name, get_nccl_backend, get_resource_name, get_torch_device
print(json.dumps({"registered": list(PlatformRegistry.registered_names()), "device": get_device_name(),
                  "backend": get_nccl_backend(), "ray": get_resource_name(),
                  "module": get_torch_device().__name__}))
"""


def _probe(platform: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "VERL_PLATFORM"}
    env["PYTHONPATH"] = str(ROOT)
    if platform:
        env["VERL_PLATFORM"] = platform
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # a fresh interpreter importing verl (~12 s); the fast lane has PlatformCPU in-process and check_verl's fresh probe
def test_verl_platform_cpu_gives_cpu_device_and_gloo_through_verls_helpers():
    got = _probe("cpu")
    assert "cpu" in got["registered"]
    assert (got["device"], got["backend"], got["module"]) == ("cpu", "gloo", "torch.cpu")
    assert got["ray"] == "GPU"  # logical GPU slots in Ray (the smoke starts Ray with num_gpus)


@pytest.mark.slow  # a fresh interpreter importing verl (~10 s)
def test_without_verl_platform_the_cpu_platform_is_not_auto_detected():
    got = _probe(None)
    assert "cpu" in got["registered"] and got["device"] != "cpu"  # verl's own detection / fallback


def test_cpu_platform_implements_every_abstract_method():
    from minio3_ext.verl.cpu_platform import PlatformCPU

    platform = PlatformCPU()  # TypeError if verl's PlatformBase grew an abstract method it lacks
    assert platform.is_available() and not platform.is_platform_available(use_smi_check=True)
    assert platform.ray_resource_options(1) == {"num_gpus": 1}
    with platform.nvtx_range("x"):
        pass


def test_doctor_names_a_cpu_platform_that_is_not_ours(monkeypatch):
    import minio3_ext.verl as plugin
    from minio3_ext.verl.cpu_platform import PlatformCPU
    from verl.plugin.platform import PlatformRegistry

    monkeypatch.setenv("VERL_PLATFORM", "cpu")
    assert not [p for p in plugin.registration_problems() if "CPU platform" in p]

    class Other(PlatformCPU):
        pass

    PlatformRegistry.register("cpu")(Other)  # verl's public registry: another plugin took the name
    try:
        assert [p for p in plugin.registration_problems() if "CPU platform" in p]
    finally:
        PlatformRegistry.register("cpu")(PlatformCPU)
