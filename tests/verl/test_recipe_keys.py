"""Every override the recipes set is read by the code that runs them (verl 0.9.1 or the
plugin): a key that composes in Hydra but that nothing reads is a silent no-op.

"Read" is decided on the installed sources, scoped to the entry point: the v1 RL
trainer's code (verl minus the legacy trainer, its async fork and the SFT-only files)
plus ``minio3_ext/verl`` for ``main_ppo``; the SFT trainer, its dataset and the engine
/ config dataclasses it builds for ``sft_trainer``, where ``trainer.*`` keys must be
read by the SFT trainer itself. A read is ``.leaf``, ``["leaf"]``, ``get("leaf"`` or ``f(cfg, "leaf"``;
generic leaf names (``enable``, ``name``, ``path``, ...) also need their parent section
(``parent.leaf`` or a file that names the parent); an assignment ``self.x = ...leaf...``
whose ``self.x`` is never used again does not count (``data.truncation`` in verl's
RL dataset). ``reward_kwargs.*`` must be parameters of the configured reward function.
"""

from __future__ import annotations

import functools
import inspect
import re
from pathlib import Path

import pytest
import verl

import minio3_ext.verl as mv
from minio3_ext.verl.recipe import read_overrides

from test_recipes import ENV, RECIPES

VERL = Path(verl.__file__).parent
PLUGIN = Path(mv.__file__).parent
LEGACY_ONLY = ("trainer/ppo/ray_trainer.py", "trainer/main_ppo_v0.py", "experimental/fully_async_policy/",
               "workers/rollout/hf_rollout.py", "workers/rollout/naive/", "utils/config.py")
SFT_ONLY = ("trainer/sft_trainer", "utils/dataset/multiturn_sft_dataset.py")
SFT_SCOPE = ("trainer/sft_trainer.py", "utils/dataset/multiturn_sft_dataset.py", "utils/dataset/dataset_utils.py",
             "workers/config/", "workers/engine/", "workers/engine_workers.py", "workers/utils/losses.py",
             "utils/checkpoint/", "utils/torch_functional.py", "utils/tracking.py", "utils/model.py",
             "utils/fsdp_utils.py", "utils/dataset/vision_utils.py")
GENERIC = {"enable", "name", "path", "n", "mode", "type", "metric", "format", "lr", "size", "strategy"}


@functools.lru_cache(maxsize=None)
def _sources(scope: str) -> dict[str, str]:
    out = {}
    for path in VERL.rglob("*.py"):
        rel = path.relative_to(VERL).as_posix()
        if rel.startswith("tests/"):
            continue
        if scope == "rl" and (rel.startswith(LEGACY_ONLY) or rel.startswith(SFT_ONLY)):
            continue
        if scope == "sft" and not rel.startswith(SFT_SCOPE):
            continue
        if scope == "sft_trainer" and rel != "trainer/sft_trainer.py":
            continue
        out[f"verl/{rel}"] = _code(path.read_text(errors="replace"))
    if scope == "rl":
        for path in PLUGIN.rglob("*.py"):
            out[f"minio3_ext/verl/{path.relative_to(PLUGIN).as_posix()}"] = _code(path.read_text())
    return out


def _code(text: str) -> str:
    """Source without comments and docstrings (rough, enough to avoid matching prose)."""
    text = re.sub(r'"""[\s\S]*?"""', "", text)
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def _reads(src: str, leaf: str, parent: str | None) -> bool:
    pats = [rf"\.{leaf}\b", rf"\[\s*['\"]{leaf}['\"]\s*\]", rf"get\(\s*['\"]{leaf}['\"]",
            rf"\(\s*[\w.]+\s*,\s*['\"]{leaf}['\"]"]  # getattr(cfg, "leaf"), _config_get(cfg, "leaf", ...)
    if leaf in GENERIC and parent:
        if not re.search(rf"\b{parent}\b", src):
            return False
    for m in re.finditer("|".join(pats), src):
        line = src[src.rfind("\n", 0, m.start()) + 1: src.find("\n", m.end())]
        dead = re.match(r"\s*self\.(\w+)\s*=", line)
        if dead and not re.search(rf"self\.{dead.group(1)}\b(?!\s*=[^=])", src.replace(line, "", 1)):
            continue  # stored on self and never used again
        if re.match(rf"\s*{leaf}\s*:", line):
            continue  # a dataclass field declaration is not a read
        return True
    return False


def _is_read(key: str, scope: str) -> bool:
    parts = key.lstrip("+").split(".")
    if "reward_kwargs" in parts:  # passed to the reward function as keyword arguments
        return True  # checked by test_reward_kwargs_are_parameters_of_the_reward_function
    leaf, parent = parts[-1], parts[-2] if len(parts) > 1 else None
    return any(_reads(src, leaf, parent) for src in _sources(scope).values())


def _keys(name: str) -> list[str]:
    return [o.split("=", 1)[0] for o in read_overrides(RECIPES / name, ENV)]


RL_FILES = sorted(p.name for p in RECIPES.glob("masked_grpo*.args"))


@pytest.mark.parametrize("name", RL_FILES)
def test_every_rl_override_is_read_by_the_v1_trainer_or_the_plugin(name):
    dead = [k for k in _keys(name) if not _is_read(k, "rl")]
    assert not dead, f"{name}: nothing in verl's v1 trainer or minio3_ext.verl reads {dead}"


def test_every_sft_override_is_read_by_verls_sft_trainer():
    dead = []
    for key in _keys("coldstart_sft.args"):
        scope = "sft_trainer" if key.lstrip("+").startswith("trainer.") else "sft"
        if not _is_read(key, scope):
            dead.append(key)
    assert not dead, f"coldstart_sft.args: verl's SFT trainer never reads {dead}"


def test_reward_kwargs_are_parameters_of_the_reward_function():
    from minio3_ext.verl import reward

    params = inspect.signature(reward.compute_score).parameters
    kwargs = [k.split("reward_kwargs.", 1)[1] for k in _keys("masked_grpo.args") if "reward_kwargs." in k]
    assert kwargs and all(k in params for k in kwargs)


@pytest.mark.parametrize("key, scope", [
    ("data.truncation", "rl"),  # RLHFDataset stores it and never uses it
    ("actor_rollout_ref.rollout.multi_turn.enable", "rl"),  # legacy trainer only
    ("actor_rollout_ref.rollout.val_kwargs.do_sample", "rl"),  # legacy trainer only
    ("trainer.nnodes", "sft_trainer"),  # torchrun decides; the SFT trainer never reads it
    ("trainer.n_gpus_per_node", "sft_trainer"),
])
def test_the_check_catches_the_known_dead_keys(key, scope):
    assert not _is_read(key, scope)


@pytest.mark.parametrize("key, scope", [
    ("data.max_prompt_length", "rl"), ("actor_rollout_ref.rollout.multi_turn.max_assistant_turns", "rl"),
    ("algorithm.filter_groups.enable", "rl"), ("data.truncation", "sft"), ("trainer.total_epochs", "sft_trainer"),
])
def test_the_check_accepts_keys_verl_reads(key, scope):
    assert _is_read(key, scope)
