"""Reports: the trajectory viewer (HTML), the accuracy-vs-budget plot and the summary table.

:func:`write_trajectory_html` renders trajectory records (:mod:`.records`) to one HTML
page: per trajectory the original image with every zoom box drawn and numbered by
turn, each observation crop, the model's thoughts, the answer and the verdict.
Images are JPEG files in a folder ``<page stem>_files/`` next to the page (copy both
together), or, with ``embed=True``, data URIs inside the page (one file, larger).
Crops that were not saved during the run are recut from the original image, so eval
files need not store images: by replaying the recorded pixel boxes when every
observation is a zoom, through the core episode when another tool made one.

The page reports on itself: after loading, ``<body>`` carries ``data-images-loaded``
and ``data-images-failed`` and a banner names any image that failed to load.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote

from PIL import Image, ImageDraw, ImageFont

from ..core.actions import Zoom
from ..core.episode import Episode, EpisodeConfig
from ..core.images import ImageBank, ImageError
from ..core.tools import available_tools

__all__ = ["write_trajectory_html", "record_problem", "plot_accuracy_vs_budget", "format_summary_table"]

_BOX_COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}
.traj{background:#fff;border:1px solid #ddd;border-radius:8px;padding:1em;margin-bottom:2em}
.meta{color:#555;font-size:.9em}.badge{padding:.1em .5em;border-radius:4px;color:#fff;font-weight:bold}
.ok{background:#2a9d3a}.bad{background:#c0392b}.unk{background:#888}
.orig{max-width:100%;border:1px solid #ccc}.crop{max-width:420px;max-height:420px;border:2px solid #444}
.turn{border-left:4px solid #ccc;padding-left:.8em;margin:.8em 0}
pre{white-space:pre-wrap;word-break:break-word;background:#f4f4f4;padding:.5em;border-radius:4px}
#img-status{display:none;background:#c0392b;color:#fff;padding:.5em}
"""

_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images), bad = [];
  imgs.forEach(function (im) { if (!(im.complete && im.naturalWidth > 0)) bad.push(im.getAttribute('src').slice(0, 80)); });
  document.body.dataset.imagesLoaded = String(imgs.length - bad.length);
  document.body.dataset.imagesFailed = String(bad.length);
  if (bad.length) { var s = document.getElementById('img-status'); s.style.display = 'block';
    s.textContent = bad.length + ' image(s) failed to load: ' + bad.join(', '); }
});
"""


class _ImageSink:
    """Writes images into the page folder or encodes them as data URIs."""

    def __init__(self, out_html: Path, embed: bool, max_side: int):
        self.embed = embed
        self.max_side = max_side
        self.folder = out_html.parent / f"{out_html.stem}_files"
        self.rel = f"{out_html.stem}_files"
        if not embed:
            self.folder.mkdir(parents=True, exist_ok=True)

    def shrink(self, img: Image.Image, max_side: int | None = None) -> Image.Image:
        limit = max_side or self.max_side
        scale = limit / max(img.size)
        if scale >= 1:
            return img.convert("RGB")
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        # reduce by a whole factor first (box averaging, no full-size copy), then LANCZOS the rest
        return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0).convert("RGB")

    def src(self, img: Image.Image, name: str) -> str:
        if self.embed:
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=85, subsampling=0)
            return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        img.save(self.folder / name, format="JPEG", quality=85, subsampling=0)
        return f"{quote(self.rel)}/{quote(name)}"


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def _draw_boxes(img: Image.Image, scale: float, boxes: Sequence[tuple[int, Sequence[int]]]) -> Image.Image:
    """Draw each (turn, box-in-original) on a copy of ``img`` shown at ``scale``."""
    out = img.copy()
    draw = ImageDraw.Draw(out)
    width = max(2, round(max(out.size) / 300))
    font = _font(max(12, round(max(out.size) / 45)))
    for turn, box in boxes:
        colour = _BOX_COLOURS[(turn - 1) % len(_BOX_COLOURS)]
        x0, y0, x1, y1 = (v * scale for v in box)
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=width)
        label = str(turn)
        tx0, ty0, tx1, ty1 = draw.textbbox((x0, y0), label, font=font)
        pad = width
        ly = y0 - (ty1 - ty0) - 2 * pad if y0 - (ty1 - ty0) - 2 * pad >= 0 else y0
        draw.rectangle([x0, ly, x0 + (tx1 - tx0) + 2 * pad, ly + (ty1 - ty0) + 2 * pad], fill=colour)
        draw.text((x0 + pad - (tx0 - x0), ly + pad - (ty0 - y0)), label, fill="white", font=font)
    return out


def _recut(original: Image.Image | None, record: Mapping[str, Any], turns: Sequence[Mapping[str, Any]]) -> dict[int, Image.Image]:
    """The observations of a record recut from its original: zoom-only trajectories by
    their boxes (:func:`_replay_crops`, memory bounded by one decoded original), others
    through the core episode (:func:`_replay_episode`)."""
    if original is None:
        return {}
    other = any((tr.get("action") or {}).get("kind") != "zoom" for tr in turns if tr.get("observation_index") is not None)
    return _replay_episode(original, record, turns) if other else _replay_crops(original, turns)


def _replay_crops(original: Image.Image | None, turns: Sequence[Mapping[str, Any]],
                  max_side: int = 640) -> dict[int, Image.Image]:
    """Recut every zoom observation from the raw original by replaying the pixel boxes,
    each already downscaled to about ``max_side`` (what the page shows).

    Each observation is a raw crop of its source, so its place in the original is its
    source's offset plus its box: one cut from the original, reduced while it is read
    (``Image.reduce(box=...)``), never a full-resolution chain of crops (a 12-turn
    trajectory of a large image held gigabytes)."""
    if original is None:
        return {}
    places: dict[str, tuple[int, int, int, int]] = {"original_image": (0, 0, original.width, original.height)}
    crops: dict[int, Image.Image] = {}
    for turn in turns:
        action, index = turn.get("action") or {}, turn.get("observation_index")
        source, box = action.get("source") or "original_image", action.get("box")
        if index is None or action.get("kind") != "zoom" or box is None or source not in places:
            continue
        sx0, sy0, sx1, sy1 = places[source]
        x0, y0, x1, y1 = (int(v) for v in box)
        # inside its source (a raw crop past its source's edge would be black there)
        place = (max(sx0 + x0, sx0), max(sy0 + y0, sy0), min(sx0 + x1, sx1), min(sy0 + y1, sy1))
        if place[2] <= place[0] or place[3] <= place[1]:
            continue
        places[f"observation_{index}"] = place
        crops[index] = _cut(original, place, max_side)
    return crops


def _replay_episode(original: Image.Image, record: Mapping[str, Any], turns: Sequence[Mapping[str, Any]],
                    max_side: int = 640) -> dict[int, Image.Image]:
    """Every observation of a trajectory that used another tool than zoom, replayed through
    a core :class:`~minio3_ext.core.episode.Episode` on the raw original: each zoom from its
    recorded pixel box (whatever the coordinates the model wrote in), each other tool's call
    read from the turn's text by the record's dialect. The replay stops at the first turn
    whose result differs from the record (kind, source, box, observation number): what
    follows it is not recoverable. Like the run, the episode holds the raw observations."""
    kinds = [(t.get("action") or {}).get("kind") for t in turns if t.get("observation_index") is not None]
    try:
        tools = available_tools()
        config = EpisodeConfig.from_options(
            dialect=record.get("dialect") or "minio3", coords=record.get("coords") or "relative",
            preset=record.get("preset") or "strict", max_context_tokens=None, max_turns=len(turns) + 1,
            max_images=len(turns) + 1,
            tools=tuple(dict.fromkeys(["zoom", *[k for k in kinds if k in tools],
                                       *[k for k in record.get("tools") or () if k in tools]])))
        episode = Episode(original, config, first_view=original)  # the view is not what is replayed
    except (ValueError, TypeError):
        return {}
    crops: dict[int, Image.Image] = {}
    for turn in turns:
        action, index = turn.get("action") or {}, turn.get("observation_index")
        if index is None:
            continue  # no observation: the numbering of the episode's sources does not move
        kind, source, box = action.get("kind"), action.get("source") or "original_image", action.get("box")
        if kind == "zoom":
            try:
                w, h = episode.raw_image(source).size
            except KeyError:  # a source the replay does not have
                break
            if box is None:
                break
            # the recorded pixels exactly: box_to_pixels truncates, so aim at the pixel centres
            step = Zoom(tuple((v + 0.5) / n for v, n in zip(box, (w, h, w, h))), source)
        else:
            step = episode.parse(str(turn.get("assistant") or ""))
        obs = episode.act(step)
        last = episode.records[-1]
        if (obs is None or obs.index != index or last.kind != kind or last.source != source
                or (box is not None and list(last.box or ()) != [int(v) for v in box])):
            break
        raw = episode.raw_image(f"observation_{index}")
        crops[index] = _cut(raw, (0, 0, *raw.size), max_side)
    return crops


def _cut(img: Image.Image, box: tuple[int, int, int, int], max_side: int) -> Image.Image:
    """``img.crop(box)`` reduced by a whole factor to no less than ``max_side`` on its longer side."""
    factor = max(1, max(box[2] - box[0], box[3] - box[1]) // max_side)
    if factor == 1:
        return img.crop(box)
    try:
        return img.reduce(factor, box=box)
    except ValueError:  # a mode reduce() does not support
        return img.convert("RGB").reduce(factor, box=box)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _box_problem(v: Any) -> str | None:
    if v is None:
        return None
    if not (isinstance(v, (list, tuple)) and len(v) == 4 and all(_is_int(x) or (isinstance(x, float) and x.is_integer())
                                                                 for x in v)):
        return f"must be 4 integers [x0, y0, x1, y1], got {_short(v)}"
    x0, y0, x1, y1 = v
    if not (0 <= x0 < x1 and 0 <= y0 < y1):
        return f"must have 0 <= x0 < x1 and 0 <= y0 < y1, got {_short(v)}"
    return None


def _short(v: Any) -> str:
    text = json.dumps(v, default=repr)
    return text if len(text) <= 60 else text[:57] + "..."


def record_problem(t: Any) -> str | None:
    """Why a trajectory record cannot be shown (its first malformed field), or ``None``.

    The viewer renders what the eval, coldstart and training loggers write; a record
    edited by hand or by another tool is reported on one line instead of a traceback."""
    if not isinstance(t, Mapping):
        return f"a record must be a JSON object, got {type(t).__name__}"
    if not isinstance(t.get("turns"), list):
        return f"'turns' must be a list, got {_short(t.get('turns'))}"
    if t.get("image") is not None and not isinstance(t["image"], str):
        return f"'image' must be a path, got {_short(t['image'])}"
    for k, turn in enumerate(t["turns"]):
        where = f"turn {k + 1}"
        if not isinstance(turn, Mapping):
            return f"{where}: must be a JSON object, got {_short(turn)}"
        if turn.get("turn") is not None and not _is_int(turn["turn"]):
            return f"{where}: 'turn' must be an integer, got {_short(turn['turn'])}"
        action = turn.get("action")
        if action is not None and not isinstance(action, Mapping):
            return f"{where}: 'action' must be a JSON object, got {_short(action)}"
        action = action or {}
        for key in ("kind", "source"):
            if action.get(key) is not None and not isinstance(action[key], str):
                return f"{where}: action '{key}' must be text, got {_short(action[key])}"
        for key in ("box", "box_in_original"):
            problem = _box_problem(action.get(key))
            if problem:
                return f"{where}: action '{key}' {problem}"
        index = turn.get("observation_index")
        if index is not None and not (_is_int(index) and index >= 0):
            return f"{where}: 'observation_index' must be an integer >= 0, got {_short(index)}"
        if turn.get("observation_image") is not None and not isinstance(turn["observation_image"], str):
            return f"{where}: 'observation_image' must be a path, got {_short(turn['observation_image'])}"
    return None


def _verdict_badge(verdict: Any, scored: Any) -> str:
    if verdict == 1:
        return '<span class="badge ok">correct</span>'
    if verdict == 0 and scored is not False:
        return '<span class="badge bad">wrong</span>'
    return '<span class="badge unk">unscored</span>'


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _trajectory_html(i: int, t: Mapping[str, Any], bank: ImageBank, sink: _ImageSink) -> str:
    turns = list(t.get("turns") or [])
    original = None
    image_note = ""
    if t.get("image"):
        try:
            original = bank.get(t["image"])
        except ImageError as e:
            image_note = f'<p class="meta">original image unavailable: {_esc(e)}</p>'
    parts = [f'<section class="traj" id="t{i}">',
             f"<h2>{_esc(t.get('id', f'trajectory {i}'))} · sample {_esc(t.get('sample', 0))} "
             f"{_verdict_badge(t.get('verdict'), t.get('scored'))}</h2>",
             f'<p class="meta">{_esc(t.get("data_source", ""))} · budget {_esc(t.get("budget", "?"))} · '
             f'{len(turns)} turn(s) · ended: <b>{_esc(t.get("termination_reason"))}</b></p>',
             f"<p><b>Question:</b> {_esc(t.get('question'))}</p>",
             f"<p><b>Ground truth:</b> {_esc(t.get('ground_truth'))} · <b>Answer:</b> {_esc(t.get('answer'))}</p>",
             image_note]
    if original is not None:
        view = sink.shrink(original)
        scale = view.width / original.width
        boxes = [(int(tr.get("turn", k + 1)), tr["action"]["box_in_original"]) for k, tr in enumerate(turns)
                 if (tr.get("action") or {}).get("box_in_original")]
        src = sink.src(_draw_boxes(view, scale, boxes), f"t{i}_original.jpg")
        parts.append(f'<img class="orig" src="{src}" alt="original with boxes">')
    crops = _recut(original, t, turns)
    for k, turn in enumerate(turns):
        action = turn.get("action") or {}
        number = turn.get("turn", k + 1)
        desc = _esc(action.get("kind"))
        if action.get("source"):
            desc += f" on {_esc(action['source'])}"
        if action.get("box"):
            desc += f" box {_esc(action['box'])}"
        if action.get("error"):
            desc += f' — <span style="color:#c0392b">{_esc(action["error"])}</span>'
        parts.append(f'<div class="turn"><h3>Turn {_esc(number)}: {desc}</h3><pre>{_esc(turn.get("assistant"))}</pre>')
        index = turn.get("observation_index")
        crop_img = None
        if turn.get("observation_image") and os.path.exists(turn["observation_image"]):
            try:
                crop_img = bank.get(turn["observation_image"])
            except ImageError:
                crop_img = None
        if crop_img is None and index is not None:
            crop_img = crops.get(index)
        if crop_img is not None:
            src = sink.src(sink.shrink(crop_img, 640), f"t{i}_obs{index}.jpg")
            parts.append(f'<p>Observation {_esc(index)}:</p><img class="crop" src="{src}" alt="observation {_esc(index)}">')
        elif index is not None:
            parts.append(f'<p class="meta">Observation {_esc(index)}: image not saved and not recoverable</p>')
        if turn.get("observation_text"):
            parts.append(f"<details><summary>environment reply</summary><pre>{_esc(turn['observation_text'])}</pre></details>")
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)


def write_trajectory_html(
    trajectories: Iterable[Mapping[str, Any]],
    out_html: str | os.PathLike[str],
    *,
    embed: bool = False,
    max_side: int = 1280,
    title: str = "minio3 trajectories",
) -> Path:
    """Render ``trajectories`` to ``out_html`` and return its path (see module doc)."""
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    sink = _ImageSink(out, embed, max_side)
    bank = ImageBank(max_bytes=1 << 30)
    body = [_trajectory_html(i, t, bank, sink) for i, t in enumerate(trajectories)]
    page = (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{_esc(title)}</title>'
        f"<style>{_CSS}</style><script>{_SCRIPT}</script></head>\n<body>"
        f'<div id="img-status"></div><h1>{_esc(title)}</h1><p class="meta">{len(body)} trajectories</p>\n'
        + "\n".join(body) + "\n</body></html>\n"
    )
    out.write_text(page, encoding="utf-8")
    return out


def plot_accuracy_vs_budget(summary: Mapping[str, Any], out_png: str | os.PathLike[str], *, title: str = "Accuracy vs. turn budget") -> Path:
    """One line per benchmark/difficulty: Avg@K accuracy (%) against the turn budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines: dict[str, list[tuple[int, float]]] = {}
    for row in summary["rows"]:
        if row.get("accuracy") is None:
            continue
        label = row["benchmark"] if row["difficulty"] == "all" else f"{row['benchmark']} {row['difficulty']}"
        lines.setdefault(label, []).append((int(row["budget"]), 100.0 * row["accuracy"]))
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    try:
        for label, points in sorted(lines.items()):
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
        budgets = sorted(summary.get("budgets") or {b for pts in lines.values() for b, _ in pts})
        ax.set_xscale("log", base=2)
        if budgets:
            ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.set_xlabel("max turns at test time")
        ax.set_ylabel("accuracy (%, Avg@K)")
        ax.set_ylim(0, 100)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        if lines:
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out)
    finally:
        plt.close(fig)
    return out


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def format_summary_table(summary: Mapping[str, Any]) -> str:
    """The summary rows as a Markdown table (accuracy in %, reason shares in %): ``acc %``
    leaves unscorable samples out, ``acc % fail=0`` scores them 0 (the released code)."""
    reasons = ("answered", "no_answer", "turn_limit", "image_limit", "context_limit")
    head = ["benchmark", "difficulty", "budget", "acc %", "items", "K", "unscored", "acc % fail=0", "turns"] + list(reasons)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary["rows"]:
        acc = _pct(r.get("accuracy"))
        shares = [f"{100 * r['reasons'].get(x, 0.0):.0f}" for x in reasons]
        cells = [r["benchmark"], r["difficulty"], str(r["budget"]), acc, str(r["items"]), str(r["k"]),
                 str(r["unscored"]), _pct(r.get("accuracy_failures_as_0")), f"{r['mean_turns']:.1f}"] + shares
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
