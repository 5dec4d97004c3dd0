"""Evaluation runs: Avg@K × turn budgets against a policy, judged, resumable.

Each (item, sample) is run once under the largest budget, judged once, and appended
as one trajectory record (:mod:`.records`) to the output JSONL as soon as it is
scored. A rerun with the same output skips every (id, sample) already in the file,
so a killed run resumes without rescoring anything. Resume is keyed on content: a
record is reused only when its question, ground truth and image bytes (sha256) are the
item's and its settings (every sampling, episode and judge setting) are the run's;
otherwise the run is refused, naming what differs. Smaller budgets are derived
from prefixes (:func:`.runner.at_budget`) when the summary is built.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..core.episode import EpisodeConfig
from ..core.images import ImageBank, ImageError
from ..core.paths import PathEscapeError, confine, file_sha256
from .metrics import DEFAULT_BUDGETS
from .records import IMAGE_HASH_KEY, SETTINGS_KEY, as_item, content_mismatch, item_key, settings_mismatch
from .runner import Policy, approx_tokens, run_episode, score_trajectory

__all__ = ["EvalStats", "RecordWriteError", "load_items", "read_records", "repair_tail", "evaluate"]


class RecordWriteError(OSError):
    """A record could not be appended to the output (a full disk, a quota): the run
    stops; every record written before it is complete and a rerun resumes from them."""

    def __init__(self, path: Path, error: OSError):
        super().__init__(error.errno, error.strerror or str(error), str(path))


def load_items(paths: Iterable[str | os.PathLike[str]], image_root: str | None = None, limit: int | None = None,
               *, allow_outside_root: bool = False) -> list[dict[str, Any]]:
    """Evaluation items from data files; relative image paths resolve against
    ``image_root`` or the data file's folder, and every image must lie inside it unless
    ``allow_outside_root`` (:func:`~minio3_ext.core.paths.confine`). Duplicate ids are an error."""
    from ..data.readers import read_rows

    items: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for path in paths:
        base = Path(image_root) if image_root else Path(path).resolve().parent
        if Path(path).is_dir() and not image_root:
            base = Path(path).resolve()
        for row in read_rows(path):
            where = row.pop("_source", str(path))
            try:
                item = as_item(row)
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
            try:
                confine(item["image"], base, allow_outside=allow_outside_root)
            except PathEscapeError as e:
                raise ValueError(f"{where}: row {item['id']}: {e}") from None
            if not os.path.isabs(item["image"]):
                item["image"] = str(base / item["image"])
            if item["id"] in seen:
                raise ValueError(f"{where}: duplicate id {item['id']!r} (first at {seen[item['id']]})")
            seen[item["id"]] = where
            items.append(item)
            if limit is not None and len(items) >= limit:
                return items
    return items


def repair_tail(path: Path) -> int:
    """Cut a partial last line (a run killed mid-write); return the bytes removed."""
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        pos = size
        while pos > 0:
            step = min(65536, pos)
            f.seek(pos - step)
            chunk = f.read(step)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                keep = pos - step + nl + 1
                break
            pos -= step
        else:
            keep = 0
        if keep < size:
            f.seek(keep)
            if _is_record(f.read(size - keep)):  # a whole record whose newline was never written
                f.write(b"\n")
                return 0
            f.truncate(keep)
        return size - keep


def _is_record(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


class OutputLocked(ValueError):
    """Another ``minio3 eval`` is writing the same output file."""


@contextlib.contextmanager
def output_lock(path: Path):
    """Hold an exclusive lock on ``path`` (created if missing) for a run; a second run on
    the same file fails at once with :class:`OutputLocked` instead of duplicating records."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputLocked(f"{path}: another minio3 eval is writing this file; wait for it, "
                               "or use another --out") from None
        yield
    finally:
        os.close(fd)


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Trajectory records of a JSONL file; unreadable lines are reported, not fatal."""
    out = []
    p = Path(path)
    if not p.exists():
        return out
    with open(p, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                print(f"warning: {p}:{lineno}: skipping unreadable record ({e.msg})")
    return out


@dataclass
class EvalStats:
    done_before: int = 0
    ran: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


async def evaluate(
    policy: Policy,
    items: Sequence[Mapping[str, Any]],
    out_path: str | os.PathLike[str],
    judge: Any,
    *,
    k: int = 1,
    budgets: Sequence[int] = DEFAULT_BUDGETS,
    episode: EpisodeConfig = EpisodeConfig(),
    concurrency: int = 8,
    crops_dir: str | None = None,
    bank: ImageBank | None = None,
    progress: bool = False,
    settings: Mapping[str, Any] | None = None,
    token_counter: Callable[[str], int] | None = approx_tokens,
    exact_context: bool = False,
) -> EvalStats:
    """Run the missing (item, sample) pairs and append their scored records to ``out_path``.

    An episode whose policy call fails (endpoint down, image unreadable) is counted
    in ``EvalStats.failed`` and left out of the file, so the next run retries it.
    ``settings`` (``{flag: value}``, everything that shapes a record) is stored in each
    record; resuming a file whose records were made with other settings raises
    ``ValueError`` naming the differing settings (:func:`.records.settings_mismatch`).
    ``token_counter`` and ``exact_context`` count the context (:func:`.runner.run_episode`).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        return await _evaluate(policy, items, out, judge, k, budgets, episode, concurrency, crops_dir, bank,
                               progress, settings, token_counter, exact_context)


async def _evaluate(policy, items, out, judge, k, budgets, episode, concurrency, crops_dir, bank, progress,
                    settings, token_counter, exact_context) -> EvalStats:
    repair_tail(out)
    existing = [r for r in read_records(out) if "id" in r]
    config = replace(episode, max_turns=max(budgets))
    short = [r for r in existing if int(r.get("budget", 0)) < config.max_turns and r.get("termination_reason") == "turn_limit"]
    if short:
        raise ValueError(
            f"{out}: {len(short)} record(s) ran under a budget of {short[0].get('budget')} turns and hit it; "
            f"budget {config.max_turns} cannot be derived from them. Use a new output file for larger budgets.")
    if settings is not None:
        settings = {**settings, **judge_settings(judge)}
    if settings is not None and existing:
        why = settings_mismatch(existing, settings)
        if why:
            raise ValueError(f"{out} holds records of another run ({why}); use another output, "
                             "or rerun with the earlier settings to resume")
    hashes = await image_hashes(items)
    by_id = {str(item["id"]): {**item, IMAGE_HASH_KEY: hashes[str(item["image"])]} for item in items}
    for r in existing:
        item = by_id.get(str(r["id"]))
        why = content_mismatch(r, item) if item is not None else None
        if why:
            raise ValueError(f"{out} holds a record of another item ({why}); use another output for changed data")
    done = {item_key(r) for r in existing}
    todo = [(item, s) for item in items for s in range(k) if (str(item["id"]), s) not in done]
    stats = EvalStats(done_before=len(done))
    bank = bank or ImageBank()
    sem = asyncio.Semaphore(concurrency)
    lock = asyncio.Lock()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="eval", unit="episode")

    with open(out, "a", encoding="utf-8") as f:
        async def one(item: Mapping[str, Any], sample: int) -> None:
            async with sem:
                try:
                    traj = await run_episode(policy, item, config, bank, sample=sample, crops_dir=crops_dir,
                                             token_counter=token_counter, exact_context=exact_context)
                    await score_trajectory(traj, judge)
                    traj[IMAGE_HASH_KEY] = hashes[str(item["image"])]
                    if settings is not None:
                        traj[SETTINGS_KEY] = dict(settings)
                except (ImageError, OSError, ValueError, RuntimeError, asyncio.TimeoutError, _api_errors()) as e:
                    stats.failed += 1
                    stats.errors.append(f"{item['id']} sample {sample}: {type(e).__name__}: {e}")
                    return
                finally:
                    if bar is not None:
                        bar.update(1)
            async with lock:
                try:
                    f.write(json.dumps(traj, ensure_ascii=False) + "\n")
                    f.flush()
                except OSError as e:  # ENOSPC, EDQUOT, EIO: no later record can be kept either
                    raise RecordWriteError(out, e) from e
                stats.ran += 1

        await asyncio.gather(*(one(item, s) for item, s in todo))
    if bar is not None:
        bar.close()
    return stats


def judge_settings(judge: Any) -> dict[str, Any]:
    """The judge's verdict-deciding settings as run settings (``judge.<field>``), from its
    resolved config (flags, ``MINIO3_JUDGE_*`` and the preset's defaults alike)."""
    config = getattr(judge, "config", None)
    key = getattr(config, "key_settings", None)
    if key is None:
        return {"judge": type(judge).__name__}
    return {f"judge.{name}": value for name, value in key().items()}


async def image_hashes(items: Sequence[Mapping[str, Any]], concurrency: int = 8) -> dict[str, str | None]:
    """sha256 of each item's image file (:func:`~minio3_ext.core.paths.file_sha256`), in worker
    threads; ``None`` for a file that cannot be read (its episode fails and is retried later).
    A path that is not a regular file raises ``ValueError`` naming the item."""
    sem = asyncio.Semaphore(concurrency)
    paths = list(dict.fromkeys(str(item["image"]) for item in items))
    owner = {str(item["image"]): item["id"] for item in items}

    async def one(path: str) -> str | None:
        async with sem:
            try:
                return await asyncio.to_thread(file_sha256, path)
            except PathEscapeError as e:
                raise ValueError(f"item {owner[path]}: {e}") from None
            except OSError:
                return None

    return dict(zip(paths, await asyncio.gather(*(one(p) for p in paths))))


def _api_errors() -> type[BaseException]:
    try:
        from openai import OpenAIError
    except ImportError:  # the judge extra is not installed
        return RuntimeError
    return OpenAIError
