"""The evaluation item and the trajectory record shared by eval, coldstart and show.

**Item** (what an episode is run on; :func:`as_item` builds it from any row)::

    {"id": str, "question": str, "ground_truth": str, "image": str (path of the original),
     "data_source": str, "benchmark": str, "difficulty": str}

**Trajectory record** (a JSON-able dict; one line of an eval/coldstart JSONL file)::

    {**item,
     "sample": int,                # index of this sample among the K of Avg@K
     "budget": int,                # turn budget the record is for (max_turns)
     "dialect": "minio3" | "hermes",
     "turns": [{
         "turn": int,              # 1-based
         "assistant": str,         # the model's full turn text (thought + action)
         "action": {"turn", "kind", "source", "box", "box_in_original", "error"},
                                   # Episode.summary()["actions"] entry: kind is zoom,
                                   # answer, invalid, none or a tool name; boxes are raw
                                   # pixels [x0, y0, x1, y1] of source / of the original
         "observation_index": int | None,   # N of observation_N this turn produced
         "observation_image": str | None,   # saved crop (what the model saw), if saved
         "observation_text": str | None,    # text of the next user/tool turn, if any
     }, ...],
     "num_turns": int,
     "answer": str | None,          # content of <answer>, None when there is none
     "termination_reason": "answered" | "no_answer" | "turn_limit" | "image_limit" | "context_limit",
     "is_overturn": bool,           # masked in training
     "termination_detail": str | None,  # the server's words when it ended the episode
                                    # (context or per-prompt image limit)
     "image_sha256": str | None,    # sha256 of the image file's bytes (resume key, with question
                                    # and ground truth; None when the file could not be read)
     "settings": {flag: value},     # every run setting that shaped the record, judge's included
                                    # ("judge.<field>"): resume key
     "verdict": 1 | 0 | None,       # judge: correct / wrong (or no answer) / unscorable
     "scored": bool}                # False until the judge ran

Training-log trajectories may carry only a subset; viewers treat every field but
``turns`` as optional.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ..core.answers import ground_truth_text

__all__ = ["as_item", "item_key", "benchmark_of", "settings_mismatch", "content_mismatch", "identical_sample_items",
           "SETTINGS_KEY", "IMAGE_HASH_KEY", "CONTENT_KEYS"]

SETTINGS_KEY = "settings"
IMAGE_HASH_KEY = "image_sha256"
#: What a record is of, besides its id: a resumed record must match the item on each.
CONTENT_KEYS = ("question", "ground_truth", IMAGE_HASH_KEY)

_DIFFICULTIES = ("easy", "medium", "hard", "train")


def benchmark_of(data_source: str) -> tuple[str, str]:
    """Split a data source such as ``visual_probe_hard`` into (benchmark, difficulty).

    >>> benchmark_of("visual_probe_hard")
    ('visual_probe', 'hard')
    >>> benchmark_of("vstar_bench")
    ('vstar_bench', 'all')
    """
    for level in _DIFFICULTIES:
        if data_source.endswith("_" + level):
            return data_source[: -len(level) - 1], level
    return data_source, "all"


def as_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """Normalise an evaluation item, a dataset row (doc_id, problem, images,
    solution, data_source) or a verl parquet row into an item. Raises ``ValueError``
    naming the row and the missing key."""
    extra = row.get("extra_info") if isinstance(row.get("extra_info"), Mapping) else {}
    reward = row.get("reward_model") if isinstance(row.get("reward_model"), Mapping) else {}

    def pick(*keys: str, where=(row, extra)) -> Any:
        for src in where:
            for key in keys:
                if src.get(key) is not None:
                    return src[key]
        return None

    item_id = pick("id", "doc_id", "index")
    question = pick("question", "problem")
    truth = pick("ground_truth", "solution", "answer")
    if truth is None:
        truth = reward.get("ground_truth")
    image = pick("image", "image_path")
    if image is None:
        images = pick("images")
        if isinstance(images, (list, tuple)) and images:
            image = images[0]
    if isinstance(image, Mapping):
        image = image.get("image") or image.get("path")
    label = item_id if item_id is not None else "<no id>"
    for key, value in (("id", item_id), ("question", question), ("ground_truth", truth), ("image", image)):
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError(f"row {label}: missing {key!r}")
    try:
        truth = ground_truth_text(truth)
    except ValueError as e:
        raise ValueError(f"row {label}: {e}") from None
    data_source = str(pick("data_source") or "unknown")
    bench, level = benchmark_of(data_source)
    return {
        "id": str(item_id),
        "question": str(question).replace("<image>", "").strip(),
        "ground_truth": truth,
        "image": str(image),
        "data_source": data_source,
        "benchmark": str(pick("benchmark") or bench),
        "difficulty": str(pick("difficulty") or level),
    }


def item_key(record: Mapping[str, Any]) -> tuple[str, int]:
    """Identity of a trajectory in a resumable file: (item id, sample index)."""
    return str(record["id"]), int(record.get("sample", 0))


def _show(value: Any, limit: int = 120) -> str:
    if isinstance(value, str):
        text = repr(value)
    else:
        import json

        text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def settings_mismatch(records: Iterable[Mapping[str, Any]], settings: Mapping[str, Any]) -> str | None:
    """Why ``records`` (read from a results file) cannot be resumed under ``settings``
    (``{flag: value}`` of the run), or ``None`` when every record was made with them.

    The message names each differing setting with both values. Records made without
    settings (an older ``minio3``) never match: a resume must not mix runs.
    """
    wanted = {k: v for k, v in settings.items()}
    for r in records:
        have = r.get(SETTINGS_KEY)
        if not isinstance(have, Mapping):
            return (f"record {r.get('id')!r} sample {r.get('sample', 0)} carries no run settings "
                    "(written by an older minio3), so it cannot be resumed safely")
        diff = [k for k in sorted(set(wanted) | set(have)) if have.get(k) != wanted.get(k)]
        if diff:
            return "; ".join(f"{k} was {_show(have.get(k))} in the earlier run, {_show(wanted.get(k))} now" for k in diff)
    return None


def content_mismatch(record: Mapping[str, Any], item: Mapping[str, Any]) -> str | None:
    """Why ``record`` (same id) was not made on ``item`` (:data:`CONTENT_KEYS`: question,
    ground truth, image bytes), or ``None`` when it was. ``item`` carries ``image_sha256``."""
    where = f"record {record.get('id')!r} sample {record.get('sample', 0)}"
    if IMAGE_HASH_KEY not in record:
        return f"{where} carries no image hash (written by an older minio3), so it cannot be resumed safely"
    for key in CONTENT_KEYS:
        if record.get(key) != item.get(key):
            what = {"ground_truth": "ground truth", IMAGE_HASH_KEY: "image (sha256 of its bytes)"}.get(key, key)
            return f"{where} was made on another {what}: {_show(record.get(key))} then, {_show(item.get(key))} now"
    return None


def identical_sample_items(records: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """(items whose samples are all identical, items with at least two samples).
    Identical samples mean the server decoded greedily: Avg@K is then Avg@1."""
    by_item: dict[str, list[tuple]] = {}
    for r in records:
        turns = tuple(str(t.get("assistant", "")) for t in r.get("turns") or [])
        by_item.setdefault(str(r.get("id")), []).append(turns)
    multi = [v for v in by_item.values() if len(v) >= 2]
    same = sum(1 for v in multi if len(set(v)) == 1)
    return same, len(multi)
