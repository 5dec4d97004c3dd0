"""vLLM (CPU build) as verl's rollout engine on the CPU platform: a ``vllm.general_plugins``
entry point, loaded by vLLM in each of its processes, active only under ``VERL_PLATFORM=cpu``.

On CPU, vLLM's unquantized linear layers finish loading by packing their weight for oneDNN
and replacing the ``weight`` parameter with an empty one
(``vllm.model_executor.layers.utils.dispatch_cpu_unquantized_gemm(layer, remove_weight=True)``).
verl updates the rollout's weights after every optimizer step by calling the model's
``load_weights`` again (``vLLMColocateWorkerExtension._update_weights``), which then dies
with ``AttributeError: 'Parameter' object has no attribute 'weight_loader'``; the lm_head
(``remove_weight=False``) would keep generating from its stale packed copy.

Under ``VERL_PLATFORM=cpu`` this plugin makes those layers take vLLM's own plain branch
(the one it uses for MLA's ``kv_b_proj``, ``_cpu_skip_gemm_dispatch``): ``F.linear`` on the
live parameter, so a weight update is what the next generation uses. The two methods it
wraps are seams in :data:`VLLM_SEAMS` (``tests/verl/test_vllm_cpu_venv.py`` checks them in
the vLLM venv).
"""

from __future__ import annotations

import functools

from . import cpu_platform

#: (module, class) whose ``process_weights_after_loading(self, layer)`` is wrapped.
VLLM_SEAMS = (
    ("vllm.model_executor.layers.linear", "UnquantizedLinearMethod"),
    ("vllm.model_executor.layers.vocab_parallel_embedding", "UnquantizedEmbeddingMethod"),
)


def _plain_linear(original):
    @functools.wraps(original)
    def process_weights_after_loading(self, layer):
        import torch

        if getattr(layer, "weight", None) is not None and layer.weight.ndim == 2:
            layer.cpu_linear = torch.nn.functional.linear  # vLLM's plain CPU branch, weight kept
            return None
        return original(self, layer)

    process_weights_after_loading.__minio3_cpu__ = True
    return process_weights_after_loading


def register() -> bool:
    """The plugin: under ``VERL_PLATFORM=cpu`` on vLLM's CPU platform, keep linear weights live."""
    if not cpu_platform.selected():
        return False
    import importlib

    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return False
    for module, cls_name in VLLM_SEAMS:
        cls = getattr(importlib.import_module(module), cls_name)
        if not getattr(cls.process_weights_after_loading, "__minio3_cpu__", False):
            cls.process_weights_after_loading = _plain_linear(cls.process_weights_after_loading)
    return True
