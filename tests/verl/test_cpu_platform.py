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
from verl.utils.device import get_device_id, get_device_name, get_nccl_backend, get_resource_name, get_torch_device
import torch
# verl moves tensors and models with .to(get_device_id()): an int there means an accelerator
moved = str(torch.ones(1).to(get_device_id()).device) if get_device_name() == "cpu" else None
print(json.dumps({"moved": moved, "registered": list(PlatformRegistry.registered_names()), "device": get_device_name(),
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
    assert (got["device"], got["backend"], got["module"]) == ("cpu", "gloo", "minio3_ext.verl.cpu_device")
    assert got["moved"] == "cpu"
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


_PG_PROBE = """
import json, os, torch.distributed as tdist
import verl  # loads the plugin
import verl.utils.distributed as dist
from verl.workers import engine_workers  # imports initialize_global_process_group_ray by name
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ["PROBE_PORT"], RANK="0", LOCAL_RANK="0", WORLD_SIZE="1")
try:
    ranks = dist.initialize_global_process_group(timeout_second=60)
    got = {"ranks": list(ranks), "backend": str(tdist.get_backend()), "world": tdist.get_world_size()}
    tdist.destroy_process_group()
except ValueError as e:
    got = {"error": str(e).split(".")[0]}
got["workers_use_it"] = engine_workers.initialize_global_process_group_ray is dist.initialize_global_process_group_ray
print(json.dumps(got))
"""


def _pg_probe(platform: str | None) -> dict:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "VERL_PLATFORM"}
    env.update(PYTHONPATH=str(ROOT), PROBE_PORT=str(port))
    if platform:
        env["VERL_PLATFORM"] = platform
    done = subprocess.run([sys.executable, "-c", _PG_PROBE], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_verl_process_group_helpers_start_a_gloo_group_on_the_cpu_platform():
    # verl's own string would be "cpu:gloo,cpu:gloo", which torch refuses ("Duplicate device type cpu")
    got = _pg_probe("cpu")
    assert got == {"ranks": [0, 0, 1], "backend": "cpu:gloo", "world": 1, "workers_use_it": True}


def test_process_group_helpers_are_verls_own_without_the_cpu_platform():
    import verl.utils.distributed as dist
    from minio3_ext.verl import cpu_platform

    assert not cpu_platform.selected() or os.environ.get("VERL_PLATFORM") == "cpu"
    if not cpu_platform.selected():
        assert not getattr(dist.initialize_global_process_group_ray, "__minio3_cpu__", False)
        assert dist.initialize_global_process_group_ray.__module__ == "verl.utils.distributed"


_ENGINE_PROBE = """
import json, verl
from verl.workers.engine import EngineRegistry
got = {}
for model_type in ("language_model", "value_model"):
    try:
        got[model_type] = EngineRegistry.get_engine_cls(model_type, "fsdp2").__name__
    except ValueError as e:
        got[model_type] = str(e)
print(json.dumps(got))
"""


def test_verls_fsdp_engines_serve_the_cpu_device():
    env = {k: v for k, v in os.environ.items() if k != "VERL_PLATFORM"}
    env.update(PYTHONPATH=str(ROOT), VERL_PLATFORM="cpu")
    done = subprocess.run([sys.executable, "-c", _ENGINE_PROBE], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got == {"language_model": "FSDPEngineWithLMHead", "value_model": "FSDPEngineWithValueHead"}


def test_every_device_module_call_in_verl_resolves_on_the_cpu_device_module():
    import re

    import verl
    from minio3_ext.verl import cpu_device

    called = set()
    for path in Path(verl.__file__).parent.rglob("*.py"):
        called |= set(re.findall(r"get_torch_device\(\)\.(\w+)", path.read_text(errors="replace")))
    assert {"empty_cache", "memory_reserved", "get_rng_state", "mem_get_info"} <= called  # the scan works
    assert sorted(name for name in called if not hasattr(cpu_device, name)) == []
    free, total = cpu_device.mem_get_info()
    assert 0 < free <= total


def test_vllm_cpu_plugin_does_nothing_without_verl_platform_cpu(monkeypatch):
    from minio3_ext.verl import vllm_cpu

    monkeypatch.delenv("VERL_PLATFORM", raising=False)
    assert vllm_cpu.register() is False  # and imports no vLLM (the dev venv has none)
