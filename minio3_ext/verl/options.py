"""Build core configs from verl-side option mappings (tool YAML ``config``, agent-loop
YAML entries), failing with one line that names the unknown, ambiguous or overridden key
and the valid ones.

Keys are the :class:`EpisodeConfig`, :class:`CropRules` and :class:`ViewRules` field
names and the dialect's options (``coords``, ``preset``, ``tools``, ``clamp``…,
:data:`~minio3_ext.core.episode.DIALECT_OPTIONS`, beside ``dialect``, its name); a name both rule sets have (``min_side``, ``max_aspect_ratio``) is spelt with
the set it goes to: ``crop_min_side`` / ``view_min_side``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from minio3_ext.core import CropRules, EpisodeConfig, ViewRules
from minio3_ext.core.episode import DIALECT_OPTIONS

__all__ = ["episode_config", "EPISODE_KEYS"]

_CROP = {f.name for f in dataclasses.fields(CropRules)}
_VIEW = {f.name for f in dataclasses.fields(ViewRules)}
_SHARED = _CROP & _VIEW
#: option key → (part of the config, field name)
_ROUTES: dict[str, tuple[str, str]] = {
    **{k: ("episode", k) for k in {f.name for f in dataclasses.fields(EpisodeConfig)} - {"crop", "view"}},
    **{k: ("episode", k) for k in DIALECT_OPTIONS},  # the dialect's options, beside its name (``dialect``)
    **{(f"crop_{k}" if k in _SHARED else k): ("crop", k) for k in _CROP},
    **{(f"view_{k}" if k in _SHARED else k): ("view", k) for k in _VIEW},
}
EPISODE_KEYS = frozenset(_ROUTES)


def episode_config(
    options: Mapping[str, Any] | None, *, where: str, ignore: set[str] = frozenset(),
    set_by: Mapping[str, str] | None = None, **overrides: Any,
) -> EpisodeConfig:
    """An :class:`EpisodeConfig` from flat ``options`` (episode, crop and view keys).

    ``where`` names the config the options came from, for error messages; keys in
    ``ignore`` belong to the caller (e.g. verl's own ``type``): they pass, and are
    listed among the valid keys. ``overrides`` are the
    values the caller decides; an option naming one of them is refused (it would be
    replaced), with ``set_by[key]`` saying where the user sets it instead.
    """
    options = dict(options or {})
    valid = sorted((EPISODE_KEYS - set(overrides)) | set(ignore))
    for key in sorted(options):
        if key in overrides:
            raise ValueError(f"{where}: {key!r} cannot be set here, it is taken from "
                             f"{(set_by or {}).get(key, 'the caller')}; valid keys: {valid}")
        if key in _SHARED:
            raise ValueError(f"{where}: {key!r} is ambiguous; use 'crop_{key}' (crops) or 'view_{key}' "
                             f"(model-facing views); valid keys: {valid}")
        if key not in EPISODE_KEYS and key not in ignore:
            raise ValueError(f"{where}: unknown option {key!r}; valid keys: {valid}")
    parts: dict[str, dict[str, Any]] = {"episode": {}, "crop": {}, "view": {}}
    for key, value in options.items():
        if key in _ROUTES:
            part, name = _ROUTES[key]
            parts[part][name] = value
    episode = parts["episode"]
    if "masked_reasons" in episode:
        episode["masked_reasons"] = frozenset(episode["masked_reasons"])
    episode.update(overrides)
    try:
        return EpisodeConfig.from_options(crop=CropRules(**parts["crop"]), view=ViewRules(**parts["view"]), **episode)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from e
