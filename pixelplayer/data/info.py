"""`pixelplayer data info`: what a dataset holds, per class and split.

Works on a prepared folder (train/val/test/all.csv + rejected.csv), on a single index csv, and
on a raw folder of videos (DIR/videos/<class>/*.mp4 with optional DIR/meta, as `data synth`
makes, or DIR/<class>/*.mp4), whose durations come from the meta JSON or from probing.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from pixelplayer.data.index import SPLITS, VIDEO_SUFFIXES, Clip, read_index
from pixelplayer.errors import MediaError, PixelPlayerError
from pixelplayer.video import probe

_ID_KEYS = ("path", "video", "video_path", "file", "filename", "id", "video_id", "name")


def _summarise(items: list[tuple[str, float]]) -> dict[str, Any]:
    """(class, seconds) pairs -> {"classes": {cls: {"clips", "hours"}}, "clips", "hours"}."""
    classes: dict[str, dict[str, float]] = {}
    for cls, seconds in items:
        c = classes.setdefault(cls, {"clips": 0, "hours": 0.0})
        c["clips"] += 1
        c["hours"] += seconds / 3600
    return {
        "classes": dict(sorted(classes.items())),
        "clips": len(items),
        "hours": sum(s for _, s in items) / 3600,
    }


def _count_rejected(path: Path) -> int | None:
    if not path.is_file():
        return None
    try:
        with open(path, newline="") as f:
            return max(0, sum(1 for row in csv.reader(f) if row) - 1)  # minus the header
    except OSError as exc:
        raise PixelPlayerError(f"{path}: cannot read ({exc})") from exc


def _clips_items(clips: list[Clip]) -> list[tuple[str, float]]:
    return [(c.cls, c.duration) for c in clips]


def _index_info(path: Path) -> dict[str, Any]:
    clips, missing = read_index(path, skip_missing=True)
    rejected_path = path.parent / "rejected.csv"
    return {
        "kind": "index",
        "path": str(path),
        "splits": {path.stem: _summarise(_clips_items(clips))},
        "total": _summarise(_clips_items(clips)),
        "missing": missing,
        "rejected": _count_rejected(rejected_path),
        "rejected_path": str(rejected_path),
    }


def _prepared_info(folder: Path) -> dict[str, Any]:
    splits, union, missing = {}, [], 0
    for name in SPLITS:
        f = folder / f"{name}.csv"
        if f.is_file():
            clips, n_missing = read_index(f, skip_missing=True)
            splits[name] = _summarise(_clips_items(clips))
            union += clips
            missing += n_missing
    if (folder / "all.csv").is_file():  # the whole dataset, as prepare wrote it
        union, missing = read_index(folder / "all.csv", skip_missing=True)
    rejected_path = folder / "rejected.csv"
    return {
        "kind": "prepared",
        "path": str(folder),
        "splits": splits,
        "total": _summarise(_clips_items(union)),
        "missing": missing,
        "rejected": _count_rejected(rejected_path),
        "rejected_path": str(rejected_path),
    }


def _walk_json(obj: Any, found: dict[str, float], default_key: str | None) -> None:
    """Collect {id: duration} from any JSON shape that pairs a file or id with a duration."""
    if isinstance(obj, dict):
        duration = obj.get("duration")
        if isinstance(duration, (int, float)):
            keys = [str(obj[k]) for k in _ID_KEYS if isinstance(obj.get(k), str)]
            for key in keys or ([default_key] if default_key else []):
                p = Path(key)
                found.setdefault(p.stem, float(duration))
                if p.parent.name:
                    found.setdefault(f"{p.parent.name}/{p.stem}", float(duration))
            return  # a record: what it nests (sources, boxes) describes the same video
        for value in obj.values():
            _walk_json(value, found, None)
    elif isinstance(obj, list):
        for value in obj:
            _walk_json(value, found, None)


def _meta_durations(folder: Path) -> dict[str, float]:
    """Durations by `<class>/<id>` and by `<id>` from DIR/meta (a folder of JSON or a file)."""
    found: dict[str, float] = {}
    files: list[Path] = []
    for name in ("meta", "meta.json"):
        p = folder / name
        if p.is_dir():
            files += sorted(p.rglob("*.json"))
        elif p.is_file():
            files.append(p)
    for f in files:
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue  # meta is a shortcut only: these videos are probed instead
        # a per-video file (meta/<class>/<id>.json) names its video by its own name
        _walk_json(data, found, f"{f.parent.name}/{f.stem}")
    return found


def _videos_info(folder: Path) -> dict[str, Any]:
    videos_dir = folder / "videos" if (folder / "videos").is_dir() else folder
    meta = _meta_durations(folder)
    items, rejected = [], 0
    for path in sorted(videos_dir.rglob("*")):
        if not path.is_file() or not path.name.lower().endswith(VIDEO_SUFFIXES):
            continue
        cls = path.parent.name
        seconds = meta.get(f"{cls}/{path.stem}", meta.get(path.stem))
        if seconds is None:
            try:
                seconds = probe(path).duration
            except MediaError:
                rejected += 1  # counted, and `data prepare` lists why
                continue
        items.append((cls, seconds))
    if not items and not rejected:
        raise PixelPlayerError(
            f"{folder}: no index files (train.csv, all.csv ...) and no videos "
            f"({', '.join(VIDEO_SUFFIXES)}) found"
        )
    summary = _summarise(items)
    duets = folder / "duets"  # `data synth` puts mixtures apart: no class, not for training
    return {
        "kind": "videos",
        "path": str(folder),
        "splits": {"videos": summary},
        "total": summary,
        "missing": 0,
        "rejected": rejected,
        "rejected_path": None,
        "duets": len(list(duets.glob("*.mp4"))) if duets.is_dir() else 0,
    }


def dataset_info(path: str | Path) -> dict[str, Any]:
    """Clip counts and hours per class and split, total hours and the rejected count.

    Returns {"kind", "path", "splits": {name: {"classes": {cls: {"clips", "hours"}}, "clips",
    "hours"}}, "total": (same shape as a split), "missing", "rejected", "rejected_path"}.
    `missing` counts index rows whose files are gone; `rejected` is None when unknown. A raw
    folder of videos has one split, "videos" (unreadable videos count as rejected), and
    "duets": the number of DIR/duets/*.mp4.
    """
    p = Path(path)
    if p.is_file():
        return _index_info(p)
    if not p.is_dir():
        raise PixelPlayerError(f"{p}: no such folder or index file")
    if any((p / f"{name}.csv").is_file() for name in (*SPLITS, "all")):
        return _prepared_info(p)
    return _videos_info(p)


def _hours(h: float) -> str:
    # small synthetic sets would read 0.00 h everywhere
    if h >= 1:
        return f"{h:.2f} h"
    if h * 60 >= 1:
        return f"{h * 60:.1f} min"
    return f"{h * 3600:.0f} s"


def format_info(info: dict[str, Any]) -> str:
    """A table: one row per class, clips and hours per split, then totals."""
    splits = dict(info["splits"])
    if info["kind"] == "prepared":
        splits["all"] = info["total"]
    names = list(splits)
    classes = sorted({c for s in splits.values() for c in s["classes"]})
    header = ["class"] + names
    rows = []
    for cls in classes:
        cells = []
        for n in names:
            c = splits[n]["classes"].get(cls)
            cells.append(f"{c['clips']} / {_hours(c['hours'])}" if c else "-")
        rows.append([cls, *cells])
    rows.append(["total", *(f"{splits[n]['clips']} / {_hours(splits[n]['hours'])}" for n in names)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

    total = info["total"]
    out = [
        f"{info['path']} ({info['kind']}): {len(classes)} classes, {total['clips']} clips, "
        f"{_hours(total['hours'])} in total",
        "",
        line(header),
        line(["-" * w for w in widths]),
        *(line(r) for r in rows),
        "",
    ]
    if info.get("duets"):
        out.append(f"duets: {info['duets']} videos in {Path(info['path']) / 'duets'}")
    if info["missing"]:
        out.append(f"missing: {info['missing']} index rows name files that are gone")
    if info["rejected"] is None:
        out.append("rejected: unknown (no rejected.csv)")
    elif info["rejected_path"]:
        out.append(f"rejected: {info['rejected']} (listed in {info['rejected_path']})")
    else:
        out.append(f"rejected: {info['rejected']} unreadable videos")
    return "\n".join(out)
