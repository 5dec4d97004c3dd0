"""Build core configs from verl-side option mappings (tool YAML ``config``, agent-loop
YAML entries), failing with a message that names the unknown or bad key."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from minio3_ext.core import CropRules, EpisodeConfig, ViewRules

__all__ = ["episode_config", "EPISODE_KEYS"]

_CROP_KEYS = {f.name for f in dataclasses.fields(CropRules)}
_VIEW_KEYS = {f.name for f in dataclasses.fields(ViewRules)}
_EPISODE_KEYS = {f.name for f in dataclasses.fields(EpisodeConfig)} - {"crop", "view"}
EPISODE_KEYS = frozenset(_EPISODE_KEYS | _CROP_KEYS | _VIEW_KEYS)


def episode_config(options: Mapping[str, Any] | None, *, where: str, ignore: set[str] = frozenset(), **overrides: Any) -> EpisodeConfig:
    """An :class:`EpisodeConfig` from flat ``options`` (episode, crop and view keys).

    ``where`` names the config the options came from, for error messages; keys in
    ``ignore`` belong to the caller (e.g. verl's own ``type``).
    """
    options = dict(options or {})
    unknown = sorted(set(options) - EPISODE_KEYS - set(ignore))
    if unknown:
        raise ValueError(f"{where}: unknown option(s) {unknown}; expected some of {sorted(EPISODE_KEYS)}")
    crop = {k: options.pop(k) for k in list(options) if k in _CROP_KEYS}
    view = {k: options.pop(k) for k in list(options) if k in _VIEW_KEYS}
    episode = {k: v for k, v in options.items() if k in _EPISODE_KEYS}
    if "masked_reasons" in episode:
        episode["masked_reasons"] = frozenset(episode["masked_reasons"])
    if "tools" in episode:
        episode["tools"] = tuple(episode["tools"])
    episode.update(overrides)
    try:
        return EpisodeConfig(crop=CropRules(**crop), view=ViewRules(**view), **episode)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from e
