"""Import the released cold-start data (``Mini-o3/Mini-o3-Coldstart-Dataset``, ~6k multi-turn trajectories)
as SFT data for verl and TRL: ``minio3 data import-coldstart --input FILE --out DIR``.

Accepted inputs (local files; nothing is downloaded):

- the **Hugging Face parquet** shards (``data/train-*.parquet``) or a folder of them,
  or a ``save_to_disk`` folder: columns ``conversations`` (the Python literal of a list
  of ``{"from", "value"}`` turns; a list is accepted too), ``images`` (list of
  ``{"bytes", "path"}``), ``image_names`` (file name per image), ``data_source``,
  ``sample_index``, ``rollout_index`` — the columns the released
  ``scripts/preprocess_coldstart.py`` reads;
- the **ShareGPT JSON** that script writes for LLaMA-Factory (``Mini-o3-Coldstart.json``):
  a list of ``{"conversations": [{"from": "system"|"human"|"gpt", "value"}], "images":
  [path, …]}``; relative image paths are under ``--image-root`` (default: the file's folder).

Every row is validated; a bad row is reported by its index and skipped (``strict``:
nothing is written). A row is good when: roles are an optional ``system`` turn then
``human``/``gpt`` alternating, starting with ``human`` and ending with ``gpt``; the
number of ``<image>`` slots equals the number of images; each ``gpt`` turn parses in
the ``minio3`` dialect (the core parser) — the last one as an answer, the others as a
zoom followed by a ``human`` turn with exactly one image, or as a failed action
followed by a ``human`` turn without an image (the released error turn); every
image exists and decodes.

Images are referenced, not copied, where possible: a path that exists is used as is
when its pixel count lies within the paper's limits (40,000–2,000,000); embedded bytes
are written once to ``DIR/images/`` (there is no file to reference); an image outside
the limits is written resized into them (the released pipeline resized it too).
verl rows carry ``min_pixels``/``max_pixels`` per image as well.

Outputs under ``DIR``: ``coldstart.verl.parquet`` (verl ``MultiTurnSFTDataset``:
``messages`` with ``<image>`` slots + ``images``), ``coldstart.trl.jsonl`` and
``coldstart.trl/`` (TRL ``SFTTrainer``: ``messages`` with content parts + ``images``
as file paths, so the dataset folder holds no image bytes), ``coldstart.report.json``.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from PIL import Image

from ..core.actions import Answer, Invalid
from ..core.dialect import get_dialect
from ..core.images import ImageError, ViewRules, load_image, resize_for_model
from ..core.paths import PathEscapeError, confine
from .export import trl_sft_row, verl_sft_row, write_jsonl, write_parquet
from .readers import read_rows

__all__ = ["ColdstartError", "StrictFailure", "ImportReport", "BadRow", "import_coldstart", "convert_conversation", "ROLE_MAP",
           "PIXEL_RULES"]

#: ShareGPT roles (the released LLaMA-Factory config's tags) → chat roles.
ROLE_MAP = {"system": "system", "human": "user", "gpt": "assistant"}
#: The paper's image pixel limits (SFT: 40k–2M).
PIXEL_RULES = ViewRules(min_pixels=40_000, max_pixels=2_000_000)
#: The released data was recorded by the released loop: its edge-case rules (boxes
#: clamped, ``observation_0`` = the original, any ``<grounding>`` makes a zoom) apply.
DIALECT = get_dialect("minio3", preset="released")
_SLOT = DIALECT.image_slot


class ColdstartError(ValueError):
    """The input as a whole is unusable (missing file, no rows, strict mode and a bad row)."""


class StrictFailure(ColdstartError):
    """``strict=True`` and a row is bad."""


@dataclass
class BadRow:
    index: int
    reason: str


@dataclass
class ImportReport:
    rows: int = 0
    kept: int = 0
    bad: list[BadRow] = field(default_factory=list)
    images_referenced: int = 0
    images_written: int = 0
    outputs: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "kept": self.kept, "images_referenced": self.images_referenced,
                "images_written": self.images_written, "outputs": self.outputs,
                "bad": [{"index": b.index, "reason": b.reason} for b in self.bad]}


class _RowError(ValueError):
    pass


def _turns(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, str):  # the parquet stores the Python literal of the list; never eval() it
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise _RowError("conversations is neither a list nor a readable literal of one") from None
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not value:
        raise _RowError("conversations must be a non-empty list of {from, value} turns")
    for i, turn in enumerate(value):
        if not isinstance(turn, Mapping) or not isinstance(turn.get("from"), str) or not isinstance(turn.get("value"), str):
            raise _RowError(f"turn {i}: expected {{'from': str, 'value': str}}")
    return list(value)


def convert_conversation(turns: Sequence[Mapping[str, Any]], num_images: int) -> list[dict[str, str]]:
    """Validate ShareGPT turns (see the module docstring) → chat messages with string
    contents. Raises ``ValueError`` naming the turn."""
    messages = []
    for i, turn in enumerate(turns):
        role = ROLE_MAP.get(turn["from"])
        if role is None:
            raise _RowError(f"turn {i}: unknown role {turn['from']!r} (expected one of {sorted(ROLE_MAP)})")
        if role == "system" and i != 0:
            raise _RowError(f"turn {i}: a system turn is allowed only first")
        messages.append({"role": role, "content": turn["value"]})
    body = messages[1:] if messages[0]["role"] == "system" else messages
    if not body:
        raise _RowError("no human/gpt turns")
    for i, m in enumerate(body):
        want = "user" if i % 2 == 0 else "assistant"
        if m["role"] != want:
            index = i + len(messages) - len(body)
            raise _RowError(f"turn {index}: expected {'human' if want == 'user' else 'gpt'} (roles must alternate, "
                            f"human first), got {turns[index]['from']!r}")
    if body[-1]["role"] != "assistant":
        raise _RowError("the conversation must end with a gpt turn")
    slots = sum(DIALECT.count_slots(m["content"]) for m in messages)
    if slots != num_images:
        raise _RowError(f"{slots} {_SLOT} slots but {num_images} images")
    if DIALECT.count_slots(body[0]["content"]) < 1:
        raise _RowError(f"the first human turn has no {_SLOT} slot")
    offset = len(messages) - len(body)
    observations = DIALECT.count_slots(body[0]["content"]) - 1
    for i in range(1, len(body), 2):
        text, index = body[i]["content"], i + offset
        action = DIALECT.parse(text, num_observations=observations)
        last = i == len(body) - 1
        if last:
            if not isinstance(action, Answer):
                raise _RowError(f"turn {index}: the last gpt turn must answer with <answer>…</answer>, "
                                f"got {_describe(action)}")
            continue
        if isinstance(action, Answer):
            raise _RowError(f"turn {index}: answers before the last gpt turn")
        images_next = DIALECT.count_slots(body[i + 1]["content"])
        if isinstance(action, Invalid):
            if not action.attempted:
                raise _RowError(f"turn {index}: no action in the minio3 dialect ({action.reason})")
            if images_next:
                raise _RowError(f"turn {index}: the action does not parse ({action.reason}) but the next turn "
                                "shows an observation")
            continue  # a failed action, answered by the released error turn
        if images_next != 1:
            raise _RowError(f"turn {index + 1}: a zoom must be followed by exactly one observation image, "
                            f"found {images_next}")
        observations += 1
    return messages


def _describe(action: Any) -> str:
    if isinstance(action, Invalid):
        return f"an unusable turn ({action.reason})"
    return type(action).__name__.lower()


class _Images:
    """Resolve a row's images to paths within the pixel limits, writing only what must be."""

    def __init__(self, out: Path, image_root: Path | None, rules: ViewRules, report: ImportReport,
                 allow_outside: bool = False):
        self.folder, self.root, self.rules, self.report = out / "images", image_root, rules, report
        self.allow_outside = allow_outside

    def resolve(self, value: Any, name: str) -> str:
        if isinstance(value, Mapping):
            data, path = value.get("bytes"), value.get("path")
            if data:
                return self._write_bytes(bytes(data), name if not path else f"{name}_{Path(str(path)).name}")
            value = path
        if isinstance(value, Image.Image):
            buf = io.BytesIO()
            value.save(buf, format="PNG")
            return self._write_bytes(buf.getvalue(), name)
        if not isinstance(value, str) or not value.strip():
            raise _RowError("an image entry has neither bytes nor a path")
        try:
            path = Path(confine(value.strip(), self.root or Path.cwd(), allow_outside=self.allow_outside))
        except PathEscapeError as e:
            raise _RowError(str(e)) from None
        if not path.exists():
            raise _RowError(f"image not found: {path}")
        return self._fit(path, name)

    def _write_bytes(self, data: bytes, name: str) -> str:
        try:
            with Image.open(io.BytesIO(data)) as im:
                fmt = (im.format or "png").lower()
        except Exception:
            raise _RowError(f"image {name}: embedded bytes are not a readable image") from None
        digest = hashlib.sha1(data).hexdigest()[:12]
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem)[:60]
        path = self.folder / f"{stem}_{digest}.{ {'jpeg': 'jpg'}.get(fmt, fmt)}"
        if not path.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            self.report.images_written += 1
        return self._fit(path.resolve(), name, written=True)

    def _fit(self, path: Path, name: str, written: bool = False) -> str:
        try:
            img = load_image(path)
        except ImageError as e:
            raise _RowError(str(e)) from None
        try:
            # within the pixel limits: reference the file (the processor snaps it to 28-px multiples itself)
            if self.rules.min_pixels <= img.width * img.height <= self.rules.max_pixels:
                if not written:
                    self.report.images_referenced += 1
                return str(path)
            out = self.folder / f"{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}_fit.png"
            if not out.exists():
                self.folder.mkdir(parents=True, exist_ok=True)
                tmp = out.with_suffix(".tmp.png")
                resize_for_model(img, self.rules, first=True).save(tmp)
                os.replace(tmp, out)
                self.report.images_written += 1
            return str(out.resolve())
        finally:
            img.close()


def _row_images(row: Mapping[str, Any]) -> list[Any]:
    images = row.get("images")
    if images is None:
        return []
    if hasattr(images, "tolist"):
        images = images.tolist()
    if isinstance(images, (str, bytes, Mapping)):
        images = [images]
    return list(images)


def _rows(inputs: Iterable[str | os.PathLike[str]]) -> Iterable[tuple[Path, dict[str, Any]]]:
    for path in inputs:
        base = Path(path) if Path(path).is_dir() else Path(path).parent
        for row in read_rows(path):
            yield base, row


def import_coldstart(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    image_root: str | os.PathLike[str] | None = None,
    strict: bool = False,
    limit: int | None = None,
    rules: ViewRules = PIXEL_RULES,
    allow_outside_root: bool = False,
) -> ImportReport:
    """Convert the released cold-start data; see the module docstring. Image paths stay
    inside ``image_root`` (default: the input's folder) unless ``allow_outside_root``."""
    paths = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    for p in paths:
        if not Path(p).exists():
            raise ColdstartError(f"{p}: no such file or folder")
    out = Path(out_dir)
    root = Path(image_root) if image_root else None
    report = ImportReport()
    verl_rows, trl_rows = [], []
    for index, (base, row) in enumerate(_rows(paths)):
        if limit is not None and index >= limit:
            break
        report.rows += 1
        where = row.get("_source", f"row {index}")
        try:
            turns = _turns(row.get("conversations"))
            raw_images = _row_images(row)
            messages = convert_conversation(turns, len(raw_images))
            names = row.get("image_names")
            names = list(names.tolist() if hasattr(names, "tolist") else names or [])
            images = _Images(out, root or base, rules, report, allow_outside_root)
            paths_out = [images.resolve(img, f"coldstart_{index}_{names[k] if k < len(names) else k}")
                         for k, img in enumerate(raw_images)]
        except _RowError as e:
            report.bad.append(BadRow(index, str(e)))
            if strict:
                raise StrictFailure(f"row {index} ({where}): {e} (strict: no dataset written)") from None
            continue
        meta = {"id": f"coldstart_{index}", "data_source": str(row.get("data_source") or "minio3_coldstart")}
        verl = verl_sft_row(messages, paths_out, **meta)
        verl["images"] = [{**img, "min_pixels": rules.min_pixels, "max_pixels": rules.max_pixels}
                          for img in verl["images"]]
        verl_rows.append(verl)
        trl_rows.append(trl_sft_row(messages, paths_out, **meta))
        report.kept += 1
    if report.rows == 0:
        raise ColdstartError(f"{', '.join(map(str, paths))}: no rows")
    out.mkdir(parents=True, exist_ok=True)
    report.outputs["verl"] = str(write_parquet(verl_rows, out / "coldstart.verl.parquet"))
    report.outputs["trl_jsonl"] = str(write_jsonl(trl_rows, out / "coldstart.trl.jsonl"))
    if trl_rows:
        import datasets

        folder = out / "coldstart.trl"
        datasets.Dataset.from_list(trl_rows).save_to_disk(str(folder))  # images stay file paths
        report.outputs["trl"] = str(folder)
    (out / "coldstart.report.json").write_text(json.dumps(report.to_json(), indent=1))
    report.outputs["report"] = str(out / "coldstart.report.json")
    return report
