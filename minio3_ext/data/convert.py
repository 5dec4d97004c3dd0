"""Benchmark rows → one canonical problem row, validated.

Supported inputs (local files only; row formats as published on each dataset card):

- ``visual_probe`` (Mini-o3/VisualProbe_train, _Easy, _Medium, _Hard): a JSON list
  (``train.json``/``val.json``) of ``{"doc_id", "problem" ("<image>\\n…"), "images"
  [relative path], "solution", "data_source"}``; images under ``--image-root``.
- ``deepeyes`` (ChenShawn/DeepEyes-Datasets-47k): verl parquet rows ``{"data_source",
  "prompt" [{"role", "content"}…], "images" [{"bytes", "path"}], "reward_model"
  {"ground_truth"}, "extra_info" {"index", "question", "answer", …}}``.
- ``vstar`` (craigwu/vstar_bench ``test_questions.jsonl``): ``{"image" (relative path),
  "text" (question with lettered options), "category", "question_id", "label"}``;
  also the HF-viewer variant ``{"question", "choices" [str], "answer" (index),
  "category", "question_id", "image"}``.
- ``hrbench`` (DreamMr/HR-Bench ``hr_bench_4k/8k.tsv|parquet``): ``{"index",
  "question", "answer" (letter), "category", "A", "B", "C", "D", "cycle_category",
  "image" (base64)}``.
- ``mme_realworld`` (yfzhang114/MME-RealWorld): the original JSON list of
  ``{"Question_id", "Image" (relative path), "Text", "Answer choices" ["(A) …", …],
  "Ground truth" (letter), "Task", "Subtask", "Category", "Question Type"}``; and the
  lmms-eval parquet/TSV rows ``{"index", "question", "multi-choice options" ["(A) …"],
  "answer" (letter), "category", "l2-category", "bytes" (base64 image)}``.

The released Mini-o3 data layout (what its README's RL command reads:
``VisualProbe_train/train.json``, ``VisualProbe_{Easy,Medium,Hard}/val.json``,
``Vstar_Bench/val.json``, ``DeepEyes_train_4K/train.json``) is the problem row
``{"problem", "images", "solution", "data_source", …}`` for every benchmark:
``visual_probe``, ``vstar`` and ``deepeyes`` accept it. For VisualProbe the row's own
``data_source`` (``visual_probe_easy`` …) sets the difficulty.

Each converter returns a :class:`Problem`; a row that cannot be used raises
:class:`RowError` with the reason. Embedded images (bytes, base64, PIL) are written
once to the output image folder; every output row names an absolute image path.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from PIL import Image

from ..core.answers import ground_truth_text
from ..core.images import ImageError, load_image
from ..core.paths import PathEscapeError, confine
from .benchmarks import SPLITS

__all__ = ["Problem", "RowError", "ConvertContext", "CONVERTERS", "SPLITS", "convert_row", "validate"]


class RowError(ValueError):
    """A row that cannot be converted; the message is the reason."""


@dataclass
class Problem:
    """A validated question about one image (the canonical row)."""

    doc_id: str
    question: str
    """Question text without the image slot."""
    answer: str
    image: str
    """Absolute path of the raw image."""
    data_source: str
    benchmark: str
    difficulty: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def problem(self) -> str:
        """The prompt text with its single image slot first (the row's ``problem``)."""
        return "<image>\n" + self.question

    def row(self) -> dict[str, Any]:
        """The problem row: ``problem``, ``images``, ``solution``, ``data_source`` (what ``minio3 eval`` reads)."""
        return {"doc_id": self.doc_id, "problem": self.problem, "images": [self.image], "solution": self.answer,
                "data_source": self.data_source, "benchmark": self.benchmark, "difficulty": self.difficulty,
                "extra": self.extra}


@dataclass
class ConvertContext:
    benchmark: str
    split: str
    image_root: Path | None
    """Folder that relative image paths in the rows are under."""
    image_out: Path
    """Folder where embedded images are written."""
    allow_outside: bool = False
    """Let image paths leave ``image_root`` (:func:`~minio3_ext.core.paths.confine`)."""


_OPTION_SUFFIX = "Answer with the option's letter from the given choices directly."
_IMAGE_SLOT = "<image>"
_BASE64 = re.compile(r"[A-Za-z0-9+/\s]+={0,2}")


def _text(value: Any, what: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        raise RowError(f"missing {what}")
    text = str(value).strip()
    if not text:
        raise RowError(f"empty {what}")
    return text


def _truth(value: Any, what: str) -> str:
    """A ground-truth field: text or a finite number (NaN, lists, dicts are refused)."""
    if value is None or (isinstance(value, float) and value != value):
        raise RowError(f"missing {what}")  # pandas' empty cell
    try:
        return _text(ground_truth_text(value), what)
    except ValueError as e:
        raise RowError(f"{what}: {e}") from None


def _one_slot(text: str, allow_none: bool) -> str:
    n = text.count(_IMAGE_SLOT)
    if n > 1 or (n == 0 and not allow_none):
        raise RowError(f"question must have exactly one {_IMAGE_SLOT} slot, found {n}")
    return text.replace(_IMAGE_SLOT, "").strip()


def _local_image(value: Any, ctx: ConvertContext, name: str) -> str:
    """Resolve an image given as a path, {bytes, path}, base64 text or PIL image."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise RowError(f"expected exactly one image, found {len(value)}")
        value = value[0]
    if isinstance(value, Image.Image):
        return _write_image(_encode(value), ctx, name)
    if isinstance(value, Mapping):
        data = value.get("bytes")
        if data:
            return _write_image(bytes(data), ctx, name)
        value = value.get("path") or value.get("image")
    if not isinstance(value, str) or not value.strip():
        raise RowError("no image given")
    value = value.strip()
    if value.startswith("file://"):
        value = value[len("file://"):]
    if len(value) > 1024 or (len(value) >= 64 and _BASE64.fullmatch(value) and not os.path.exists(value)):
        try:  # a base64 payload (HR-Bench); paths have dots, and are never this long
            return _write_image(base64.b64decode(value, validate=True), ctx, name)
        except (binascii.Error, ValueError):
            raise RowError("image field is neither a path nor valid base64") from None
    try:
        return confine(value, ctx.image_root or Path.cwd(), allow_outside=ctx.allow_outside)
    except PathEscapeError as e:
        raise RowError(str(e)) from None


def _encode(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _write_image(data: bytes, ctx: ConvertContext, name: str) -> str:
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = (im.format or "png").lower()
    except Exception:
        raise RowError("embedded image bytes are not a readable image") from None
    ext = {"jpeg": "jpg"}.get(fmt, fmt)
    digest = hashlib.sha1(data).hexdigest()[:10]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60]
    path = ctx.image_out / f"{safe}_{digest}.{ext}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return str(path.resolve())


def _options(pairs: list[tuple[str, str]]) -> str:
    return "\n".join(f"({letter}) {text}" for letter, text in pairs)


# -- one converter per benchmark ---------------------------------------------------

def _released_layout(row: Mapping[str, Any], i: int, ctx: ConvertContext, benchmark: str, source: str,
                     difficulty: str) -> Problem:
    """A row of the released Mini-o3 data layout: problem, images, solution, data_source."""
    prefix = benchmark if benchmark != "visual_probe" else f"visual_probe_{difficulty}"
    doc_id = str(row.get("doc_id") if row.get("doc_id") is not None else f"{prefix}_{i}")
    question = _one_slot(_text(row.get("problem"), "problem"), allow_none=True)
    images = row.get("images")
    if images is None:
        raise RowError("missing images")
    return Problem(doc_id, question, _truth(row.get("solution"), "solution"), _local_image(images, ctx, doc_id),
                   source, benchmark, difficulty)


def _visual_probe(row: Mapping[str, Any], i: int, ctx: ConvertContext) -> Problem:
    source = str(row.get("data_source") or f"visual_probe_{ctx.split}")
    level = source[len("visual_probe_"):] if source.startswith("visual_probe_") else ""
    difficulty = level if level in SPLITS["visual_probe"] else ctx.split
    return _released_layout(row, i, ctx, "visual_probe", source, difficulty)


def _deepeyes(row: Mapping[str, Any], i: int, ctx: ConvertContext) -> Problem:
    if "problem" in row and "prompt" not in row:  # released DeepEyes_train_4K/train.json
        return _released_layout(row, i, ctx, "deepeyes", str(row.get("data_source") or "deepeyes_train"), ctx.split)
    extra = row.get("extra_info") or {}
    index = extra.get("index", i)
    doc_id = f"deepeyes_{index}"
    question = extra.get("question")
    if question:
        question = _one_slot(str(question), allow_none=True)
    else:
        users = [m for m in (row.get("prompt") or []) if isinstance(m, Mapping) and m.get("role") == "user"]
        if not users:
            raise RowError("no user message in prompt and no extra_info.question")
        question = _one_slot(_text(users[0].get("content"), "user prompt"), allow_none=False)
    reward = row.get("reward_model") or {}
    answer = reward.get("ground_truth") if reward.get("ground_truth") not in (None, "") else extra.get("answer")
    return Problem(doc_id, _text(question, "question"), _truth(answer, "answer"),
                   _local_image(row.get("images"), ctx, doc_id), str(row.get("data_source") or "deepeyes_train"),
                   "deepeyes", ctx.split, {"source_data": row.get("data_source")})


def _vstar(row: Mapping[str, Any], i: int, ctx: ConvertContext) -> Problem:
    if "problem" in row:  # released Vstar_Bench/val.json
        category = str((row.get("extra_info") or {}).get("category") or row.get("category") or "all")
        return _released_layout(row, i, ctx, "vstar_bench", str(row.get("data_source") or "vstar_bench"), category)
    qid = row.get("question_id", i)
    category = str(row.get("category") or "all")
    if "text" in row:  # test_questions.jsonl
        question = _one_slot(_text(row.get("text"), "text"), allow_none=True)
        answer = _truth(row.get("label"), "label")
    else:  # HF viewer variant: choices + answer index
        choices = row.get("choices")
        if not isinstance(choices, (list, tuple)) or not choices:
            raise RowError("missing choices")
        letters = "ABCDEFGH"
        try:
            answer = letters[int(row.get("answer"))]
        except (TypeError, ValueError, IndexError):
            raise RowError(f"answer must be an option index, got {row.get('answer')!r}") from None
        question = (f"{_text(row.get('question'), 'question')}\n"
                    f"{_options(list(zip(letters, map(str, choices))))}\n{_OPTION_SUFFIX}")
    doc_id = f"vstar_{qid}"
    return Problem(doc_id, question, answer, _local_image(row.get("image"), ctx, doc_id), "vstar_bench",
                   "vstar_bench", category)


def _hrbench(row: Mapping[str, Any], i: int, ctx: ConvertContext) -> Problem:
    index = row.get("index", i)
    doc_id = f"hr_bench_{ctx.split}_{index}"
    options = [(k, str(row[k]).strip()) for k in "ABCD" if row.get(k) not in (None, "") and str(row[k]).strip()]
    if len(options) < 2:
        raise RowError("needs at least options A and B")
    answer = _truth(row.get("answer"), "answer")
    if answer not in dict(options):
        raise RowError(f"answer {answer!r} is not one of the options {[k for k, _ in options]}")
    question = f"{_text(row.get('question'), 'question')}\n{_options(options)}\n{_OPTION_SUFFIX}"
    return Problem(doc_id, question, answer, _local_image(row.get("image"), ctx, doc_id),
                   f"hr_bench_{ctx.split}", f"hr_bench_{ctx.split}", str(row.get("category") or "all"),
                   {"cycle_category": row.get("cycle_category")})


_LETTER_OPTION = re.compile(r"^\s*\(?([A-H])\)?[\.:]?\s+(.+)$", re.DOTALL)


def _mme_realworld(row: Mapping[str, Any], i: int, ctx: ConvertContext) -> Problem:
    if "Text" in row or "Question_id" in row:  # the original JSON
        qid, text = row.get("Question_id", i), row.get("Text")
        choices, answer, image = row.get("Answer choices"), row.get("Ground truth"), row.get("Image")
        task, subtask, category = row.get("Task"), row.get("Subtask"), row.get("Category")
    else:  # lmms-eval rows (base64 image in "bytes")
        qid, text = row.get("index", i), row.get("question")
        choices, answer = row.get("multi-choice options"), row.get("answer")
        image = row.get("bytes") if row.get("bytes") is not None else row.get("image")
        path = str(row.get("category") or "")
        task = "Perception" if "perception" in path.lower() else ("Reasoning" if "reasoning" in path.lower() else None)
        subtask, category = path.split("/")[1] if path.count("/") else None, row.get("l2-category")
    if hasattr(choices, "tolist"):
        choices = choices.tolist()
    if isinstance(choices, str):
        choices = [c for c in choices.splitlines() if c.strip()]
    if not isinstance(choices, (list, tuple)) or len(choices) < 2:
        raise RowError("needs at least two answer choices")
    options = []
    for k, choice in enumerate(choices):
        m = _LETTER_OPTION.match(str(choice))
        options.append((m.group(1), m.group(2).strip()) if m else ("ABCDEFGH"[k], str(choice).strip()))
    letter = _truth(answer, "ground truth").strip("() .").upper()
    if letter not in dict(options):
        raise RowError(f"ground truth {answer!r} is not one of the options {[k for k, _ in options]}")
    doc_id = f"mme_realworld_{str(qid).replace('/', '_')}"
    question = f"{_text(text, 'question')}\n{_options(options)}\n{_OPTION_SUFFIX}"
    difficulty = str(task).lower() if task else "all"
    return Problem(doc_id, question, letter, _local_image(image, ctx, doc_id), "mme_realworld", "mme_realworld",
                   difficulty, {"question_id": str(qid), "subtask": subtask, "category": category})


CONVERTERS: dict[str, Callable[[Mapping[str, Any], int, ConvertContext], Problem]] = {
    "visual_probe": _visual_probe,
    "deepeyes": _deepeyes,
    "vstar": _vstar,
    "hrbench": _hrbench,
    "mme_realworld": _mme_realworld,
}


def validate(problem: Problem, *, decode: bool = True) -> None:
    """Image exists and decodes; answer and question non-empty. Raises :class:`RowError`."""
    if not problem.answer.strip():
        raise RowError("empty answer")
    if not problem.question.strip():
        raise RowError("empty question")
    if not os.path.exists(problem.image):
        raise RowError(f"image not found: {problem.image}")
    if decode:
        try:
            load_image(problem.image).close()
        except ImageError as e:
            raise RowError(str(e)) from None


def convert_row(row: Mapping[str, Any], index: int, ctx: ConvertContext, *, decode: bool = True) -> Problem:
    """Convert and validate one row (raises :class:`RowError` with the reason)."""
    if ctx.benchmark not in CONVERTERS:
        raise ValueError(f"unknown benchmark {ctx.benchmark!r}; expected one of {sorted(CONVERTERS)}")
    problem = CONVERTERS[ctx.benchmark](row, index, ctx)
    validate(problem, decode=decode)
    return problem
