"""HTML pages that show results: a separation result folder, and the validation page of `eval`.

Both pages are single self-contained HTML files (inline CSS and script, no CDN, no web fonts)
that link their media by relative paths, so a result folder opens from disk (file://) and can be
moved or copied as a whole. Every string from outside goes through `html.escape`, every link
through URL quoting, and data for the script is embedded as JSON that cannot close its tag.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import quote

import numpy as np
from PIL import Image

from pixelplayer.audio import save_audio
from pixelplayer.errors import PixelPlayerError
from pixelplayer.mixsep import SpecConfig
from pixelplayer.separation.maps import magnitude, mask_png, spectrogram_png

# --- HTML pieces ------------------------------------------------------------------------------

CSS = """
:root { color-scheme: light dark; font-family: system-ui, sans-serif; line-height: 1.4; }
body { max-width: 1280px; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; }
h2 { font-size: 1.1rem; margin: 1.8rem 0 .6rem; border-bottom: 1px solid #8885; }
.meta, figcaption, .hint { color: #888; font-size: .85rem; }
.meta { overflow-wrap: anywhere; }
figure { margin: 0; }
img, video { display: block; max-width: 100%; }
video { width: 100%; }
audio { display: block; width: 100%; min-width: 240px; margin: .3rem 0; }
.row { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.card { width: 300px; padding: .6rem; border: 1px solid #8885; border-radius: 6px; }
.card img { width: 100%; }
.wide { flex: 1 1 420px; max-width: 640px; }
.frame { position: relative; cursor: crosshair; }
.wide img { width: 100%; }
.marker { position: absolute; box-sizing: border-box; pointer-events: none;
  border: 2px solid #ffeb3b; box-shadow: 0 0 0 1px #000, inset 0 0 0 1px #000; }
.marker[hidden] { display: none; }
table { border-collapse: collapse; }
td, th { vertical-align: top; padding: .6rem; border-top: 1px solid #8885; text-align: left; }
td figure + figure { margin-top: .5rem; }
.frames { display: flex; gap: 2px; }
.frames img { width: 96px; }
.spec { width: 240px; }
.masks { display: flex; gap: 4px; }
.masks img { width: 118px; }
.num { font-variant-numeric: tabular-nums; }
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _url(rel: str) -> str:
    # quoting also turns "javascript:" and the like into a harmless relative path
    return _esc(quote(str(rel), safe="/"))


def _number(value: object) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _fmt(value: object, spec: str) -> str:
    """A number formatted (NaN, e.g. an item that could not be scored, as "n/a"), or as text."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _esc(value)
    return format(number, spec) if math.isfinite(number) else "n/a"


def _json_for_script(data: object) -> str:
    """JSON for a <script type="application/json"> block: "<", ">", "&" as \\u escapes, so no
    string in it can end the block ("</script>") or open a comment."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)  # JSON.parse rejects NaN
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _attrs(**attrs: str) -> str:
    """' id="a" class="b"' for the non-empty ones; trailing underscores dropped (class_)."""
    return "".join(f' {k.rstrip("_")}="{_esc(v)}"' for k, v in attrs.items() if v)


def _audio(src: str = "", id: str = "") -> str:
    link = f' src="{_url(src)}"' if src else ""
    return f'<audio{_attrs(id=id)} controls preload="metadata"{link}></audio>'


def _img(src: str, alt: str, class_: str = "", id: str = "") -> str:
    return f'<img{_attrs(id=id, class_=class_)} src="{_url(src)}" alt="{_esc(alt)}">'


def _figure(caption: str, *body: str, class_: str = "") -> str:
    """`caption` and the body pieces are HTML already."""
    return (
        f"<figure{_attrs(class_=class_)}>{''.join(body)}<figcaption>{caption}</figcaption></figure>"
    )


def _document(title: str, body: str, script: str = "") -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n"
        f"{script}</body>\n</html>\n"
    )


# --- the separation result page ---------------------------------------------------------------

# clicking the frame: frame.jpg pixel under the pointer -> its cell -> that cell's sound
PIXEL_SCRIPT = """<script>
(() => {
  const cells = JSON.parse(document.getElementById("cells").textContent);
  const frame = document.getElementById("frame");
  const img = document.getElementById("frame-img");
  const marker = document.getElementById("marker");
  const label = document.getElementById("cell-label");
  const audio = document.getElementById("pixel-audio");
  function cellAt(x, y) {
    // the box holding (x, y), else the nearest one (a click on the frame's last edge)
    let best = null, bestDist = Infinity;
    for (const c of cells) {
      const [x0, y0, x1, y1] = c.box;
      if (x >= x0 && x < x1 && y >= y0 && y < y1) return c;
      const dx = Math.max(x0 - x, 0, x - x1), dy = Math.max(y0 - y, 0, y - y1);
      if (dx * dx + dy * dy < bestDist) { best = c; bestDist = dx * dx + dy * dy; }
    }
    return best;
  }
  function select(c) {
    const [x0, y0, x1, y1] = c.box, w = img.naturalWidth, h = img.naturalHeight;
    frame.dataset.cell = `${c.row},${c.col}`;
    label.textContent = `cell ${c.row},${c.col}`;
    // percentages of the natural size keep the marker right when the page is resized
    Object.assign(marker.style, {
      left: `${100 * x0 / w}%`, top: `${100 * y0 / h}%`,
      width: `${100 * (x1 - x0) / w}%`, height: `${100 * (y1 - y0) / h}%`,
    });
    marker.hidden = false;
    audio.src = c.wav;
    audio.play().catch(() => {});  // a refused autoplay leaves the controls to the user
  }
  img.addEventListener("click", (e) => {
    const r = img.getBoundingClientRect();
    const c = cellAt((e.clientX - r.left) * img.naturalWidth / r.width,
                     (e.clientY - r.top) * img.naturalHeight / r.height);
    if (c) select(c);
  });
})();
</script>
"""


def write_separation_page(out_dir: str | Path) -> Path:
    """Write `out_dir/index.html` for a `pixelplayer separate` result folder; returns its path.

    Reads manifest.json and checks that every file the page links to is there (a
    PixelPlayerError lists the missing ones) before writing anything.
    """
    out_dir = Path(out_dir)
    manifest = _read_manifest(out_dir)
    try:
        _check_files(out_dir, _linked_files(manifest))
        body = _separation_body(manifest)
        cells = _json_for_script([_cell(c) for c in manifest.get("cells", [])])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PixelPlayerError(
            f"{out_dir / 'manifest.json'}: malformed manifest ({type(exc).__name__}: {exc})"
        ) from exc
    script = f'<script type="application/json" id="cells">{cells}</script>\n'
    name = PurePosixPath(str(manifest.get("video", "video")).replace("\\", "/")).name
    path = out_dir / "index.html"
    path.write_text(
        _document(f"PixelPlayer: {name}", body, script + PIXEL_SCRIPT), encoding="utf-8"
    )
    return path


def _read_manifest(out_dir: Path) -> dict:
    path = out_dir / "manifest.json"
    if not path.is_file():
        raise PixelPlayerError(f"{path}: no such file; run `pixelplayer separate` first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PixelPlayerError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise PixelPlayerError(f"{path}: expected a JSON object")
    return manifest


def _linked_files(m: dict) -> list[str]:
    """Every file the page links to, in page order."""
    files = [m["frame"], m["energy_png"]]
    files += [m[k] for k in ("sounding_png", "motion_png") if k in m]
    files += [m["overlay"], m["mixture"]]
    for s in m.get("sources", []):
        files += [s["png"], s["wav"], s["spectrogram"]]
    for p in m.get("points", []):
        files += [p["wav"], p["spectrogram"]]
    return files + [c["wav"] for c in m.get("cells", [])]


def _check_files(out_dir: Path, files: Iterable[str]) -> None:
    outside, missing = [], []
    for rel in files:
        p = PurePosixPath(rel)  # TypeError for a non-string: a malformed manifest
        if p.is_absolute() or ".." in p.parts:
            outside.append(rel)  # the folder must stay movable: links stay inside it
        elif not (out_dir / p).is_file():
            missing.append(rel)
    if outside:
        raise PixelPlayerError(
            f"{out_dir}/manifest.json: paths must be relative and inside the folder: "
            + ", ".join(outside[:5])
        )
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise PixelPlayerError(
            f"{out_dir}: manifest.json names {len(missing)} missing file(s): "
            + ", ".join(missing[:5])
            + more
        )


def _cell(c: dict) -> dict:
    """A manifest cell as the script reads it; int/float raise on anything but numbers."""
    box = [float(c[k]) for k in ("x0", "y0", "x1", "y1")]
    return {"row": int(c["row"]), "col": int(c["col"]), "box": box, "wav": quote(c["wav"])}


def _separation_body(m: dict) -> str:
    grid = m.get("grid") or ["?", "?"]
    facts = [
        f"video <b>{_esc(m.get('video', '?'))}</b>",
        f"{_esc(m.get('width', '?'))}×{_esc(m.get('height', '?'))}",
        f"{_fmt(m.get('duration', '?'), '.1f')} s at {_fmt(m.get('fps', '?'), 'g')} fps",
        f"{_esc(m.get('sr', '?'))} Hz",
        f"grid {_esc(grid[0])}×{_esc(grid[1])}",
        f"model {_esc(m.get('model', '?'))}",
        f"separated in {_fmt(m.get('seconds', '?'), '.1f')} s",
    ]
    # the grounding head's map where the model has one, else the energy; and the motion
    maps = [
        ("where the sound comes from (the model's probability, 0 to 1)", "sounding_png", "map")
        if "sounding_png" in m
        else ("sound energy per pixel", "energy_png", "sound energy map")
    ]
    if "motion_png" in m:
        maps.append(("motion that goes with the sound", "motion_png", "motion map"))
    parts = [
        "<header><h1>The sound of pixels</h1>",
        f'<p class="meta">{" · ".join(facts)}</p>',
        *(f'<p class="hint">{_esc(note)}</p>' for note in (m.get("audio") or {}).get("notes", [])),
        "</header>",
        "<h2>Frame and sound energy</h2>",
        '<p class="hint">Click anywhere on the frame to hear the sound of the pixels there.</p>',
        '<div class="row">',
        _figure(
            '<span id="cell-label">no cell selected</span>',
            '<div class="frame" id="frame" data-cell="">',
            _img(m["frame"], "video frame: click to listen", id="frame-img"),
            '<div class="marker" id="marker" hidden></div></div>',
            _audio(id="pixel-audio"),
            class_="wide",
        ),
        *(_figure(caption, _img(m[key], alt), class_="wide") for caption, key, alt in maps),
        "</div>",
        "<h2>Overlay video</h2>",
        f'<video class="wide" controls preload="metadata" src="{_url(m["overlay"])}"></video>',
        "<h2>Mixture</h2>",
        f'<div class="wide">{_audio(m["mixture"], id="mixture-audio")}</div>',
    ]
    if not m.get("sources"):
        parts += ["<h2>Sources</h2>", '<p class="hint">Nothing sounds here: no source found.</p>']
    if m.get("sources"):
        parts += ["<h2>Sources</h2>", '<div class="row">']
        parts += [_source_card(s) for s in m["sources"]]
        parts.append("</div>")
    if m.get("points"):
        parts += ["<h2>Points</h2>", '<div class="row">']
        parts += [_point_card(p) for p in m["points"]]
        parts.append("</div>")
    return "\n".join(parts)


def _source_card(s: dict) -> str:
    n = len(s.get("cells", []))
    title = f"source {_esc(s.get('index', '?'))} · {n} cell{'s' if n != 1 else ''}"
    if "sure" in s:
        title += f" · {_fmt(100 * _number(s['sure']), '.0f')} % sure"
    return (
        f'<div class="card source"><strong>{title}</strong>'
        + _img(s["png"], f"region of source {s.get('index', '?')}")
        + _audio(s["wav"])
        + _img(s["spectrogram"], "spectrogram")
        + "</div>"
    )


def _point_card(p: dict) -> str:
    where = f"pixel ({_esc(p.get('x', '?'))}, {_esc(p.get('y', '?'))})"
    return (
        f'<div class="card point"><strong>{where}</strong>'
        + _audio(p["wav"])
        + _img(p["spectrogram"], "spectrogram")
        + "</div>"
    )


# --- the validation page of `pixelplayer eval --html` -----------------------------------------


@dataclass
class EvalItem:
    """One evaluated mixture of N sources, as plain arrays (see `write_eval_page`)."""

    sr: int
    mixture: np.ndarray  # (L,)
    sources: np.ndarray  # (N, L) ground truth, as mixed
    estimates: np.ndarray  # (N, L)
    pred_masks: np.ndarray  # (N, R, T) in [0, 1], network layout, row 0 the lowest frequency
    gt_masks: np.ndarray  # (N, R, T)
    frames: np.ndarray  # (N, T, H, W, 3) uint8, or (N, H, W, 3) for one frame per source
    metrics: dict[str, Sequence[float]] = field(default_factory=dict)  # e.g. "sdr" -> (N,) dB
    labels: list[str] = field(default_factory=list)  # per source, e.g. the class
    name: str = ""


METRIC_NAMES = {"sdr": "SDR", "sir": "SIR", "sar": "SAR", "nsdr": "NSDR"}


def write_eval_page(
    out_dir: str | Path,
    items: Sequence[EvalItem],
    spec: SpecConfig | None = None,
    title: str = "PixelPlayer validation",
) -> Path:
    """Write the validation page of Sound of Pixels: one row per mixture with each source's
    frames, the mixture, and per source the true and estimated audio with spectrograms, the
    predicted and true masks and the scores. Media go to `out_dir/<item>/`; returns index.html.

    `spec` sets the spectrogram layout (default SpecConfig()); give the model's, so the
    spectrograms line up with its masks.
    """
    out_dir = Path(out_dir)
    for k, item in enumerate(items):
        _check_item(k, item)
    rows = [_eval_row(out_dir, f"{k:03d}", item, spec) for k, item in enumerate(items)]
    n = max((len(item.sources) for item in items), default=0)
    head = "".join(f"<th>source {j + 1}</th>" for j in range(n))
    body = "\n".join(
        [
            f"<header><h1>{_esc(title)}</h1>",
            f'<p class="meta">{len(items)} mixtures · {_summary(items)}</p></header>',
            f"<table>\n<thead><tr><th>mixture</th>{head}</tr></thead>\n<tbody>",
            *rows,
            "</tbody>\n</table>",
        ]
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    path.write_text(_document(title, body), encoding="utf-8")
    return path


def _check_item(k: int, item: EvalItem) -> None:
    n = len(item.sources)
    shapes = {
        "estimates": len(item.estimates),
        "pred_masks": len(item.pred_masks),
        "gt_masks": len(item.gt_masks),
        "frames": len(item.frames),
    }
    wrong = [f"{name} has {m}" for name, m in shapes.items() if m != n]
    if wrong:
        raise PixelPlayerError(f"eval item {k}: {n} sources but " + ", ".join(wrong))


def _summary(items: Sequence[EvalItem]) -> str:
    """Mean of each metric over the sources shown (those that could be scored)."""
    parts = []
    for key, label in METRIC_NAMES.items():
        values = [float(v) for it in items for v in it.metrics.get(key, [])]
        values = [v for v in values if math.isfinite(v)]
        if values:
            parts.append(f"mean {label} {np.mean(values):.2f} dB")
    return " · ".join(parts) or "no scores"


def _eval_row(out_dir: Path, folder: str, item: EvalItem, spec: SpecConfig | None) -> str:
    d = out_dir / folder
    d.mkdir(parents=True, exist_ok=True)
    ref = float(magnitude(item.mixture, spec).max())  # one brightness scale for the whole row
    save_audio(d / "mix.wav", item.mixture, item.sr)
    spectrogram_png(d / "mix.png", item.mixture, spec, ref)
    name = f"<br>{_esc(item.name)}" if item.name else ""
    cells = [
        f"<td><strong>#{int(folder)}</strong>{name}"
        + _figure(
            "mixture", _audio(f"{folder}/mix.wav"), _img(f"{folder}/mix.png", "spectrogram", "spec")
        )
        + "</td>"
    ]
    frames = np.asarray(item.frames)
    frames = frames[:, None] if frames.ndim == 4 else frames  # one frame per source
    for j in range(len(item.sources)):
        cells.append(_eval_source(d, folder, j, item, frames[j], spec, ref))
    return "<tr>" + "".join(cells) + "</tr>"


def _eval_source(
    d: Path, folder: str, j: int, item: EvalItem, frames: np.ndarray, spec, ref: float
) -> str:
    pics = []
    for t, frame in enumerate(frames):
        Image.fromarray(np.asarray(frame, np.uint8)).save(d / f"frame{j}_{t}.jpg", quality=90)
        pics.append(_img(f"{folder}/frame{j}_{t}.jpg", f"frame {t}"))
    for kind, wav in (("gt", item.sources[j]), ("est", item.estimates[j])):
        save_audio(d / f"{kind}{j}.wav", np.asarray(wav), item.sr)
        spectrogram_png(d / f"{kind}{j}.png", np.asarray(wav), spec, ref)
    mask_png(d / f"mask_pred{j}.png", item.pred_masks[j])
    mask_png(d / f"mask_gt{j}.png", item.gt_masks[j])
    label = _esc(item.labels[j]) if j < len(item.labels) else f"source {j + 1}"
    scores = [
        f"{name} {_fmt(item.metrics[key][j], '.2f')}"
        for key, name in METRIC_NAMES.items()
        if key in item.metrics
    ]
    f = f"{folder}/"
    return (
        f'<td><strong>{label}</strong><div class="frames">{"".join(pics)}</div>'
        f'<p class="num">{" · ".join(scores) or "not scored"}</p>'
        + _figure(
            "ground truth", _audio(f"{f}gt{j}.wav"), _img(f"{f}gt{j}.png", "spectrogram", "spec")
        )
        + _figure(
            "estimate", _audio(f"{f}est{j}.wav"), _img(f"{f}est{j}.png", "spectrogram", "spec")
        )
        + _figure(
            "mask: predicted · ground truth",
            '<div class="masks">',
            _img(f"{f}mask_pred{j}.png", "predicted mask"),
            _img(f"{f}mask_gt{j}.png", "ground-truth mask"),
            "</div>",
        )
        + "</td>"
    )
